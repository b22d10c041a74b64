"""Asterisk cdr_csv Master.csv (SPEC 6.1, FORMATS.md section 3).

No header; quoted CSV; 16, 17, 18 or 21 columns depending on cdr.conf:
accountcode, src, dst, dcontext, clid, channel, dstchannel, lastapp, lastdata, start,
answer, end, duration, billsec, disposition, amaflags, then uniqueid (loguniqueid),
userfield (loguserfield), peeraccount, linkedid, sequence (newcdrcolumns).

Decisions where SPEC is silent:
- 17 columns are read as the 16 plus ``uniqueid`` (``loguniqueid=yes`` is the common
  setting; a userfield-only setup would put the userfield into ``callid``).
- ``start``, ``answer`` and ``end`` are local times of the billing zone (cdr_csv's
  default); ``calldate`` = start as written. ``usegmtime=yes`` logs are not converted.
- Every CDR line is one row, including ``AppDial`` pseudo-records and ``Local/`` halves
  of one call (FORMATS 3.4.2): which of them to bill is a mediation rule's decision
  (``extra["lastapp"]``, ``extra["linkedid"]`` are there for it).
- ``extra`` holds every column not stored in its own column, under the names above.
- An empty line is ignored.
- ``duration`` and ``billsec`` must be ASCII digits, at most ``MAX_DURATION``
  (10,000,000 s, about 115 days); anything else rejects the line.
"""

from __future__ import annotations

import csv
import datetime as dt
import json

from .base import CACHE_LIMIT, IGNORED, Item, Rejection, check_line, duration_error
from .clock import seconds_of_day

COLUMNS = (
    "accountcode", "src", "dst", "dcontext", "clid", "channel", "dstchannel", "lastapp",
    "lastdata", "start", "answer", "end", "duration", "billsec", "disposition", "amaflags",
    "uniqueid", "userfield", "peeraccount", "linkedid", "sequence",
)
_COUNTS = (16, 17, 18, 21)
# Columns that are not stored in a telephony_log column, by index.
_EXTRA = tuple(
    (i, name) for i, name in enumerate(COLUMNS)
    if name not in ("src", "dst", "channel", "dstchannel", "start", "duration", "billsec",
                    "disposition", "uniqueid")
)

# 'YYYY-MM-DD' strings seen to be valid dates (at most CACHE_LIMIT).
_DATES: set[str] = set()


def _datetime_ok(value: str) -> bool:
    """'YYYY-MM-DD HH:MM:SS'."""
    if len(value) != 19 or value[10] != " ":
        return False
    day = value[:10]
    if day not in _DATES:
        try:
            if len(day) != 10 or day[4] != "-" or day[7] != "-":
                return False
            dt.date.fromisoformat(day)
        except ValueError:
            return False
        if len(_DATES) >= CACHE_LIMIT:
            _DATES.clear()
        _DATES.add(day)
    return seconds_of_day(value[11:]) is not None




def parse_asterisk_line(line: bytes, source: str) -> Item:
    """One Master.csv line (terminator optional) -> a record, a Rejection or IGNORED.

    ``source`` is the name given with ``-source`` (default: the host name).
    """
    raw = line
    line = line.rstrip(b"\r\n")
    text = check_line(line)
    if type(text) is Rejection:
        return Rejection(text.reason, raw)
    if not text:
        return IGNORED
    try:
        fields = next(csv.reader((text,), strict=True))
    except csv.Error as e:
        return Rejection(f"bad CSV: {e}", raw)
    count = len(fields)
    if count not in _COUNTS:
        return Rejection(f"expected 16, 17, 18 or 21 CSV fields, found {count}", raw)
    start, answer, end = fields[9], fields[10], fields[11]
    if not _datetime_ok(start):
        return Rejection(f"bad start {start!r}, expected YYYY-MM-DD HH:MM:SS", raw)
    if answer and not _datetime_ok(answer):
        return Rejection(f"bad answer {answer!r}, expected YYYY-MM-DD HH:MM:SS or empty", raw)
    if not _datetime_ok(end):
        return Rejection(f"bad end {end!r}, expected YYYY-MM-DD HH:MM:SS", raw)
    duration, billsec = fields[12].strip(), fields[13].strip()
    reason = duration_error("duration", duration) or duration_error("billsec", billsec)
    if reason:
        return Rejection(reason, raw)
    extra = {name: fields[i] for i, name in _EXTRA if i < count}
    return (
        source,
        start,
        fields[1],
        fields[2],
        fields[5],
        fields[6],
        int(duration),
        int(billsec),
        fields[14],
        fields[16] if count > 16 else "",
        json.dumps(extra, ensure_ascii=False),
    )
