"""The tacacs block path: pipe mode's blocks of lines, the ordinary ones in one tight loop.

Pipe mode reads about 1 MiB at a time. The block is checked, decoded and split by a few
C calls (``ordinary_texts``), and ``OrdinaryLines.parse`` makes the record of each
ordinary line (ASCII, six columns and then ``name=value`` pairs with one '=' each, no
'*', nothing JSON escapes) from its fields, by the positions that its "shape" (the
sequence of pair names) gives: no dict of the pairs, no function call per value. Each
line it is not sure of (not ordinary, not a stop record, a shape without the usual
attributes, a time not in the usual form or of a day not met before, a cause not met
before, a number not in its first attribute, values out of range) goes to
``TacacsParser.parse_record``, the reference: the result is the same either way
(tests/test_format_tacacs_block.py compares them). billsec is elapsed_time, or without
it disconnect - connect, as the reference has it.
"""

from __future__ import annotations

from operator import itemgetter

from .base import CACHE_LIMIT, MAX_DURATION, MAX_LINE, Item, Rejection
from .clock import FILL_AFTER, day_times, seconds_of_day
from .tacacs_avs import _COLUMN_TABS, _UNMARKED, ADDED_KEYS, COLUMN_ATTRS



def ordinary_texts(block: bytes) -> tuple[list[str], frozenset[int]] | None:
    """(the lines of ``block`` decoded, with every '=' turned into a TAB; the indices of
    the lines that are not ordinary), or None when a line is longer than MAX_LINE (such a
    block is fed line by line)."""
    lines = block.replace(b"=", b"\t").split(b"\n")  # (bytes split at memchr speed)
    if len(block) > MAX_LINE and max(map(len, lines)) > MAX_LINE:
        return None
    odd: set[int] = set()
    # TABs, '=', '*' and what JSON escapes (the \n between lines too): an ordinary line
    # leaves six TABs (the columns), then '=' and TAB alternating, ending with '='.
    marks = block.translate(None, _UNMARKED).split(b"\n")
    other = [m for m in set(marks)
             if m != _COLUMN_TABS + b"=\t" * ((len(m) - 7) // 2) + b"="]
    if other:  # rare: find the lines
        other = set(other)
        odd.update(i for i, m in enumerate(marks) if m in other)
    if block.isascii():
        texts = list(map(bytes.decode, lines))
    else:  # rare: the lines that are not ASCII go to parse_record, which decodes them
        odd.update(i for i, line in enumerate(lines) if not line.isascii())
        texts = [line.decode("ascii", "surrogateescape") for line in lines]
    return texts, frozenset(odd)


def _number_position(order: tuple[str, ...], position: dict[str, int]) -> int:
    """Where the first number source of ``order`` is in a line's fields, when it is an
    attribute of the shape and no column comes before it (an absent attribute reads ''
    and is passed over); -1 (the '' put at the end of the fields) otherwise."""
    for name in order:
        if name.startswith("rem_addr") or name in ("user", "port"):  # TacacsParser._number
            return -1
        if name in position:
            return position[name]
    return -1


class _LineShape:
    """What the ordinary lines with one sequence of pair names need: the positions of the
    values read (in the fields: 6 columns, then name, value, name, value...), and extra's
    JSON text as a template: ``['{"k1": "', v1, '", "k2": "', v2, '"}']``, the values of
    the kept pairs going to the odd places and the end replaceable."""

    __slots__ = ("names", "values", "connect", "kept", "template")

    def __init__(self, names: list[str], kept: list[str], src_order: tuple[str, ...],
                 dst_order: tuple[str, ...]) -> None:
        position = {name: 7 + 2 * i for i, name in enumerate(names)}
        conf = "h323-conf-id" if "h323-conf-id" in position else "h323-incoming-conf-id"
        self.names = names
        # -1: the '' appended to the fields (an absent attribute reads '').
        self.values = itemgetter(*(position.get(name, -1) for name in (
            "h323-setup-time", "h323-disconnect-time", "elapsed_time",
            "h323-disconnect-cause", conf, "h323-call-origin", "h323-call-type",
            "h323-gw-id")), _number_position(src_order, position),
            _number_position(dst_order, position))
        # Without elapsed_time, billsec is disconnect - connect.
        self.connect = None if "elapsed_time" in position else position.get(
            "h323-connect-time", -1)
        getter = itemgetter(*(position[name] for name in kept))
        self.kept = getter if len(kept) > 1 else lambda fields: (getter(fields),)
        self.template: list[str | None] = []
        for name in kept:
            self.template += ['", "' + name + '": "', None]
        self.template[0] = '{"' + kept[0] + '": "'
        self.template.append(_END)


_END = '"}'  # the end of extra when the record adds nothing to it
_UNSYNCHRONISED = '", "clock": "unsynchronised"}'


def _line_shape(names: list[str], src_order: tuple[str, ...],
                dst_order: tuple[str, ...]) -> _LineShape | None:
    """The shape of lines with these names, or None when such lines go to parse_record:
    a name repeats or is one the record adds, an attribute of a complete call is missing
    (call type, setup and disconnect times), or extra would be empty."""
    have = set(names)
    if (len(have) != len(names) or not ADDED_KEYS.isdisjoint(have)
            or not _NEEDED <= have):
        return None
    column = set(COLUMN_ATTRS)
    if "h323-conf-id" not in have:
        column.add("h323-incoming-conf-id")
    kept = [name for name in names if name not in column]
    if not kept:
        return None
    return _LineShape(names, kept, src_order, dst_order)


_NEEDED = frozenset(("h323-call-type", "h323-setup-time", "h323-disconnect-time"))


class OrdinaryLines:
    """The block path of one TacacsParser: its shapes, and ``parse``."""

    def __init__(self, parser, causes: dict[str, str]) -> None:
        self.parser = parser  # a TacacsParser: settings, clocks, the reference parse_record
        self.causes = causes  # h323-disconnect-cause -> decimal, of valid causes seen
        # names -> _LineShape, or None: such lines go to parse_record (at most CACHE_LIMIT).
        self._shapes: dict[tuple[str, ...], _LineShape | None] = {}
        # The last usable shape of each number of fields: answer and originate legs
        # usually differ in their number of attributes, so this finds the right one.
        self._by_count: dict[int, _LineShape] = {}
        # The two halves of an h323 time 'HH:MM:SS.mmm TZ Www Mmm D YYYY' without a flag:
        # 'HH:MM:SS.' -> seconds of the day, ' TZ Www Mmm D YYYY' -> the UTC epoch of that
        # midnight (fixed-offset zones only). Valid values only; at most 86,400 and
        # CACHE_LIMIT entries.
        self._times: dict[str, int] = {}
        self._midnights: dict[str, int] = {}

    def _shape(self, names: list[str], count: int) -> _LineShape | None:
        key = tuple(names)
        shape = self._shapes.get(key, False)
        if shape is False:
            shape = _line_shape(names, self.parser.src_order, self.parser.dst_order)
            if len(self._shapes) >= CACHE_LIMIT:
                self._shapes.clear()
                self._by_count.clear()
            self._shapes[key] = shape
        if shape is not None:
            self._by_count[count] = shape
        return shape

    def _time_of_day(self, value: str) -> int | None:
        """The seconds of the day of an h323 time 'HH:MM:SS.mmm ...' (a leading flag and
        anything else: None)."""
        if value[8:9] != ".":
            return None
        sod = seconds_of_day(value[:8])
        if sod is not None:
            self._times[value[:9]] = sod
            if len(self._times) == FILL_AFTER:  # all at once: a month's log meets most
                self._times.update(zip([hms + "." for hms in day_times()], range(86400)))
        return sod

    def _midnight(self, value: str) -> int | None:
        """The UTC epoch of the local midnight of an h323 time's day (fixed-offset zones;
        else None)."""
        if value[12:13] != " ":
            return None
        base = self.parser.h323.fixed_midnight(value[13:])
        if base is not None:
            if len(self._midnights) >= CACHE_LIMIT:
                self._midnights.clear()
            self._midnights[value[12:]] = base
        return base

    def _connected(self, connect: str, stop: int) -> int | None:
        """Seconds from an h323-connect-time to ``stop`` (the disconnect epoch), when the
        connect time is in the usual form and they are 0 to MAX_DURATION apart."""
        if connect[:1] == ".":
            connect = connect[1:]
        start = self._times.get(connect[:9])
        if start is None:
            start = self._time_of_day(connect)
        day = self._midnights.get(connect[12:])
        if day is None:
            day = self._midnight(connect)
        if start is None or day is None or not connect[9:12].isdigit():
            return None
        seconds = stop - start - day
        return seconds if 0 <= seconds <= MAX_DURATION else None

    def parse(self, block: bytes, texts: list[str], odd: frozenset[int],
              years: list[int | None], lineno: int, records: list[tuple]) -> list[Item]:
        """Every line of ``block`` but the last, each a whole record: their records are
        appended to ``records``, the other items returned (rejections numbered from
        ``lineno``, the number of the first line). ``texts``, ``odd``: ordinary_texts of
        the block; ``years``: the year of each line's timestamp (for parse_record)."""
        parser = self.parser
        source = parser.source
        times = self._times
        midnights = self._midnights
        causes = self.causes
        calldate_of = parser.clock.format
        by_count = self._by_count
        append = records.append
        out: list[Item] = []
        lines = None  # the lines as bytes, for parse_record: split when first needed

        def reference(i: int) -> None:
            """A line the loop is not sure of: parse_record's item."""
            nonlocal lines
            if lines is None:
                lines = block.split(b"\n")
            item = parser.parse_record(lines[i], years[i])
            if type(item) is tuple:
                append(item)
            else:
                if type(item) is Rejection:
                    item.lineno = lineno + i
                out.append(item)

        # The legs of a call come together, usually with the same setup second.
        last_start = last_calldate = None
        for i in range(len(texts) - 1):
            if i in odd:
                reference(i)
                continue
            # Anything unexpected (a time at the edge of the calendar, a zone name the
            # system cannot read...): parse_record decides, as line by line.
            try:
                fields = texts[i].split("\t")
                names = fields[6::2]
                shape = by_count.get(len(fields))
                if shape is None or shape.names != names:
                    shape = self._shape(names, len(fields))
                if shape is not None and fields[5] == "stop":
                    fields.append("")  # what an absent attribute reads
                    setup, end, elapsed, cause, conf, origin, kind, gw, src, dst = \
                        shape.values(fields)
                    # What H323Clock.parse gives of 'HH:MM:SS.mmm TZ Www Mmm D YYYY'. A
                    # leading '.' (clock not synchronised): the time is used as it is, and a
                    # setup time's is noted in extra.
                    unsynchronised = False
                    start = times.get(setup[:9])
                    if start is None:
                        if setup[:1] == ".":
                            setup = setup[1:]
                            unsynchronised = True
                        start = self._time_of_day(setup)
                    start_day = midnights.get(setup[12:])
                    if start_day is None:
                        start_day = self._midnight(setup)
                    stop = times.get(end[:9])
                    if stop is None:
                        if end[:1] == ".":
                            end = end[1:]
                        stop = self._time_of_day(end)
                    stop_day = midnights.get(end[12:])
                    if stop_day is None:
                        stop_day = self._midnight(end)
                    cause = causes.get(cause)
                    if (start is not None and start_day is not None and stop is not None
                            and stop_day is not None and cause is not None
                            and setup[9:12].isdigit() and end[9:12].isdigit()):
                        start += start_day
                        stop += stop_day
                        duration = stop - start
                        if elapsed.isdigit() and len(elapsed) < 8:  # below MAX_DURATION
                            billsec = int(elapsed)
                        elif shape.connect is not None:
                            billsec = self._connected(fields[shape.connect], stop)
                        else:
                            billsec = None
                        if billsec is not None and 0 <= duration <= MAX_DURATION:
                            nas = fields[1]
                            if nas == "unknown":
                                nas = ""
                            port = fields[3]
                            if port == "unknown":
                                port = ""
                            conf = conf.strip()
                            origin = origin.strip()
                            record_source = source or gw.strip() or nas
                            extra = shape.template.copy()
                            extra[1::2] = shape.kept(fields)
                            if record_source != nas and nas:
                                extra[-1] = '", "nas": "' + nas + (
                                    _UNSYNCHRONISED if unsynchronised else _END)
                            elif unsynchronised:
                                extra[-1] = _UNSYNCHRONISED
                            originate = origin == "originate"
                            if start != last_start:
                                last_start, last_calldate = start, calldate_of(start)
                            append((
                                record_source,
                                last_calldate,
                                src.strip() or self._number(parser.src_order, fields, names, port),
                                dst.strip() or self._number(parser.dst_order, fields, names, port),
                                "" if originate else port,
                                port if originate else "",
                                duration,
                                billsec,
                                cause,
                                f"{conf}/{origin}/{kind.strip()}" if conf else "",
                                "".join(extra),
                            ))
                            continue
            except Exception:
                pass
            reference(i)
        return out

    def _number(self, order: tuple[str, ...], fields: list[str], names: list[str],
                port: str) -> str:
        """A number whose first source is not a value of the line: TacacsParser._number."""
        attrs = dict(zip(names, fields[7::2]))
        return self.parser._number(order, attrs, fields[2], port, fields[4])
