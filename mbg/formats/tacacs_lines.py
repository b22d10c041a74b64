"""The LineParser of tacacs input: TacacsLineAssembler (see mbg.formats and mbg.formats.tacacs).

It joins continuation lines to their record and gives year-less timestamps their year;
``feed`` takes a line, ``feed_block`` (pipe mode) a block of lines, whose ordinary lines
take the block path (mbg.formats.tacacs_block).
"""

from __future__ import annotations

import datetime as dt
import re

from ..settings import Settings
from .base import IGNORED, MAX_LINE, Item, Rejection, strip_terminator, truncated
from .clock import MONTHS
from .tacacs import TacacsParser
from .tacacs_block import ordinary_texts

_MON = rb"(Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
_DAY = rb"([ 0-3][0-9]) ([0-2][0-9]:[0-5][0-9]:[0-5][0-9])"
# 'Sep 24 16:08:12' (tac_plus >= F4.0.4.20) or 'Wed Jun 27 03:48:46 2001' (ctime).
_RECORD_START = re.compile(
    rb"(?:" + _MON + rb" " + _DAY + rb")(?=\s|$)"
    rb"|(?:(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) " + _MON + rb" " + _DAY + rb" ([0-9]{4}))(?=\s|$)"
)

_MONTHS_BYTES = {name.encode(): number for name, number in MONTHS.items()}
_MONTH_NAMES = {number: name for name, number in MONTHS.items()}
_WEEKDAYS = frozenset(("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"))
# The timestamps of one month (year-less) or of one year (ctime), as _RECORD_START reads
# them (ASCII text): made when first needed, at most 100.
_STARTS: dict[int | str, re.Pattern] = {}


def _starts_of(key: int | str) -> re.Pattern:
    """``key``: a month number (year-less timestamps) or a year 'YYYY' (ctime)."""
    pattern = _STARTS.get(key)
    if pattern is None:
        if type(key) is int:
            text = _MONTH_NAMES[key] + " " + _DAY.decode()
        else:
            text = "(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) " + _MON.decode() + " " + _DAY.decode() \
                + " " + key
        if len(_STARTS) >= 100:
            _STARTS.clear()
        pattern = _STARTS[key] = re.compile(text + r"(?=\s|$)", re.ASCII)
    return pattern



def _sort_items(items: list[Item], records: list[tuple], out: list[Item]) -> None:
    """Records to ``records``, other items to ``out``."""
    for item in items:
        if type(item) is tuple:
            records.append(item)
        else:
            out.append(item)


class TacacsLineAssembler:
    """The LineParser of tacacs input (see mbg.formats).

    Joins continuation lines (a line that does not start with a timestamp) to the record
    before them, and gives year-less timestamps their year: ``year`` (--year) is the year
    of the first record; without it, the first record's year is the latest one that does
    not put it after ``reference`` (the file's date; default today). After that the
    month is followed: a jump back of more than six months (December -> January) is a new
    year, a jump forward of more than six months a late line of the year before.
    """

    def __init__(
        self,
        settings: Settings,
        source: str | None = None,
        *,
        year: int | None = None,
        reference: dt.date | None = None,
    ) -> None:
        self.parser = TacacsParser(settings, source)
        self.lineno = 0
        self._reference = reference
        self._year = year
        self._month: int | None = None
        self._pending: list[bytes] = []
        self._pending_size = 0
        self._pending_lineno = 0
        self._pending_year: int | None = None

    def feed(self, line: bytes) -> list[Item]:
        self.lineno += 1
        if len(line) > MAX_LINE and len(strip_terminator(line)) > MAX_LINE:
            # Rejected on its own: never joined to the record before it.
            out = self._flush()
            out.append(Rejection(f"line longer than {MAX_LINE} bytes", line, self.lineno))
            return out
        start = _RECORD_START.match(line)
        if start is None:
            if not self._pending:
                if not line.strip():
                    return [IGNORED]
                return [Rejection("continuation line with no record before it",
                                  strip_terminator(line), self.lineno)]
            self._pending.append(strip_terminator(line))
            self._pending_size += len(line)
            if self._pending_size > MAX_LINE:
                return self._flush()
            return []
        out = self._flush()
        self._pending = [line]
        self._pending_size = len(line)
        self._pending_lineno = self.lineno
        self._pending_year = self._record_year(start)
        return out

    def feed_block(self, block: bytes, records: list[tuple]) -> list[Item]:
        """``feed`` of many lines at once (pipe mode): ``block`` is lines joined by
        ``\\n``. The records completed are appended to ``records`` and the other items
        returned: the same items as feeding the lines one by one. A block whose lines all
        start a record takes the block path (mbg.formats.tacacs_block)."""
        ordinary = ordinary_texts(block)
        years = None if ordinary is None else self._years(block, *ordinary)
        if years is None:
            out = []
            for line in block.split(b"\n"):
                _sort_items(self.feed(line), records, out)
            return out
        # Each line starts a record: the one held back is complete, and so is each line
        # but the last, which is held back in turn (the next block may continue it).
        texts, odd = ordinary
        out = []
        _sort_items(self._flush(), records, out)
        first = self.lineno + 1
        self.lineno += len(texts)
        out += self.parser.ordinary.parse(block, texts, odd, years, first, records)
        last = block[block.rfind(b"\n") + 1 :]
        self._pending = [last]
        self._pending_size = len(last)
        self._pending_lineno = self.lineno
        self._pending_year = years[-1]
        return out

    def _years(self, block: bytes, texts: list[str], odd: frozenset[int]
               ) -> list[int | None] | None:
        """The year of each line's timestamp (``_record_year`` of each line, in turn),
        or None when a line does not start a record (nothing changed then). ``texts``,
        ``odd``: ordinary_texts(block)."""
        lines = None
        # Usually every line is of the month of the line before (year-less timestamps:
        # nothing changes) or of the year of the first (ctime: the line has it).
        # Up to the first TAB, an ordinary line's text is the line itself; the others
        # (their '=' turned into TAB) are checked as they are.
        year = None
        if self._month is not None and all(map(_starts_of(self._month).match, texts)):
            year = self._year
        elif texts[0][:3] in _WEEKDAYS and texts[0][20:24].isdigit() and texts[0].isascii():
            if all(map(_starts_of(texts[0][20:24]).match, texts)):
                year = int(texts[0][20:24])
        if year is not None:
            if not odd:
                return [year] * len(texts)
            lines = block.split(b"\n")
            if all(_RECORD_START.match(lines[i]) for i in odd):
                return [year] * len(texts)
        starts = list(map(_RECORD_START.match, lines or block.split(b"\n")))
        if not all(starts):
            return None
        return [self._record_year(start) for start in starts]

    def finish(self, tail: bytes = b"") -> list[Item]:
        out = self._flush()
        if tail:
            self.lineno += 1
            out.append(truncated(tail, self.lineno))
        return out

    def _flush(self) -> list[Item]:
        if not self._pending:
            return []
        pending = self._pending
        record = pending[0] if len(pending) == 1 else b"\n".join(
            [strip_terminator(pending[0])] + pending[1:]
        )
        self._pending = []
        item = self.parser.parse_record(record, self._pending_year)
        if type(item) is Rejection:
            item.lineno = self._pending_lineno
        return [item]

    def _record_year(self, start: re.Match) -> int | None:
        if start.group(1) is None:  # ctime: the line has its year
            return int(start.group(7))
        month = _MONTHS_BYTES[start.group(1)]
        if self._month is None:
            if self._year is None:
                ref = self._reference or dt.date.today()
                day = int(start.group(2))
                self._year = ref.year if (month, day) <= (ref.month, ref.day + 1) else ref.year - 1
        elif self._month - month > 6:
            self._year += 1
        elif month - self._month > 6:
            self._year -= 1
        self._month = month
        return self._year
