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
- Every ``\r`` at the end of a line is dropped (``\r\r\n`` reads like ``\r\n``), in
  the block parser and line by line alike: a line is stored or rejected whatever its
  neighbours.
- SeizDur and TalkDur above ``MAX_DURATION`` (10,000,000 s, about 115 days) reject the
  line: such a value is a corrupt field.

The hot path avoids regexes and datetime: a split, cached date and time checks, and an
f-string for ``extra`` (numbers are digits; anything else goes through json.dumps).
"""

from __future__ import annotations

import datetime as dt
import json

from .base import CACHE_LIMIT, IGNORED, MAX_LINE, Item, Rejection, check_line, duration_error
from .clock import FILL_AFTER, day_times, seconds_of_day

# 'DD-MM-YY' -> 'YYYY-MM-DD', for the valid dates seen (at most CACHE_LIMIT).
_DATES: dict[str, str] = {}
# 'HH:MM:SS' strings seen to be valid (at most 86,400).
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
    """A valid HH:MM:SS, remembered (86,400 at most) so that the next is one set lookup."""
    if token in _TIMES:
        return True
    if seconds_of_day(token) is None:
        return False
    _TIMES.add(token)
    if len(_TIMES) == FILL_AFTER:
        _TIMES.update(day_times())
    return True


def _extra(cgpn_out: str, cdpn_out: str, cause: str) -> str:
    extra = {"cgpn_out": cgpn_out, "cdpn_out": cdpn_out}
    if cause in _SUSPECT_CAUSES:
        extra["suspect"] = True
    return json.dumps(extra, ensure_ascii=False)


def parse_callbuilder_line(line: bytes, source: str) -> Item:
    """One format-10 line (terminator optional) -> a record, a Rejection or IGNORED.

    ``source`` is the PBX name given with ``-ports "PORT NAME"``.
    """
    records: list[tuple] = []
    others = parse_callbuilder_block(line.rstrip(b"\n"), records, source)
    if records:
        return records[0]
    item = others[0][1]
    if type(item) is Rejection:
        item.line = line
    return item


def parse_callbuilder_block(block: bytes, records: list[tuple], source: str,
                            lines: list[bytes] | None = None) -> list[tuple[int, Item]]:
    """The lines of ``block`` (joined by ``\\n``, no final ``\\n``): records are appended
    to ``records``; the other items are returned as (0-based line index, item).
    ``lines``: ``block.split(b"\\n")`` if the caller has it already.

    Pipe mode parses whole blocks: one decode and one NUL check per block, and no call
    per line; a block with a bad line is checked line by line.
    """
    raw_lines = block.split(b"\n") if lines is None else lines
    others: list[tuple[int, Item]] = []
    texts = None
    if b"\x00" not in block and max(map(len, raw_lines)) <= MAX_LINE:
        try:
            text = block.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            # The \r of \r\n and a leading 0x02, for the whole block at once (the
            # number of lines does not change).
            if "\r" in text:
                text = text.replace("\r\n", "\n").removesuffix("\r")
                if "\r\n" in text or text[-1:] == "\r":
                    text = None  # a line ends with several \r: line by line below
            if text is not None:
                if "\x02" in text:
                    text = text.replace("\n\x02", "\n").removeprefix("\x02")
                texts = text.split("\n")
    if texts is None:
        texts = []
        for index, raw in enumerate(raw_lines):
            text = check_line(raw.rstrip(b"\r").removeprefix(b"\x02"))
            if type(text) is Rejection:
                text.line = raw
                others.append((index, text))
                text = None
            texts.append(text)
    append = records.append
    index = -1
    for text in texts:
        index += 1
        if text is None:
            continue
        tokens = text.split(" ")
        if len(tokens) != 11:
            if text:
                others.append((index, Rejection(
                    f"expected 11 space-separated fields, found {len(tokens)}", raw_lines[index])))
            else:
                others.append((index, IGNORED))
            continue
        ch_in, cgpn_in, cdpn_in, ch_out, cgpn_out, cdpn_out, day, time, seiz, talk, cause = tokens
        date = _DATES.get(day)
        if date is None:
            date = _check_date(day)
            if date[0] == "!":  # a rejection: not cached (garbage is endless)
                others.append((index, Rejection(date[1:], raw_lines[index])))
                continue
            if len(_DATES) >= CACHE_LIMIT:
                _DATES.clear()
            _DATES[day] = date
        if time not in _TIMES and not _time_ok(time):
            others.append((index, Rejection(f"bad time {time!r}, expected HH:MM:SS",
                                            raw_lines[index])))
            continue
        # Seven digits at most is below MAX_DURATION: the common case needs no int().
        if not (seiz.isdigit() and talk.isdigit() and cause.isdigit() and text.isascii()
                and len(seiz) < 8 and len(talk) < 8):
            reason = _bad_number(seiz, talk, cause)
            if reason:
                others.append((index, Rejection(reason, raw_lines[index])))
                continue
        if cgpn_out == "-":
            cgpn_out = ""
        if cdpn_out == "-":
            cdpn_out = ""
        if cgpn_out.isdigit() and cdpn_out.isdigit() and cause not in _SUSPECT_CAUSES:
            extra = f'{{"cgpn_out": "{cgpn_out}", "cdpn_out": "{cdpn_out}"}}'
        else:
            extra = _extra(cgpn_out, cdpn_out, cause)
        append((
            source,
            f"{date} {time}",
            "" if cgpn_in == "-" else cgpn_in,
            "" if cdpn_in == "-" else cdpn_in,
            ch_in,
            ch_out,
            int(seiz),
            int(talk),
            cause,
            "",
            extra,
        ))
    return others


def _bad_number(seiz: str, talk: str, cause: str) -> str:
    """Why the durations (ASCII digits, at most MAX_DURATION seconds) or the cause (ASCII
    digits) are not acceptable ('' if they are)."""
    reason = duration_error("seizure duration", seiz) or duration_error("talk duration", talk)
    if not reason and not (cause.isdigit() and cause.isascii()):
        reason = f"bad cause {cause[:40]!r}"
    return reason
