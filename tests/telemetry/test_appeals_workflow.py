"""The appeals workflow, pure: every state of both tracks, the deadlines (calendar days
in Asia/Tashkent, calendar months clamped to the month's end), the one extension, overdue,
attachments by magic bytes, and the plain-language texts."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from telemetry import appeal_texts as texts
from telemetry import appeals as wf
from telemetry.errors import ConflictError, InvalidInputError

# 1 December 2026, 23:30 in Tashkent (UTC+5) is still 1 December there
LATE_EVENING = datetime(2026, 12, 1, 18, 30, tzinfo=UTC)


def test_contest_deadline_counts_local_calendar_days() -> None:
    d = wf.initial_deadline("contest", LATE_EVENING)
    assert d.due_on == date(2026, 12, 11)
    assert d.due_at == datetime(2026, 12, 11, 19, 0, tzinfo=UTC)  # midnight of the 12th in Tashkent
    assert wf.initial_deadline("contest", LATE_EVENING, contest_days=3).due_on == date(2026, 12, 4)
    # 00:30 on 2 December in Tashkent is the 1st in UTC: the local day counts
    assert wf.initial_deadline("contest", datetime(2026, 12, 1, 19, 30, tzinfo=UTC)).due_on == date(2026, 12, 12)
    with pytest.raises(InvalidInputError):
        wf.initial_deadline("contest", datetime(2026, 12, 1))  # naive time
    with pytest.raises(InvalidInputError):
        wf.initial_deadline("contest", LATE_EVENING, contest_days=0)


def test_general_deadlines_follow_the_appeals_law() -> None:
    assert wf.initial_deadline("general", LATE_EVENING, kind="complaint").due_on == date(2026, 12, 16)
    assert wf.initial_deadline("general", LATE_EVENING, kind="application", needs_study=True).due_on == date(2027, 1, 1)
    assert wf.initial_deadline("general", LATE_EVENING, kind="proposal").due_on == date(2027, 1, 1)
    jan31 = datetime(2027, 1, 31, 8, tzinfo=UTC)
    assert wf.initial_deadline("general", jan31, needs_study=True).due_on == date(2027, 2, 28)


def test_add_months_clamps_to_the_month_end() -> None:
    assert wf.add_months(date(2027, 1, 31), 1) == date(2027, 2, 28)
    assert wf.add_months(date(2028, 1, 31), 1) == date(2028, 2, 29)
    assert wf.add_months(date(2026, 12, 15), 1) == date(2027, 1, 15)
    assert wf.add_months(date(2026, 11, 30), 14) == date(2028, 1, 30)


def test_one_extension_by_at_most_a_month() -> None:
    due = date(2026, 12, 16)
    assert wf.extended_deadline(due).due_on == date(2027, 1, 16)
    assert wf.extended_deadline(due, date(2026, 12, 30)).due_on == date(2026, 12, 30)
    for bad in (date(2027, 1, 17), due, date(2026, 12, 1)):
        with pytest.raises(InvalidInputError):
            wf.extended_deadline(due, bad)
    wf.check_extend(1, "general", "under_review", False, "awaiting the maker's report")
    with pytest.raises(ConflictError, match="already extended once"):
        wf.check_extend(1, "general", "under_review", True, "again")
    with pytest.raises(ConflictError, match="only a general"):
        wf.check_extend(1, "contest", "under_review", False, "x")
    with pytest.raises(InvalidInputError):
        wf.check_extend(1, "general", "submitted", False, "  ")
    with pytest.raises(ConflictError):
        wf.check_extend(1, "general", "answered", False, "x")


@pytest.mark.parametrize("track", wf.TRACKS)
def test_every_state_of_both_tracks(track: str) -> None:
    assert wf.check_assign(1, "submitted") == "under_review"
    assert wf.check_assign(1, "under_review") == "under_review"  # reassign
    with pytest.raises(ConflictError, match="reviewer is assigned first"):
        wf.check_decide(1, track, "submitted", "rejected", "reasons")
    for decision in wf.DECISIONS[track]:
        assert wf.check_decide(1, track, "under_review", decision, "reasons") == decision
        with pytest.raises(ConflictError):
            wf.check_assign(1, decision)
        with pytest.raises(ConflictError):
            wf.check_decide(1, track, decision, decision, "again")
    with pytest.raises(InvalidInputError, match="its reasons"):
        wf.check_decide(1, track, "under_review", "rejected", "")
    if track == "contest":
        with pytest.raises(InvalidInputError):
            wf.check_decide(1, track, "under_review", "answered", "x")
        with pytest.raises(ConflictError):
            wf.check_study(1, track, "submitted", False)


def test_overdue_with_an_injected_now() -> None:
    d = wf.initial_deadline("contest", LATE_EVENING)
    assert not wf.is_overdue("under_review", d.due_at, d.due_at - timedelta(microseconds=1))
    assert wf.is_overdue("under_review", d.due_at, d.due_at)
    assert wf.is_overdue("submitted", d.due_at, d.due_at + timedelta(days=3))
    assert not wf.is_overdue("rejected", d.due_at, d.due_at + timedelta(days=3))
    assert wf.decided_late(d.due_at, d.due_at) and not wf.decided_late(None, d.due_at)


def test_attachments_by_magic_bytes() -> None:
    assert wf.check_attachment(1, "submitted", 0, b"%PDF-1.7 ...") == "application/pdf"
    assert wf.sniff_media_type(b"\xff\xd8\xff\xe0") == "image/jpeg"
    assert wf.sniff_media_type(b"\x89PNG\r\n\x1a\n....") == "image/png"
    assert wf.sniff_media_type(b"MZ\x90\x00") is None  # an executable named .pdf is still refused
    with pytest.raises(InvalidInputError):
        wf.check_attachment(1, "submitted", 0, b"<html>")
    with pytest.raises(InvalidInputError):
        wf.check_attachment(1, "submitted", 0, b"")
    with pytest.raises(ConflictError):
        wf.check_attachment(1, "submitted", wf.MAX_ATTACHMENTS, b"%PDF-")
    with pytest.raises(ConflictError):
        wf.check_attachment(1, "upheld", 0, b"%PDF-")


def test_texts_in_both_languages() -> None:
    uz = texts.text("notice.extension", "uz-Latn", due_on="2027-01-16", reason="ekspertiza")
    en = texts.text("notice.extension", "en", due_on="2027-01-16", reason="expert report")
    assert "uzaytirildi" in uz and "2027-01-16" in uz and "extended to 2027-01-16" in en
    assert texts.text("state.submitted", "fr", due_on="x").startswith("Murojaatingiz")  # unknown: Uzbek
    assert texts.negotiate(None, "en-GB,en;q=0.9") == "en"
    assert texts.negotiate(None, "ru;q=0.9, uz;q=0.8, en;q=0.5") == "uz-Latn"
    assert texts.negotiate(None, "de, en;q=0.1") == "en"
    assert texts.negotiate("en", "uz") == "en"
    assert texts.negotiate(None, None) == "uz-Latn"
    assert texts.negotiate(None, "uz-Cyrl") == "uz-Latn"  # no Cyrillic texts yet: the default
    assert texts.negotiate(None, "en;q=abc") == "uz-Latn"
    for key in ("state.upheld", "event.extended", "kind.complaint", "decision.answered"):
        assert texts.text(key, "uz-Latn") != texts.text(key, "en")
