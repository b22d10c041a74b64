"""Time conversions of the parsers' hot path, cached so that no datetime is built per line.

``BillingClock`` turns UTC epoch seconds into 'YYYY-MM-DD HH:MM:SS' of the billing zone;
``H323Clock`` reads Cisco ``h323-*-time`` values (``[*|.]HH:MM:SS.mmm TZ Www Mmm D YYYY``)
into UTC epoch seconds, through the zone abbreviations of ``[tacacs.zones]``.
"""

from __future__ import annotations

import datetime as dt
from itertools import product
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .base import CACHE_LIMIT

EPOCH_ORDINAL = dt.date(1970, 1, 1).toordinal()
MONTHS = {
    name: i + 1
    for i, name in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
    )
}
# Zones change offset at 15-minute instants of UTC, nearly always: one lookup per
# 15-minute bucket of UTC. Not always (America/St_Johns before 2011 and Asia/Gaza in
# 2010-11 changed at :01 local): a bucket whose two ends differ is converted exactly.
_BUCKET = 900
_EXACT = object()  # the offset cache's mark of such a bucket
# 'HH:MM:SS' -> seconds of the day, for the valid ones seen (at most 86,400).
_SECONDS: dict[str, int] = {}
# Once a cache of times of day holds this many, it is given all 86,400 at once: a log of a
# month meets most of them, and making them together costs less than one by one.
FILL_AFTER = 2000
_DAY_TIMES: list[str] = []


def day_times() -> list[str]:
    """Every 'HH:MM:SS' of a day, by seconds since midnight (made once)."""
    if not _DAY_TIMES:
        two = [f"{i:02d}" for i in range(60)]
        _DAY_TIMES.extend(map(":".join, product(two[:24], two, two)))
    return _DAY_TIMES


def seconds_of_day(hms: str) -> int | None:
    """'HH:MM:SS' -> seconds since midnight, None if malformed."""
    if len(hms) != 8 or hms[2] != ":" or hms[5] != ":":
        return None
    h, m, s = hms[0:2], hms[3:5], hms[6:8]
    if not (h + m + s).isdigit() or not (h + m + s).isascii():
        return None
    h, m, s = int(h), int(m), int(s)
    if h > 23 or m > 59 or s > 59:
        return None
    return h * 3600 + m * 60 + s


class BillingClock:
    """UTC epoch seconds -> wall time of the billing zone, as telephony_log.calldate."""

    def __init__(self, zone: dt.tzinfo) -> None:
        self.zone = zone
        self._offsets: dict[int, int] = {}
        self._dates: dict[int, str] = {}
        self._times: dict[int, str] = {}

    def format(self, epoch: int) -> str:
        bucket = epoch // _BUCKET
        offset = self._offsets.get(bucket)
        if offset is None:
            offset = self._offset_at(bucket * _BUCKET)
            if offset != self._offset_at(bucket * _BUCKET + _BUCKET - 1):
                offset = _EXACT
            if len(self._offsets) >= CACHE_LIMIT:
                self._offsets.clear()
            self._offsets[bucket] = offset
        if offset is _EXACT:
            offset = self._offset_at(epoch)
        days, sod = divmod(epoch + offset, 86400)
        date = self._dates.get(days)
        if date is None:
            date = dt.date.fromordinal(days + EPOCH_ORDINAL).isoformat()
            if len(self._dates) >= CACHE_LIMIT:
                self._dates.clear()
            self._dates[days] = date
        time = self._times.get(sod)
        if time is None:
            time = self._times[sod] = f"{sod // 3600:02d}:{sod // 60 % 60:02d}:{sod % 60:02d}"
            if len(self._times) == FILL_AFTER:
                self._times.update(enumerate(day_times()))
        return date + " " + time

    def _offset_at(self, epoch: int) -> int:
        moment = dt.datetime.fromtimestamp(epoch, dt.timezone.utc)
        return int(moment.astimezone(self.zone).utcoffset().total_seconds())

    def epoch(self, day: dt.date, sod: int) -> int:
        """A wall time of the billing zone -> UTC epoch seconds (the earlier of a repeat)."""
        wall = dt.datetime.combine(day, dt.time()) + dt.timedelta(seconds=sod)
        return int(wall.replace(tzinfo=self.zone).timestamp())


def zone_by_name(name: str, zones: dict[str, dt.tzinfo]) -> dt.tzinfo | None:
    """A router's zone abbreviation: [tacacs.zones] first, then UTC/GMT and zone names
    (H323Clock reads a name without '/' as its standard offset: see standard_offset)."""
    if name in zones:
        return zones[name]
    if name in ("UTC", "GMT", "Z", "UT"):
        return dt.timezone.utc
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        # OSError: a folder of the zone database ("Europe"), a name too long for a file
        return None


def standard_offset(zone: dt.tzinfo, date: dt.date) -> dt.tzinfo:
    """The zone's standard (winter) offset on ``date``, as a fixed zone.

    A router prints a zone abbreviation (EET, CET, EST): it names one offset, and in summer
    the router prints another name (EEST). The zone database's EET, CET, WET, MET, EST5EDT
    follow DST rules, so such a name without '/' is read as its standard offset.
    """
    if isinstance(zone, dt.timezone):
        return zone
    noon = dt.datetime.combine(date, dt.time(12), tzinfo=zone)
    return dt.timezone(noon.utcoffset() - (noon.dst() or dt.timedelta(0)))


class UnknownZone:
    """A zone abbreviation neither configured nor known: its times are read as UTC, so
    that differences between them (durations) are still right, and flagged ``?``."""

    __slots__ = ("midnight",)

    def __init__(self, midnight: int) -> None:
        self.midnight = midnight


class H323Clock:
    """Reads ``h323-setup-time`` and its siblings into (UTC epoch seconds, flag).

    The flag is the leading ``*`` (router clock never set), ``.`` (not synchronised),
    ``?`` (unknown zone abbreviation: the time is only good for differences) or ''.
    Milliseconds are dropped (truncated). The weekday is not checked.
    """

    def __init__(self, zones: dict[str, dt.tzinfo]) -> None:
        self._zones = zones
        # 'MSK Thu Oct 1 2009' -> see _day_base; valid ones only, at most CACHE_LIMIT.
        self._days: dict[str, int | tuple[dt.tzinfo, dt.date] | UnknownZone] = {}

    def parse(self, value: str) -> tuple[int, str] | str:
        """(epoch, flag), or the reason the value is malformed (a str)."""
        # The usual 'HH:MM:SS.mmm TZ Www Mmm D YYYY' of a day seen before in a fixed
        # offset zone: two cache lookups (the caches hold valid values only).
        if value[8:9] == "." and value[12:13] == " ":
            sod = _SECONDS.get(value[:8])
            base = self._days.get(value[13:])
            if sod is not None and type(base) is int and value[9:12].isdigit():
                return base + sod, ""
        flag = value[:1]
        if flag == "*" or flag == ".":
            value = value[1:]
        else:
            flag = ""
        space = value.find(" ")
        if space < 8:  # before the cache: the answer must not depend on the lines before
            return f"bad time {value.strip()[:60]!r}"
        hms = value[:space]
        sod = _SECONDS.get(hms[:8])
        if sod is None:
            sod = seconds_of_day(hms[:8])
            if sod is None:
                return f"bad time {value.strip()[:60]!r}"
            _SECONDS[hms[:8]] = sod
            if len(_SECONDS) == FILL_AFTER:
                _SECONDS.update(zip(day_times(), range(86400)))
        if space > 8 and (hms[8] != "." or not hms[9:].isdigit()):
            return f"bad time {value.strip()[:60]!r}"
        rest = value[space + 1 :]
        base = self._days.get(rest)
        if base is None:
            base = self._day_base(rest)
            if type(base) is str:  # an error: not cached (garbage is endless)
                return base
            if len(self._days) >= CACHE_LIMIT:
                self._days.clear()
            self._days[rest] = base
        if type(base) is int:
            return base + sod, flag
        if type(base) is UnknownZone:
            return base.midnight + sod, flag if flag == "*" else "?"
        zone, date = base
        local = dt.datetime.combine(date, dt.time()) + dt.timedelta(seconds=sod)
        return int(local.replace(tzinfo=zone).timestamp()), flag

    def fixed_midnight(self, rest: str) -> int | None:
        """'MSK Thu Oct 1 2009' -> the UTC epoch of that local midnight when the zone has
        a fixed offset (what ``parse`` adds the time of day to); None otherwise (a zone
        with DST, an unknown zone, a malformed date)."""
        base = self._days.get(rest)
        if base is None:
            base = self._day_base(rest)
            if type(base) is str:
                return None
            if len(self._days) >= CACHE_LIMIT:
                self._days.clear()
            self._days[rest] = base
        return base if type(base) is int else None

    def _day_base(self, rest: str) -> int | tuple[dt.tzinfo, dt.date] | UnknownZone | str:
        """'MSK Thu Oct 1 2009' -> the UTC epoch of that local midnight (fixed-offset
        zones), (zone, date) for zones with DST (converted exactly per value), an
        UnknownZone, or an error (str)."""
        parts = rest.split()
        if len(parts) != 5:
            return f"bad time zone and date {rest.strip()[:60]!r}"
        zone_name, _weekday, month, day, year = parts
        if (month not in MONTHS or not (day.isdigit() and day.isascii())
                or not (year.isdigit() and year.isascii() and len(year) == 4)):
            return f"bad date {month} {day} {year}"
        try:
            date = dt.date(int(year), MONTHS[month], int(day))
        except ValueError:
            return f"impossible date {month} {day} {year}"
        zone = zone_by_name(zone_name, self._zones)
        if zone is None:
            return UnknownZone((date.toordinal() - EPOCH_ORDINAL) * 86400)
        if zone_name not in self._zones and "/" not in zone_name:
            zone = standard_offset(zone, date)
        if isinstance(zone, dt.timezone):
            offset = int(zone.utcoffset(None).total_seconds())
            return (date.toordinal() - EPOCH_ORDINAL) * 86400 - offset
        return zone, date
