"""M-200 callbuilder CDR format 10 (SPEC 6.1, FORMATS.md section 2).

``Ch_In CgPN_In CdPN_In Ch_Out CgPN_Out CdPN_Out DD-MM-YY HH:MM:SS SeizDur TalkDur Cause``,
eleven tokens separated by single spaces, ending ``\\r\\n``; an optional leading 0x02 byte.

Decisions where SPEC is silent:
- ``-`` (callbuilder's ``-nonumstr``) is stored as '' in every number field, ``extra`` too.
- Years 00-38 are 20YY; 39-99 are rejected, as callbuilder itself refuses them
  (``IsAcceptedTime``), so such a date means a wrong PBX clock.
- Redirect hops (several lines for one call, FORMATS 2.5.4) are stored one row per line;
  identical lines are one row (the unique key). Mediation rules may skip hops.
- Causes 133, 134, 135 (lost link, overload, duplicate id) mark the row with
  ``"suspect": true`` in ``extra``: their durations may be cut short.
- An empty line is ignored (counted, not stored).

The hot path avoids regexes and datetime: a split, cached date and time checks, and an
f-string for ``extra`` (numbers are digits; anything else goes through json.dumps).
"""

from __future__ import annotations

import datetime as dt
import json

from .base import IGNORED, MAX_LINE, Item, Rejection

# 'DD-MM-YY' -> 'YYYY-MM-DD', or a rejection reason (str starting with '!').
_DATES: dict[str, str] = {}
# 'HH:MM:SS' strings seen to be valid.
_TIMES: set[str] = set()
_SUSPECT_CAUSES = frozenset(("133", "134", "135"))


def _check_date(token: str) -> str:
    if len(token) != 8 or token[2] != "-" or token[5] != "-":
        return "!bad date, expected DD-MM-YY"
    dd, mm, yy = token[0:2], token[3:5], token[6:8]
    if not (dd + mm + yy).isdigit() or not (dd + mm + yy).isascii():
        return "!bad date, expected DD-MM-YY"
    if int(yy) > 38:
        return f"!year {yy} out of range 00-38"
    try:
        return dt.date(2000 + int(yy), int(mm), int(dd)).isoformat()
    except ValueError:
        return f"!impossible date {token}"


def _time_ok(token: str) -> bool:
    if token in _TIMES:
        return True
    if (
        len(token) == 8
        and token[2] == ":"
        and token[5] == ":"
        and (token[0:2] + token[3:5] + token[6:8]).isdigit()
        and (token[0:2] + token[3:5] + token[6:8]).isascii()
        and int(token[0:2]) < 24
        and int(token[3:5]) < 60
        and int(token[6:8]) < 60
    ):
        _TIMES.add(token)
        return True
    return False


def _extra(cgpn_out: str, cdpn_out: str, cause: str) -> str:
    extra = {"cgpn_out": cgpn_out, "cdpn_out": cdpn_out}
    if cause in _SUSPECT_CAUSES:
        extra["suspect"] = True
    return json.dumps(extra, ensure_ascii=False)


def parse_callbuilder_line(line: bytes, source: str) -> Item:
    """One format-10 line (terminator optional) -> a record, a Rejection or IGNORED.

    ``source`` is the PBX name given with ``-ports "PORT NAME"``.
    """
    raw = line
    if line[:1] == b"\x02":
        line = line[1:]
    line = line.rstrip(b"\r\n")
    if len(line) > MAX_LINE:
        return Rejection(f"line longer than {MAX_LINE} bytes", raw)
    if b"\x00" in line:
        return Rejection("NUL byte in line", raw)
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as e:
        return Rejection(f"not UTF-8 (byte {e.start + 1})", raw)
    if not text:
        return IGNORED
    tokens = text.split(" ")
    if len(tokens) != 11:
        return Rejection(f"expected 11 space-separated fields, found {len(tokens)}", raw)
    ch_in, cgpn_in, cdpn_in, ch_out, cgpn_out, cdpn_out, day, time, seiz, talk, cause = tokens
    date = _DATES.get(day)
    if date is None:
        date = _DATES[day] = _check_date(day)
    if date[0] == "!":
        return Rejection(date[1:], raw)
    if time not in _TIMES and not _time_ok(time):
        return Rejection(f"bad time {time!r}, expected HH:MM:SS", raw)
    if not (seiz.isdigit() and talk.isdigit() and cause.isdigit() and text.isascii()):
        for name, value in (("seizure duration", seiz), ("talk duration", talk), ("cause", cause)):
            if not (value.isdigit() and value.isascii()):
                return Rejection(f"bad {name} {value!r}", raw)
    if cgpn_out == "-":
        cgpn_out = ""
    if cdpn_out == "-":
        cdpn_out = ""
    if (cgpn_out + cdpn_out).isdigit() and cgpn_out and cdpn_out:
        extra = '{"cgpn_out": "' + cgpn_out + '", "cdpn_out": "' + cdpn_out
        extra += '", "suspect": true}' if cause in _SUSPECT_CAUSES else '"}'
    else:
        extra = _extra(cgpn_out, cdpn_out, cause)
    return (
        source,
        date + " " + time,
        "" if cgpn_in == "-" else cgpn_in,
        "" if cdpn_in == "-" else cdpn_in,
        ch_in,
        ch_out,
        int(seiz),
        int(talk),
        cause,
        "",
        extra,
    )
