"""The appeals workflow, pure: states, allowed transitions and deadline arithmetic.

Two tracks (docs/appeals.md):

- ``contest``: the subject (or a linked relative or lawyer) contests an alert resolved as
  a confirmed violation. A criminal-executive matter, outside the appeals law; the
  deadline is configurable (``DEFAULT_CONTEST_DAYS`` = 10 calendar days).
- ``general``: an application, proposal or complaint about the supervision (E-murojaat),
  under the Law of the Republic of Uzbekistan "On appeals of individuals and legal
  entities" (ZRU-445 of 11 September 2017, its article on the terms of review,
  "Murojaatlarni ko'rib chiqish muddatlari"): an application or a complaint within 15
  days when no further study is needed, otherwise up to one month; a proposal within one
  month; extendable once, by up to one month, with the reason and a notice to the
  appellant.

States and transitions (both tracks)::

    submitted ──assign──▶ under_review ──decide──▶ upheld | rejected   (contest)
                            │  ▲  assign (reassign)                      upheld | rejected | answered (general)
                            └──┘
    extend: general only, once, while submitted or under_review (state unchanged)
    study:  general only, while submitted or under_review and not yet extended

Deadlines are calendar days counted in the deployment's time zone (default
Asia/Tashkent): an appeal received on day D with an N-day term is due by the end of day
D + N (local). ``Deadline.due_at`` is that end as an instant (the next local midnight):
the appeal is overdue when ``now >= due_at`` and it is not decided. Nothing here reads a
clock: every function takes ``now`` or the submission time.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from telemetry.errors import ConflictError, InvalidInputError

Track = Literal["contest", "general"]
State = Literal["submitted", "under_review", "upheld", "rejected", "answered"]
TRACKS: tuple[Track, ...] = ("contest", "general")
STATES: tuple[State, ...] = ("submitted", "under_review", "upheld", "rejected", "answered")
OPEN_STATES: tuple[State, ...] = ("submitted", "under_review")
#: kinds of a general appeal (ZRU-445 art. 3: ariza, taklif, shikoyat)
GENERAL_KINDS = ("application", "proposal", "complaint")
#: the decisions each track may end in
DECISIONS: dict[str, tuple[State, ...]] = {"contest": ("upheld", "rejected"),
                                           "general": ("upheld", "rejected", "answered")}
DEFAULT_CONTEST_DAYS = 10
#: ZRU-445 art. 26: no further study needed / further study needed (months) / one extension (months)
GENERAL_DAYS = 15
GENERAL_STUDY_MONTHS = 1
EXTENSION_MAX_MONTHS = 1
DEFAULT_TIMEZONE = "Asia/Tashkent"


@dataclass(frozen=True, slots=True)
class Deadline:
    """``due_on``: the last local day of the term; ``due_at``: the instant it ends."""

    due_on: date
    due_at: datetime


def add_months(d: date, months: int) -> date:
    """``d`` plus calendar months, the day clamped to the month's end (31 Jan + 1 = 28/29 Feb)."""
    month0 = d.month - 1 + months
    year, month = d.year + month0 // 12, month0 % 12 + 1
    return date(year, month, min(d.day, calendar.monthrange(year, month)[1]))


def _aware(value: datetime, name: str) -> datetime:
    if value.tzinfo is None:
        raise InvalidInputError(name, "must carry a time zone")
    return value


def local_day(at: datetime, tz: str = DEFAULT_TIMEZONE) -> date:
    return _aware(at, "at").astimezone(ZoneInfo(tz)).date()


def deadline_on(due_on: date, tz: str = DEFAULT_TIMEZONE) -> Deadline:
    """The deadline that ends with local day ``due_on``."""
    end = datetime.combine(due_on + timedelta(days=1), time(0), tzinfo=ZoneInfo(tz))
    return Deadline(due_on, end.astimezone(UTC))


def initial_deadline(track: str, submitted_at: datetime, *, kind: str | None = None, needs_study: bool = False,
                     contest_days: int = DEFAULT_CONTEST_DAYS, tz: str = DEFAULT_TIMEZONE) -> Deadline:
    """The term of an appeal, counted from the local day it was received: a contest's
    ``contest_days``; a general application or complaint 15 days, or one month when it
    ``needs_study``; a proposal one month."""
    if track not in TRACKS:
        raise InvalidInputError("track", f"must be one of {', '.join(TRACKS)}")
    if contest_days < 1:
        raise InvalidInputError("contest_days", "must be at least 1")
    day = local_day(submitted_at, tz)
    if track == "contest":
        return deadline_on(day + timedelta(days=contest_days), tz)
    if needs_study or kind == "proposal":
        return deadline_on(add_months(day, GENERAL_STUDY_MONTHS), tz)
    return deadline_on(day + timedelta(days=GENERAL_DAYS), tz)


def extended_deadline(current_due_on: date, until: date | None = None, *, tz: str = DEFAULT_TIMEZONE) -> Deadline:
    """The one extension: to ``until`` (default: the longest allowed), which must be after
    the current last day and at most one calendar month after it."""
    latest = add_months(current_due_on, EXTENSION_MAX_MONTHS)
    until = latest if until is None else until
    if until <= current_due_on:
        raise InvalidInputError("until", f"must be after the current deadline {current_due_on.isoformat()}")
    if until > latest:
        raise InvalidInputError("until", f"an extension is by at most one month: {latest.isoformat()} at the latest")
    return deadline_on(until, tz)


def is_overdue(state: str, due_at: datetime, now: datetime) -> bool:
    """Undecided past the end of its last day."""
    return state in OPEN_STATES and _aware(now, "now") >= due_at


def decided_late(decided_at: datetime | None, due_at: datetime) -> bool:
    return decided_at is not None and decided_at >= due_at


def _conflict(appeal_id: object, reason: str) -> ConflictError:
    return ConflictError("appeal", str(appeal_id), reason)


def check_assign(appeal_id: object, state: str) -> State:
    """Assigning (or reassigning) a reviewer: from submitted or under review."""
    if state not in OPEN_STATES:
        raise _conflict(appeal_id, f"cannot assign a reviewer to an appeal that is {state}")
    return "under_review"


def check_decide(appeal_id: object, track: str, state: str, decision: str, reason: str | None) -> State:
    """A decision: only from under review, one of the track's decisions, with a reason."""
    allowed = DECISIONS.get(track, ())
    if decision not in allowed:
        raise InvalidInputError("decision", f"a {track} appeal is decided as one of {', '.join(allowed)}")
    if not (reason or "").strip():
        raise InvalidInputError("reason", "a decision needs its reasons")
    if state != "under_review":
        raise _conflict(appeal_id, f"cannot decide an appeal that is {state} (a reviewer is assigned first)")
    return decision


def check_extend(appeal_id: object, track: str, state: str, already_extended: bool, reason: str | None) -> None:
    """The one extension of a general appeal, with its reason, while it is open."""
    if track != "general":
        raise _conflict(appeal_id, "only a general appeal's term can be extended")
    if not (reason or "").strip():
        raise InvalidInputError("reason", "an extension needs its reason")
    if state not in OPEN_STATES:
        raise _conflict(appeal_id, f"cannot extend an appeal that is {state}")
    if already_extended:
        raise _conflict(appeal_id, "the term was already extended once (ZRU-445 allows one extension)")


#: attachments: at most this many per appeal, each at most this large, of these types
MAX_ATTACHMENTS = 5
MAX_ATTACHMENT_BYTES = 5 * 1024 * 1024
_MAGIC = ((b"%PDF-", "application/pdf"), (b"\xff\xd8\xff", "image/jpeg"), (b"\x89PNG\r\n\x1a\n", "image/png"))
MEDIA_TYPES = tuple(t for _, t in _MAGIC)


def sniff_media_type(content: bytes) -> str | None:
    """The type of an attachment by its first bytes (never by its name or the client's
    Content-Type): PDF, JPEG or PNG; None for anything else."""
    for magic, media_type in _MAGIC:
        if content.startswith(magic):
            return media_type
    return None


def check_attachment(appeal_id: object, state: str, count: int, content: bytes) -> str:
    """Whether one more attachment may be added; returns its media type."""
    if state not in OPEN_STATES:
        raise _conflict(appeal_id, f"cannot add a file to an appeal that is {state}")
    if count >= MAX_ATTACHMENTS:
        raise _conflict(appeal_id, f"an appeal has at most {MAX_ATTACHMENTS} files")
    if not content:
        raise InvalidInputError("body", "the file is empty")
    media_type = sniff_media_type(content)
    if media_type is None:
        raise InvalidInputError("body", "only PDF, JPEG and PNG files are accepted (checked by their content)")
    return media_type


def check_study(appeal_id: object, track: str, state: str, already_extended: bool) -> None:
    """Marking a general appeal as needing further study (one month instead of 15 days)."""
    if track != "general":
        raise _conflict(appeal_id, "only a general appeal has a further-study term")
    if state not in OPEN_STATES:
        raise _conflict(appeal_id, f"cannot change the term of an appeal that is {state}")
    if already_extended:
        raise _conflict(appeal_id, "the term was already extended")


__all__ = [
    "DECISIONS",
    "DEFAULT_CONTEST_DAYS",
    "DEFAULT_TIMEZONE",
    "EXTENSION_MAX_MONTHS",
    "GENERAL_DAYS",
    "GENERAL_KINDS",
    "GENERAL_STUDY_MONTHS",
    "MAX_ATTACHMENTS",
    "MAX_ATTACHMENT_BYTES",
    "MEDIA_TYPES",
    "OPEN_STATES",
    "STATES",
    "TRACKS",
    "Deadline",
    "State",
    "Track",
    "add_months",
    "check_assign",
    "check_attachment",
    "check_decide",
    "check_extend",
    "check_study",
    "deadline_on",
    "decided_late",
    "extended_deadline",
    "initial_deadline",
    "is_overdue",
    "local_day",
    "sniff_media_type",
]
