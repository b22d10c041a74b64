"""The tacacs block path (mbg.formats.tacacs_block, TacacsLineAssembler.feed_block): a
block of lines gives exactly the items that feeding its lines one by one gives, whatever
the lines, wherever a block starts or ends, and pipe mode stores the same rows."""

from __future__ import annotations

import io
import json

import pytest

from mbg.formats import MAX_LINE, Rejection, TacacsLineAssembler
from mbg.formats.clock import FILL_AFTER
from mbg.ingest import RejectLog
from mbg.pipe import ingest_stream
from mbg.settings import settings_from_dict
from tests.collectors_helpers import MOSCOW, reject_lines, replace_av, rows_of, tacacs_line
from tests.test_format_tacacs_fast import BENCH_AVS, GENERAL, ORDINARY


def short(stamp: str = "Oct  1 06:10:01", avs=None, columns=None) -> bytes:
    """A year-less (tac_plus >= F4.0.4.20) stop line, by default the benchmark's shape."""
    return tacacs_line(stamp, columns, BENCH_AVS if avs is None else avs)


def leg(i: int, origin: str = "answer", stamp: str = "Oct  1 06:10:01") -> bytes:
    """An ordinary line with its own times, conf id and cause."""
    avs = replace_av(BENCH_AVS, "h323-conf-id", f"{i:08X} 6E48B1DA")
    avs = replace_av(avs, "h323-call-origin", origin)
    avs = replace_av(avs, "h323-setup-time", f"05:{i // 60 % 60:02d}:{i % 60:02d}.{i % 1000:03d} "
                                             "MSK Thu Oct 1 2009")
    avs = replace_av(avs, "elapsed_time", str(i % 7))
    avs = replace_av(avs, "h323-disconnect-cause", ("10", "1F", "11")[i % 3])
    return short(stamp, avs)


def by_lines(lines: list[bytes], settings=MOSCOW, **kwargs) -> tuple[list, list]:
    """(records, other items) of feeding the lines one by one, as pipe mode once did."""
    assembler = TacacsLineAssembler(settings, **kwargs)
    items = []
    for line in lines:
        items.extend(assembler.feed(line.removesuffix(b"\n")))
    items += assembler.finish()
    return [i for i in items if type(i) is tuple], [i for i in items if type(i) is not tuple]


def by_blocks(lines: list[bytes], size: int, settings=MOSCOW, **kwargs):
    """(records, other items, the assembler) of feed_block on blocks of ``size`` lines."""
    assembler = TacacsLineAssembler(settings, **kwargs)
    records, others = [], []
    for start in range(0, len(lines), size):
        block = b"\n".join(line.removesuffix(b"\n") for line in lines[start : start + size])
        others += assembler.feed_block(block, records)
        assert assembler.lineno == min(start + size, len(lines))
    for item in assembler.finish():
        (records if type(item) is tuple else others).append(item)
    return records, others, assembler


def assert_same(lines: list[bytes], sizes=(1, 2, 3, 7, 1000), **kwargs) -> tuple[list, list]:
    expected = by_lines(lines, **kwargs)
    for size in sizes:
        records, others, _ = by_blocks(lines, size, **kwargs)
        assert records == expected[0], size
        assert others == expected[1], size
    return expected


def test_ordinary_block_takes_the_block_path_and_gives_the_line_result():
    lines = [leg(i, ("answer", "originate")[i % 2]) for i in range(40)]
    records, others = assert_same(lines)
    assert len(records) == 40 and others == []
    _, _, assembler = by_blocks(lines, 1000)
    shapes = assembler.parser.ordinary._shapes
    assert shapes and all(shape is not None for shape in shapes.values())
    # MSK is +03:00, Moscow +04:00 until 2009-10-25.
    assert records[0][:10] == ("vgw1.example", "2009-10-01 06:00:00", "84958209942",
                               "84777213885", "Serial1/0:21", "", 4200, 0, "16",
                               "00000000 6E48B1DA/answer/VoIP")
    assert records[1][1:10] == ("2009-10-01 06:00:01", "84958209942", "84777213885", "",
                                "Serial1/0:21", 4199, 1, "31", "00000001 6E48B1DA/originate/VoIP")
    extra = json.loads(records[0][10])
    assert extra["nas"] == "192.168.113.21" and extra["task_id"] == "7"
    assert "h323-setup-time" not in extra and "elapsed_time" not in extra


@pytest.mark.parametrize("odd", ORDINARY + GENERAL)
def test_any_line_in_the_middle_of_ordinary_lines(odd):
    """Lines the block path leaves to parse_record (unknown zones, '.' clocks, bad values,
    other record types, other shapes) and lines that make a block not ordinary ('*',
    JSON escapes, non-ASCII...) give what they give line by line, numbers included."""
    lines = [leg(1), leg(2, "originate"), odd, leg(3), odd, leg(4, "originate")]
    assert_same(lines)
    assert_same(lines, year=2002)


def test_lines_that_are_not_ordinary_or_not_records():
    long_line = short(avs=[*BENCH_AVS, "x=" + "y" * MAX_LINE])
    lines = [
        leg(1), b"\n", leg(2),  # an empty line continues the record before it
        leg(3), b"\tcontinued=yes\n", leg(4),  # so does any line without a timestamp
        leg(5).replace(b"\n", b"\r\n"), leg(6),  # CRLF
        leg(7).replace(b"task_id", b"task\x00id"), leg(8),  # NUL
        long_line, leg(9),
        short(avs=replace_av(BENCH_AVS, "elapsed_time", "99999999")),  # over MAX_DURATION
        short(avs=replace_av(BENCH_AVS, "h323-setup-time", "06:01:25.7x5 MSK Thu Oct 1 2009")),
        short(avs=replace_av(BENCH_AVS, "h323-setup-time", "25:01:25.715 MSK Thu Oct 1 2009")),
        short(avs=replace_av(BENCH_AVS, "h323-setup-time", "06:01:25.715 MSK Thu Oct 32 2009")),
        short(avs=replace_av(BENCH_AVS, "h323-disconnect-time", "05:01:25.715 MSK Thu Oct 1 2009")),
        short(avs=replace_av(BENCH_AVS, "h323-disconnect-cause", "")),
        short(avs=[a for a in BENCH_AVS if not a.startswith("h323-disconnect-cause")]),
        short(avs=replace_av(BENCH_AVS, "clid", " ")),  # src from rem_addr
        short(avs=replace_av(BENCH_AVS, "h323-gw-id", " ")),
        short(columns=["unknown", "unknown", "unknown", "unknown", "stop"]),
        short(avs=replace_av(BENCH_AVS, "h323-conf-id", " ")),
        short(avs=["a%s=%d", *BENCH_AVS]),  # '%' in a name and a value
        short(avs=["h323-call-type=VoIP", "h323-setup-time=06:01:25.715 MSK Thu Oct 1 2009",
                   "h323-disconnect-time=06:10:00.420 MSK Thu Oct 1 2009",
                   "elapsed_time=3"]),  # nothing left for extra
        leg(10),
    ]
    records, others = assert_same(lines)
    assert len(records) > 10
    assert {type(item) for item in others} == {Rejection}


ODD = [  # lines that are not ordinary: parse_record takes each, the block path the rest
    short(avs=replace_av(BENCH_AVS, "h323-setup-time", "*06:01:25.715 MSK Thu Oct 1 2009")),
    short(avs=[*BENCH_AVS, 'quote="q"']),
    short(avs=[*BENCH_AVS, "name=\u0418\u0432\u0430\u043d"]),
    short().replace(b"RegularLine", "\u041b\u0438\u043d\u0438\u044f".encode("cp1251")),
    short().replace(b"task_id=7", b"task_id=\x007"),
    short().replace(b"\n", b"\r\n"),
    short(avs=[*BENCH_AVS, "h323-ivr-out=a=b"]),
    short(stamp="Oct  1 06:10:01=x"),  # '=' after the timestamp: not a record start
    short(stamp="Oct  1 06:10:01 x=y"),  # a record start (a space after the timestamp)
    short(columns=["10.0.0.1", "u=1", "p", "r", "stop"]),
]


def test_lines_that_are_not_ordinary_leave_the_others_on_the_block_path():
    """In the middle of a block they are taken one by one, wherever they are."""
    for odd in ODD:
        lines = [leg(i, ("answer", "originate")[i % 2]) for i in range(6)]
        for at in (0, 3, 5):
            assert_same(lines[:at] + [odd] + lines[at:], sizes=(1, 3, 1000))
    # Every line starts a record: the block path takes the ordinary lines.
    starts = [line for line in ODD if b"=x\t" not in line]
    mixed = [leg(i) for i in range(30)]
    for i, odd in enumerate(starts):
        mixed.insert(2 * i + 1, odd)
    records, others = assert_same(mixed, sizes=(1, 5, 1000))
    assert [r.reason for r in others] == ["not UTF-8 (byte 317)", "NUL byte in line"]
    assert len(records) == 30 + len(starts) - 2
    _, _, assembler = by_blocks(mixed, 1000)
    assert assembler.parser.ordinary._shapes
    # A line that continues the record before it: the block is fed line by line.
    mixed.insert(7, ODD[7])
    records, others = assert_same(mixed, sizes=(1000,))
    assert others[0].reason == "bad h323-disconnect-cause '10\\nOct  1 06:10:01=x'"
    _, _, assembler = by_blocks(mixed, 1000)
    assert not assembler.parser.ordinary._shapes


def test_clock_not_synchronised():
    """A leading '.': the time is used as it is; a setup time's is noted in extra."""
    no_elapsed = [a for a in BENCH_AVS if not a.startswith("elapsed_time")]
    dot = ".06:01:25.715 MSK Thu Oct 1 2009"
    lines = [
        short(avs=replace_av(BENCH_AVS, "h323-setup-time", dot)), leg(1),
        short(avs=replace_av(replace_av(BENCH_AVS, "h323-setup-time", dot), "h323-gw-id", None)),
        short(avs=replace_av(BENCH_AVS, "h323-disconnect-time", ".06:10:00.420 MSK Thu Oct 1 2009")),
        short(avs=replace_av(no_elapsed, "h323-connect-time", ".06:01:27.664 MSK Thu Oct 1 2009")),
        short(avs=replace_av(BENCH_AVS, "h323-setup-time", "..06:01:25.715 MSK Thu Oct 1 2009")),
        short(avs=replace_av(BENCH_AVS, "h323-setup-time", ".6:01:25.715 MSK Thu Oct 1 2009")),
        leg(2),
    ]
    records, others = assert_same(lines)
    extras = [json.loads(r[10]) for r in records]
    assert [e.get("clock") for e in extras] == [
        "unsynchronised", None, "unsynchronised", None, None, None]
    assert "nas" not in extras[2] and extras[0]["nas"] == "192.168.113.21"
    assert [r[6:8] for r in records[3:5]] == [(515, 513), (515, 513)]
    assert len(others) == 2  # '..' and a one-digit hour: bad times


def test_billsec_from_connect_and_disconnect_without_elapsed_time():
    no_elapsed = [a for a in BENCH_AVS if not a.startswith("elapsed_time")]
    lines = [
        short(avs=no_elapsed), leg(1),
        short(avs=replace_av(no_elapsed, "h323-connect-time", "06:10:00.999 MSK Thu Oct 1 2009")),
        short(avs=replace_av(no_elapsed, "h323-connect-time", "06:10:01.000 MSK Thu Oct 1 2009")),
        short(avs=replace_av(no_elapsed, "h323-connect-time", "")),
        short(avs=replace_av(no_elapsed, "h323-connect-time", "0")),
        short(avs=replace_av(no_elapsed, "h323-connect-time", ".06:01:27.664 MSK Thu Oct 1 2009")),
        short(avs=replace_av(no_elapsed, "h323-connect-time", "02:01:27.664 UTC Thu Oct 1 2009")),
        short(avs=replace_av(no_elapsed, "h323-connect-time", "06:01:27.6x4 MSK Thu Oct 1 2009")),
        short(avs=replace_av(no_elapsed, "h323-connect-time", None)),
        leg(2),
    ]
    records, others = assert_same(lines)
    # 06:01:27.664 to 06:10:00.420: 513 s (milliseconds dropped); 06:10:00.999: 0 s;
    # empty, '0' or none: 0 s; '.': used as it is; 02:01:27 UTC is 05:01:27 MSK.
    assert [r[7] for r in records] == [513, 1, 0, 0, 0, 513, 3600 + 513, 0, 2]
    assert [r.reason for r in others] == [
        "h323 times out of order (disconnect before setup or connect)",
        "h323-connect-time: bad time '06:01:27.6x4 MSK Thu Oct 1 2009'"]


def test_month_and_year_changes_inside_and_between_blocks():
    lines = [leg(1, stamp="Dec 31 23:59:58"), leg(2, stamp="Dec 31 23:59:59"),
             leg(3, stamp="Jan  1 00:00:05"), leg(4, stamp="Jan  1 00:00:09"),
             leg(5, stamp="Dec 31 23:59:59"), leg(6, stamp="Jan  2 00:00:00"),
             leg(7, stamp="Wed Nov  6 17:15:54 2002"), leg(8, stamp="Jan  2 00:00:01"),
             leg(9, stamp="Feb  2 00:00:01")]
    # A setup time in an unknown zone, no start_time: the calldate comes from the line
    # timestamp and its year (ordinary lines all the same: the block path takes them).
    unknown = [line.replace(b" MSK Thu", b" XYZ Thu").replace(b"\tstart_time=1254448885", b"")
               for line in lines]
    for kwargs in ({"year": 2009}, {}):
        assert_same(lines, **kwargs)
        records, others = assert_same(unknown, **kwargs)
        assert not others
    records, _ = by_lines(unknown, year=2009)
    # The line timestamp minus the duration (4200 s - i): 2010 from the first January.
    assert [r[1] for r in records] == [
        "2009-12-31 22:49:59", "2009-12-31 22:50:01", "2009-12-31 22:50:08",
        "2009-12-31 22:50:13", "2009-12-31 22:50:04", "2010-01-01 22:50:06",
        "2002-11-06 16:06:01", "2010-01-01 22:50:09", "2010-02-01 22:50:10"]


def test_ctime_timestamps_of_one_year_and_of_another():
    stamps = ["Thu Oct  1 06:10:01 2009", "Thu Oct  1 06:10:02 2009", "Wed Oct  1 06:10:03 2008",
              "Thu Oct  1 06:10:04 2009", "Oct  1 06:10:05", "Thu Oct  1 06:10:06 2009"]
    lines = [leg(i, stamp=stamp) for i, stamp in enumerate(stamps)]
    unknown = [line.replace(b" MSK Thu", b" XYZ Thu").replace(b"\tstart_time=1254448885", b"")
               for line in lines]
    for kwargs in ({"year": 2007}, {}):
        assert_same(lines, **kwargs)
        assert_same(unknown, **kwargs)
        assert_same(unknown[:2] * 3, **kwargs)
    records, others = assert_same(unknown, year=2007)
    assert [r[1][:4] for r in records] == ["2009", "2009", "2008", "2009", "2007", "2009"]


def test_user_number_orders():
    settings = settings_from_dict({"timezone": "Europe/Moscow",
                                   "tacacs": {"zones": {"MSK": "+03:00"},
                                              "src": ["calling-number", "rem_addr.ani", "clid"],
                                              "dst": ["in-portgrp-id", "dnis"]}})
    lines = [leg(1), short(avs=["calling-number=777", *BENCH_AVS]), leg(2),
             short(avs=replace_av(BENCH_AVS, "in-portgrp-id", ""))]
    records, _ = assert_same(lines, settings=settings)
    assert [(r[2], r[3]) for r in records] == [
        ("84212322311", "### 998 ###"), ("777", "### 998 ###"),
        ("84212322311", "### 998 ###"), ("84212322311", "84777213885")]


def test_time_cache_fills_at_once_and_holds_valid_values_only():
    lines = [leg(i) for i in range(FILL_AFTER + 10)]
    records, others = assert_same(lines, sizes=(500,))
    _, _, assembler = by_blocks(lines, 500)
    times = assembler.parser.ordinary._times
    assert len(times) == 86400
    assert times["23:59:59."] == 86399 and "24:00:00." not in times
    assert len(records) == len(lines)


def pipe(data: bytes, dataset, parser) -> tuple:
    with RejectLog(dataset, "tacacs") as rejects:
        counts = ingest_stream(io.BufferedReader(io.BytesIO(data)), parser, dataset, rejects)
    return counts


class LineByLine:
    """The assembler without its block path: pipe mode feeds it line by line."""

    def __init__(self, assembler: TacacsLineAssembler) -> None:
        self.feed = assembler.feed
        self.finish = assembler.finish


def test_pipe_mode_stores_what_line_by_line_stores(tmp_path):
    from mbg.pipe import CHUNK

    odd = [short(avs=replace_av(BENCH_AVS, "elapsed_time", "x")), b"\tcontinued=1\n",
           short(avs=[*BENCH_AVS, "name=\u0418\u0432\u0430\u043d"]), b"\n",
           short(columns=["10.0.0.1", "u", "p", "r", "start"])]
    lines = [leg(i, ("answer", "originate")[i % 2]) for i in range(3 * CHUNK // 600)]
    for i, line in enumerate(odd):
        lines.insert(1000 + i * 1500, line)
    data = b"".join(lines) + leg(7)[:200]  # and a truncated last line
    fast = pipe(data, tmp_path / "fast", TacacsLineAssembler(MOSCOW, year=2009))
    slow = pipe(data, tmp_path / "slow", LineByLine(TacacsLineAssembler(MOSCOW, year=2009)))
    assert fast == slow
    assert (fast.lines, fast.rejected, fast.ignored) == (len(lines) + 1, 2, 1)
    # Not a record of its own: the rejected, continuation, empty and start lines.
    assert fast.stored + fast.duplicates == len(lines) - 4
    assert rows_of(tmp_path / "fast" / "2009-10-01.db") == rows_of(
        tmp_path / "slow" / "2009-10-01.db")
    assert reject_lines(tmp_path / "fast") == reject_lines(tmp_path / "slow")


def _times(setup: str, connect: str, disconnect: str) -> list[str]:
    avs = replace_av(BENCH_AVS, "h323-setup-time", setup)
    avs = replace_av(avs, "h323-connect-time", connect)
    return replace_av(avs, "h323-disconnect-time", disconnect)


def test_times_the_calendar_or_the_zone_database_cannot_take_are_rejections_not_crashes():
    """A time at the end of datetime's range is one rejection, as line by line, and the
    lines around it are stored (a crash here stopped pipe mode and lost the batch)."""
    odd = short(avs=_times("23:50:00.000 UTC Fri Dec 31 9999", "23:50:01.000 UTC Fri Dec 31 9999",
                           "23:59:00.000 UTC Fri Dec 31 9999"))
    records, others = assert_same([leg(1), odd, leg(2, "originate")])
    assert len(records) == 2
    assert len(others) == 1 and type(others[0]) is Rejection


def test_a_zone_name_the_zone_database_cannot_open_is_an_unknown_zone():
    """A folder of the zone database ("Europe"), a name too long for a file: read as any
    unknown zone name (here "XYZ"), the same both ways, never an error with a path of the
    zone database in it."""
    def lines_with(zone: str) -> list[bytes]:
        return [leg(1),
                short(avs=replace_av(BENCH_AVS, "h323-disconnect-time",
                                     f"06:10:00.420 {zone} Thu Oct 1 2009")),
                leg(2, "originate"),
                short(avs=replace_av(BENCH_AVS, "h323-setup-time",
                                     f"06:01:25.715 {zone} Thu Oct 1 2009")),
                leg(3)]
    expected = assert_same(lines_with("XYZ"))
    assert expected[1]  # an unknown zone in the disconnect time: out of order
    for zone in ("Europe", "Z" * 300):
        records, others = assert_same(lines_with(zone))
        assert len(records) == len(expected[0])
        assert [o.reason for o in others] == [o.reason for o in expected[1]]
        assert not any("zoneinfo" in o.reason for o in others)


def test_a_time_without_zone_and_date_is_a_bad_time_whatever_came_before():
    """'06:20:00.000' alone, after lines that filled the time cache: the same rejection
    both ways (the cache once let it through as a time of an unknown zone)."""
    lines = [leg(i) for i in range(4)] + [
        short(avs=replace_av(BENCH_AVS, "h323-disconnect-time", "06:20:00.000 MSK Thu Oct 1 2009")),
        short(avs=replace_av(BENCH_AVS, "h323-disconnect-time", "06:20:00.000")),
        short(avs=replace_av(BENCH_AVS, "h323-disconnect-time", "06:20:00.000\x0bThu\x0bOct")),
    ]
    records, others = assert_same(lines)
    assert len(records) == 5
    assert [o.reason for o in others] == [
        "h323-disconnect-time: bad time '06:20:00.000'",
        "h323-disconnect-time: bad time '06:20:00.000\\x0bThu\\x0bOct'"]
