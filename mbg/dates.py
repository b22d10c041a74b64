"""Days and months as the command line and the datasets spell them."""

from __future__ import annotations

import calendar
import datetime as dt
import re

from .errors import InputError

_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_MONTH = re.compile(r"[0-9]{4}-[0-9]{2}")


def parse_day(text: str) -> dt.date:
    """Parse ``YYYY-MM-DD``; anything else is an InputError."""
    if not _DAY.fullmatch(text):
        raise InputError(f"bad day {text!r}: expected YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise InputError(f"bad day {text!r}: no such date") from None


def parse_month(text: str) -> dt.date:
    """Parse ``YYYY-MM`` or any day of the month; return the month's first day."""
    day = text + "-01" if _MONTH.fullmatch(text) else text
    if not _DAY.fullmatch(day):
        raise InputError(f"bad month {text!r}: expected YYYY-MM or YYYY-MM-DD")
    try:
        return dt.date.fromisoformat(day).replace(day=1)
    except ValueError:
        raise InputError(f"bad month {text!r}: no such date") from None


def month_days(month: dt.date) -> list[dt.date]:
    """Every day of the month of ``month``."""
    count = calendar.monthrange(month.year, month.month)[1]
    return [month.replace(day=d) for d in range(1, count + 1)]


def next_month(month: dt.date) -> dt.date:
    """The first day of the month after ``month``."""
    return (month.replace(day=28) + dt.timedelta(days=4)).replace(day=1)

