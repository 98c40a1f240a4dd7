"""What an appellant reads about their appeal, in plain language: Uzbek (Latin script)
and English. Pure data and one function; the API picks the language (``lang`` parameter,
else ``Accept-Language``, else Uzbek).

Placeholders: ``{due_on}`` (a date, written as 2026-12-11), ``{reason}`` (the officer's
own words, shown as written), ``{kind}`` (already translated).
"""

from __future__ import annotations

from typing import Literal

Language = Literal["uz-Latn", "en"]
LANGUAGES: tuple[Language, ...] = ("uz-Latn", "en")
DEFAULT_LANGUAGE: Language = "uz-Latn"

_TEXTS: dict[str, dict[Language, str]] = {
    # what each state means to the appellant
    "state.submitted": {
        "uz-Latn": "Murojaatingiz qabul qilindi. U {due_on} gacha ko'rib chiqiladi.",
        "en": "Your appeal has been received. It will be decided by {due_on}.",
    },
    "state.under_review": {
        "uz-Latn": "Murojaatingizni mas'ul xodim ko'rib chiqmoqda. Javob muddati: {due_on}.",
        "en": "An officer is reviewing your appeal. The answer is due by {due_on}.",
    },
    "state.upheld": {
        "uz-Latn": "Murojaatingiz qanoatlantirildi. Sabablari: {reason}",
        "en": "Your appeal was upheld. Reasons: {reason}",
    },
    "state.rejected": {
        "uz-Latn": "Murojaatingiz rad etildi. Sabablari: {reason}",
        "en": "Your appeal was rejected. Reasons: {reason}",
    },
    "state.answered": {
        "uz-Latn": "Murojaatingizga javob berildi: {reason}",
        "en": "Your appeal has been answered: {reason}",
    },
    "overdue": {
        "uz-Latn": "Javob muddati ({due_on}) o'tib ketdi. Murojaatingiz rahbariyat nazoratida.",
        "en": "The answer is overdue (it was due by {due_on}). Your appeal has been flagged to the supervisors.",
    },
    # each step of the history
    "event.submitted": {"uz-Latn": "{kind} yuborildi.", "en": "{kind} submitted."},
    "event.assigned": {
        "uz-Latn": "Murojaat ko'rib chiqish uchun mas'ul xodimga topshirildi.",
        "en": "The appeal was given to an officer to review.",
    },
    "event.study": {
        "uz-Latn": "Murojaat qo'shimcha o'rganishni talab qiladi. Yangi muddat: {due_on}.",
        "en": "The appeal needs further study. New deadline: {due_on}.",
    },
    "event.extended": {
        "uz-Latn": "Ko'rib chiqish muddati {due_on} gacha uzaytirildi. Sababi: {reason}",
        "en": "The deadline was extended to {due_on}. Reason: {reason}",
    },
    "event.decided": {"uz-Latn": "Qaror qabul qilindi.", "en": "A decision was made."},
    "event.attachment": {"uz-Latn": "Fayl ilova qilindi.", "en": "A file was attached."},
    # notices the appellant receives
    "notice.extension": {
        "uz-Latn": "Hurmatli murojaatchi! Murojaatingizni ko'rib chiqish muddati {due_on} gacha uzaytirildi."
                   " Sababi: {reason}",
        "en": "Dear appellant, the time to decide your appeal has been extended to {due_on}. Reason: {reason}",
    },
    "notice.decision": {
        "uz-Latn": "Hurmatli murojaatchi! Murojaatingiz bo'yicha qaror qabul qilindi: {decision}. Sabablari: {reason}",
        "en": "Dear appellant, your appeal has been decided: {decision}. Reasons: {reason}",
    },
    # names
    "kind.contest": {"uz-Latn": "Qoidabuzarlik ustidan e'tiroz", "en": "Contest of a violation"},
    "kind.application": {"uz-Latn": "Ariza", "en": "Application"},
    "kind.proposal": {"uz-Latn": "Taklif", "en": "Proposal"},
    "kind.complaint": {"uz-Latn": "Shikoyat", "en": "Complaint"},
    "decision.upheld": {"uz-Latn": "qanoatlantirildi", "en": "upheld"},
    "decision.rejected": {"uz-Latn": "rad etildi", "en": "rejected"},
    "decision.answered": {"uz-Latn": "javob berildi", "en": "answered"},
}


def text(key: str, language: str = DEFAULT_LANGUAGE, **params: object) -> str:
    """The text ``key`` in ``language`` with its placeholders filled (a missing one is
    left empty rather than failing: these are read by people, not parsed)."""
    entry = _TEXTS[key]
    template = entry.get(language, entry[DEFAULT_LANGUAGE])  # type: ignore[call-overload]
    return str(template).format_map(_Blank({k: "" if v is None else v for k, v in params.items()}))


class _Blank(dict[str, object]):
    def __missing__(self, key: str) -> str:
        return ""


def negotiate(requested: str | None, accept_language: str | None) -> Language:
    """The language to answer in: an explicit ``requested`` one, else the best match of an
    ``Accept-Language`` header (``uz``, ``uz-Latn``, ``uz-UZ`` are Uzbek Latin; ``en*`` is
    English), else Uzbek."""
    for candidate in ([requested] if requested else []) + _ranked(accept_language):
        tag = candidate.strip().lower()
        if tag == "en" or tag.startswith("en-"):
            return "en"
        if (tag == "uz" or tag.startswith("uz-")) and "cyrl" not in tag:
            return "uz-Latn"
    return DEFAULT_LANGUAGE


def _ranked(header: str | None) -> list[str]:
    out: list[tuple[float, int, str]] = []
    for i, part in enumerate((header or "").split(",")[:20]):
        tag, _, params = part.partition(";")
        q = 1.0
        if params.strip().startswith("q="):
            try:
                q = float(params.strip()[2:])
            except ValueError:
                q = 0.0
        if tag.strip() and q > 0:
            out.append((-q, i, tag.strip()))
    return [t for _, _, t in sorted(out)]


__all__ = ["DEFAULT_LANGUAGE", "LANGUAGES", "Language", "negotiate", "text"]
