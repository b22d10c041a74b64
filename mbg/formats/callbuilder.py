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

Speed (pipe mode parses blocks of lines): a block is decoded and split into lines by a
few C calls; each line is split on spaces and each token that needs a check (date, time,
durations, cause) is one dict lookup among the valid values seen so far (the \\r of
\\r\\n stays on the cause, whose cache knows it). A line with a date, time or cause not
seen yet, or anything odd, goes to the general path (``_check_tokens``), which gives
every rejection reason and remembers the valid values; a duration not seen yet is checked
by its cache itself (``_Seconds``). ``extra`` is one f-string when there is nothing to
escape, else json.
"""

from __future__ import annotations

import datetime as dt
import json
import re

from .base import CACHE_LIMIT, IGNORED, MAX_LINE, Item, Rejection, check_line, duration_error
from .clock import FILL_AFTER, day_times, seconds_of_day

# The caches of valid tokens for the quick path (rejections are never cached: garbage is
# endless). The general path (_check_tokens) fills them, durations aside (_Seconds).
# Dicts of strings, not sets: the garbage collector does not track them.
# 'DD-MM-YY' -> 'YYYY-MM-DD ' (the calldate up to its time), at most CACHE_LIMIT.
_DATES: dict[str, str] = {}
# 'HH:MM:SS' -> itself, at most 86,400.
_TIMES: dict[str, str] = {}


SECONDS_LIMIT = 100_000


class _Seconds(dict):
    """A duration of at most seven ASCII digits (below MAX_DURATION: no int() needed to
    know) -> its int, for the quick path. Durations, unlike the other tokens, can be many
    (a log of long calls): one not seen yet is checked and remembered here, without the
    general path; anything else raises KeyError, and the general path says why. At most
    SECONDS_LIMIT (cleared when full): every duration below 100,000 s (27 hours) fits
    (about 13 MB)."""

    __slots__ = ()

    def __missing__(self, token: str) -> int:
        if not (len(token) < 8 and token.isdigit() and token.isascii()):
            raise KeyError(token)
        if len(self) >= SECONDS_LIMIT:
            self.clear()  # refills with what is in use
        seconds = self[token] = int(token)
        return seconds


_SECONDS = _Seconds()
# A cause of at most three ASCII digits, alone or with the \r of its line's \r\n (the
# last token of a line keeps it) -> (the cause, whether it is suspect), at most CACHE_LIMIT.
_CAUSES: dict[str, tuple[str, bool]] = {}
_SUSPECT_CAUSES = frozenset(("133", "134", "135"))
# json.dumps(value, ensure_ascii=False), without making an encoder at each call; what it
# escapes in a string (nothing else: not even non-ASCII).
_json = json.JSONEncoder(ensure_ascii=False).encode
_JSON_ESCAPED = re.compile(r'["\\\x00-\x1f]')


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
    """A valid HH:MM:SS, remembered (86,400 at most) so that the next is one lookup."""
    if token in _TIMES:
        return True
    if seconds_of_day(token) is None:
        return False
    _TIMES[token] = token
    if len(_TIMES) == FILL_AFTER:
        _TIMES.update(zip(day_times(), day_times()))
    return True


def _remember(cache: dict, key: str, value) -> None:
    if len(cache) >= CACHE_LIMIT:
        cache.clear()  # refills with what is in use
    cache[key] = value


def _check_tokens(text: str) -> Item | str:
    """The general path of one line (decoded, without terminator): its eleven tokens then
    (calldate, duration, billsec, suspect); or why it is rejected; or IGNORED (empty).
    Valid tokens are remembered, so that the next line with them takes the quick path."""
    tokens = text.split(" ")
    if len(tokens) != 11:
        return f"expected 11 space-separated fields, found {len(tokens)}" if text else IGNORED
    day, time, seiz, talk, cause = tokens[6:]
    date = _DATES.get(day)
    if date is None:
        date = _check_date(day)
        if date[0] == "!":
            return date[1:]
        date += " "
        _remember(_DATES, day, date)
    if not _time_ok(time):
        return f"bad time {time!r}, expected HH:MM:SS"
    reason = _bad_number(seiz, talk, cause)
    if reason:
        return reason
    suspect = cause in _SUSPECT_CAUSES
    if len(cause) < 4:  # (a cache of long garbage would grow past bounds)
        _remember(_CAUSES, cause, (cause, suspect))
        _remember(_CAUSES, cause + "\r", (cause, suspect))
    return (*tokens, date + time, int(seiz), int(talk), suspect)


def _extra(cgpn_out: str, cdpn_out: str, suspect: bool) -> str:
    """``extra`` as json.dumps(..., ensure_ascii=False) writes it; an f-string when there
    is nothing to escape (a number with '+', a suspect cause)."""
    if _JSON_ESCAPED.search(cgpn_out) or _JSON_ESCAPED.search(cdpn_out):
        extra = {"cgpn_out": cgpn_out, "cdpn_out": cdpn_out}
        if suspect:
            extra["suspect"] = True
        return _json(extra)
    flag = ', "suspect": true' if suspect else ""
    return f'{{"cgpn_out": "{cgpn_out}", "cdpn_out": "{cdpn_out}"{flag}}}'


def parse_callbuilder_line(line: bytes, source: str) -> Item:
    """One format-10 line (terminator optional) -> a record, a Rejection or IGNORED.

    ``source`` is the PBX name given with ``-ports "PORT NAME"``.
    """
    records: list[tuple] = []
    # Without its \r\n, as the lines of a block are split (a line ending \r\n alone, the
    # usual one, takes the quick path).
    others = parse_callbuilder_block(line.rstrip(b"\n").removesuffix(b"\r"), records, source)
    if records:
        return records[0]
    item = others[0][1]
    if type(item) is Rejection:
        item.line = line
    return item


def parse_callbuilder_block(block: bytes, records: list[tuple], source: str
                            ) -> list[tuple[int, Item]]:
    """The lines of ``block`` (joined by ``\\n``, no final ``\\n``): each gives one item,
    a record appended to ``records`` or one of the others, returned as (0-based line index,
    item). The block is split into lines of bytes only when needed (a line rejected, a
    block checked line by line).

    Pipe mode parses whole blocks: one decode and one NUL check per block, and no call
    per line; a block with a bad line is checked line by line.
    """
    raw_lines = None  # block.split(b"\n"), made when needed only
    others: list[tuple[int, Item]] = []
    texts = None
    if b"\x00" not in block:
        try:
            text = block.decode("utf-8")
        except UnicodeDecodeError:
            pass
        else:
            if "\x02" in text:
                text = text.replace("\n\x02", "\n").removeprefix("\x02")
            # Lines end with \r\n (or \n alone): the \r stays at the end of the last token,
            # the cause, and the quick path below takes it off. Any other \r at the end
            # of a line fails the quick path, and the general one strips it.
            texts = text.split("\n")
            # An ASCII line is as long as its bytes (without its 0x02; with its \r, longer
            # than the line checked): other text is measured in bytes.
            if text.isascii():
                longest = max(map(len, texts))
            else:
                raw_lines = raw_lines or block.split(b"\n")
                longest = max(map(len, raw_lines))
            if longest > MAX_LINE:
                texts = None  # line by line below
    if texts is None:
        raw_lines = raw_lines or block.split(b"\n")
        texts = []
        for index, raw in enumerate(raw_lines):
            text = check_line(raw.rstrip(b"\r").removeprefix(b"\x02"))
            if type(text) is Rejection:
                text.line = raw
                others.append((index, text))
                text = None
            texts.append(text)
    dates, times, seconds, causes = _DATES, _TIMES, _SECONDS, _CAUSES
    for index, text in enumerate(texts):
        if text is None:
            continue
        # The quick path: each token checked by one lookup among the valid ones seen.
        try:
            ch_in, cgpn_in, cdpn_in, ch_out, cgpn_out, cdpn_out, day, time, seiz, talk, cause = (
                text.split(" "))
            calldate = dates[day] + times[time]
            duration = seconds[seiz]
            billsec = seconds[talk]
            cause, suspect = causes[cause]
        except (ValueError, KeyError):
            checked = _check_tokens(text.rstrip("\r"))
            if type(checked) is not tuple:
                if checked is not IGNORED:
                    raw_lines = raw_lines or block.split(b"\n")
                    checked = Rejection(checked, raw_lines[index])
                others.append((index, checked))
                continue
            (ch_in, cgpn_in, cdpn_in, ch_out, cgpn_out, cdpn_out, day, time, seiz, talk, cause,
             calldate, duration, billsec, suspect) = checked
        if cgpn_out == "-":
            cgpn_out = ""
        if cdpn_out == "-":
            cdpn_out = ""
        # Numbers are digits (or '-', now ''): nothing to escape, the JSON is one f-string.
        if ((cgpn_out.isdigit() or not cgpn_out) and (cdpn_out.isdigit() or not cdpn_out)
                and not suspect):
            extra = f'{{"cgpn_out": "{cgpn_out}", "cdpn_out": "{cdpn_out}"}}'
        else:
            extra = _extra(cgpn_out, cdpn_out, suspect)
        records.append((
            source,
            calldate,
            "" if cgpn_in == "-" else cgpn_in,
            "" if cdpn_in == "-" else cdpn_in,
            ch_in,
            ch_out,
            duration,
            billsec,
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
