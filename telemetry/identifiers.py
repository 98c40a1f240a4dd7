"""Checks of the registry's identifiers: the PINFL of a person and the IMEI of a device.

Pure functions, one rule each, used by the API's schemas (a failed check is a 422 with the
reason) and by tests.

**PINFL** (Uzbek *JSHSHIR*, "jismoniy shaxsning shaxsiy identifikatsion raqami"): 14
digits, ``C DDMMYY RRR NNN K``:

- ``C``: century and sex; odd is male, even female; 1-2: born 18xx, 3-4: 19xx, 5-6: 20xx
  (century = 17 + ceil(C / 2)). 0, 7, 8, 9 are not issued.
- ``DDMMYY``: the date of birth (day, month, two-digit year).
- ``RRR``: the region/office code, ``NNN``: a serial number among people born that day
  there; neither is ``000``.
- ``K``: the check digit, the sum of the first 13 digits weighted 7, 3, 1, 7, 3, 1, ...
  modulo 10 (the ICAO 9303 machine-readable-zone weighting; the PINFL was introduced "as
  per ICAO standards for machine-reading of documents").

Sources: the structure (sex, date of birth, place code, serial number; 14 digits, ICAO)
from the summary "Personal Identification (PINFL) in Uzbekistan", Leges Advokat,
legesadvokat.com (2021); the century/sex digit, the field positions and the 7-3-1 check
digit from a public PINFL parser and generator (Python, "PinflUtilitiesParser"), whose
rules agree with each other. What is *not* checked: that the region code is one in use
(no public list was found), and that the number was issued (only the state register
knows). With a date of birth and a sex given, the PINFL must agree with both.

**IMEI**: 15 digits, the last a Luhn check digit over the first 14 (3GPP TS 23.003,
section 6.2.1; GSMA TS.06).
"""

from __future__ import annotations

from datetime import date

PINFL_WEIGHTS = (7, 3, 1) * 4 + (7,)


def pinfl_check_digit(first13: str) -> int:
    return sum(int(d) * w for d, w in zip(first13, PINFL_WEIGHTS, strict=True)) % 10


def pinfl_birth_date(pinfl: str) -> date | None:
    """The date of birth a well-formed PINFL encodes, or None when it encodes no date."""
    c = int(pinfl[0])
    if not 1 <= c <= 6:
        return None
    year = (17 + (c + 1) // 2) * 100 + int(pinfl[5:7])
    try:
        return date(year, int(pinfl[3:5]), int(pinfl[1:3]))
    except ValueError:
        return None


def pinfl_sex(pinfl: str) -> str:
    """``M`` or ``F`` from the first digit (odd: male)."""
    return "M" if int(pinfl[0]) % 2 == 1 else "F"


def pinfl_problem(pinfl: str, *, date_of_birth: date | None = None, sex: str | None = None) -> str | None:
    """Why ``pinfl`` is not a valid PINFL (for this date of birth and sex), or None."""
    if len(pinfl) != 14 or not pinfl.isascii() or not pinfl.isdigit():
        return "a PINFL is exactly 14 digits"
    if pinfl[0] not in "123456":
        return "a PINFL's first digit (century and sex) is 1 to 6"
    born = pinfl_birth_date(pinfl)
    if born is None:
        return "a PINFL's digits 2-7 are the date of birth DDMMYY: this is no date"
    if pinfl[7:10] == "000" or pinfl[10:13] == "000":
        return "a PINFL's region code (digits 8-10) and serial number (digits 11-13) are never 000"
    if pinfl_check_digit(pinfl[:13]) != int(pinfl[13]):
        return f"the PINFL's check digit is wrong (expected {pinfl_check_digit(pinfl[:13])})"
    if date_of_birth is not None and date_of_birth != born:
        return f"the PINFL encodes the date of birth {born.isoformat()}, not {date_of_birth.isoformat()}"
    if sex is not None and sex != pinfl_sex(pinfl):
        return f"the PINFL's first digit encodes sex {pinfl_sex(pinfl)}, not {sex}"
    return None


def luhn_check_digit(digits: str) -> int:
    """The Luhn digit to append to ``digits``."""
    total = 0
    for i, d in enumerate(reversed(digits)):
        n = int(d) * (2 if i % 2 == 0 else 1)
        total += n - 9 if n > 9 else n
    return (10 - total % 10) % 10


def imei_problem(imei: str) -> str | None:
    """Why ``imei`` is not a valid IMEI, or None."""
    if len(imei) != 15 or not imei.isascii() or not imei.isdigit():
        return "an IMEI is exactly 15 digits"
    expected = luhn_check_digit(imei[:14])
    if int(imei[14]) != expected:
        return f"the IMEI's Luhn check digit is wrong (expected {expected})"
    return None


__all__ = ["imei_problem", "luhn_check_digit", "pinfl_birth_date", "pinfl_check_digit", "pinfl_problem", "pinfl_sex"]
