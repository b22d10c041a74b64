"""The callbuilder format-10 parser, line by line (FORMATS.md 2.2, 2.4, 2.5)."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from mbg.formats import IGNORED, MAX_LINE, Rejection, SimpleLineParser, parse_callbuilder_line
from mbg.formats.callbuilder import parse_callbuilder_block
from mbg.cli.agent import callbuilder_command
from tests.collectors_helpers import SAMPLES, cli_runner, rows_of

OUTGOING = b"A2345 2345 84951234567 C0100517 2345 4951234567 30-08-12 14:29:21 130 107 16\r\n"
INCOMING = b"C0200301 84957654321 2345 A2345 84957654321 2345 30-08-12 14:31:02 25 0 19\r\n"


def parse(line: bytes):
    return parse_callbuilder_line(line, "vk-pbx-1")


def test_outgoing_call_every_field():
    assert parse(OUTGOING) == (
        "vk-pbx-1", "2012-08-30 14:29:21", "2345", "84951234567", "A2345", "C0100517",
        130, 107, "16", "", '{"cgpn_out": "2345", "cdpn_out": "4951234567"}',
    )
    record = parse(OUTGOING)
    assert json.loads(record[10]) == {"cgpn_out": "2345", "cdpn_out": "4951234567"}


def test_incoming_unanswered_call():
    record = parse(INCOMING)
    assert record[1:10] == ("2012-08-30 14:31:02", "84957654321", "2345", "C0200301", "A2345",
                            25, 0, "19", "")


def test_terminator_optional_and_lf_only():
    assert parse(OUTGOING) == parse(OUTGOING.rstrip(b"\r\n")) == parse(OUTGOING[:-2] + b"\n")


def test_leading_0x02_is_stripped():
    assert parse(b"\x02" + OUTGOING) == parse(OUTGOING)


def test_dash_means_no_number_everywhere():
    record = parse(b"C0200301 - - A2345 - - 30-08-12 14:31:02 25 0 19\r\n")
    assert record[2:4] == ("", "")
    assert json.loads(record[10]) == {"cgpn_out": "", "cdpn_out": ""}
    one_side = parse(b"C0200301 - 2345 A2345 84957654321 - 30-08-12 14:31:02 25 0 19\r\n")
    assert one_side[2:4] == ("", "2345")
    assert json.loads(one_side[10]) == {"cgpn_out": "84957654321", "cdpn_out": ""}


def test_other_nonumstr_values_kept_as_json():
    record = parse(b'C0200301 x"y 2345 A2345 n\\a 2345 30-08-12 14:31:02 25 0 19\r\n')
    assert record[2] == 'x"y'
    assert json.loads(record[10]) == {"cgpn_out": "n\\a", "cdpn_out": "2345"}


@pytest.mark.parametrize("yy, year", [("00", 2000), ("09", 2009), ("38", 2038)])
def test_two_digit_years(yy, year):
    record = parse(f"A1 1 2 C1 1 2 01-01-{yy} 00:00:00 1 1 16\r\n".encode())
    assert record[1] == f"{year}-01-01 00:00:00"


@pytest.mark.parametrize(
    "date_time, reason",
    [
        ("01-01-39 00:00:00", "year 39 out of range"),
        ("01-01-99 00:00:00", "year 99 out of range"),
        ("31-02-12 00:00:00", "impossible date"),
        ("00-01-12 00:00:00", "impossible date"),
        ("01-13-12 00:00:00", "impossible date"),
        ("2012-08-30 14:29:21", "bad date"),
        ("30.08.12 14:29:21", "bad date"),
        ("30-08-12 24:00:00", "bad time"),
        ("30-08-12 23:60:00", "bad time"),
        ("30-08-12 1:02:03", "bad time"),
    ],
)
def test_impossible_dates_and_times_rejected(date_time, reason):
    line = f"A1 1 2 C1 1 2 {date_time} 1 1 16\r\n".encode()
    result = parse(line)
    assert isinstance(result, Rejection)
    assert reason in result.reason
    assert result.line == line


@pytest.mark.parametrize(
    "tail, reason",
    [("x 1 16", "bad seizure duration"), ("1 -1 16", "bad talk duration"),
     ("1 1 normal", "bad cause"), ("1 1 1\u0663", "bad cause"), ("1 1 ", "bad cause")],
)
def test_non_numeric_durations_and_cause_rejected(tail, reason):
    result = parse(f"A1 1 2 C1 1 2 30-08-12 14:29:21 {tail}\r\n".encode())
    assert isinstance(result, Rejection) and reason in result.reason


@pytest.mark.parametrize(
    "tail, reason",
    [("99999999999999999999 1 16", "seizure duration 99999999999999999999 out of range"),
     ("1 99999999999999999999 16", "talk duration 99999999999999999999 out of range"),
     ("10000001 1 16", "seizure duration 10000001 out of range (over 10000000 s)"),
     ("1 \u0663 16", "bad talk duration '\u0663'")],
)
def test_durations_past_the_bound_or_not_ascii_rejected(tail, reason):
    line = f"A1 1 2 C1 1 2 30-08-12 14:29:21 {tail}\r\n".encode()
    result = parse(line)
    assert isinstance(result, Rejection) and reason in result.reason
    # The block parser (pipe mode) gives the same rejection.
    records = []
    [(index, item)] = SimpleLineParser(parse_callbuilder_line, "p",
                                       parse_callbuilder_block).parse_block(line[:-2], records)
    assert records == [] and index == 0 and item.reason == result.reason


def test_longest_durations_accepted_leading_zeros_too():
    record = parse(b"A1 1 2 C1 1 2 30-08-12 14:29:21 10000000 00000000000000000007 16\r\n")
    assert record[6:8] == (10_000_000, 7)


def test_wrong_token_count_rejected():
    for line in (b"A1 1 2 C1 1 30-08-12 14:29:21 1 1 16\r\n",  # 10 tokens
                 b"A1 1 2 C1 1 2 30-08-12 14:29:21 1 1 16 extra\r\n",
                 b"A1  1 2 C1 1 2 30-08-12 14:29:21 1 1 16\r\n",  # double space
                 b"A1\t1\t2\tC1\t1\t2\t30-08-12\t14:29:21\t1\t1\t16\r\n"):
        result = parse(line)
        assert isinstance(result, Rejection) and "expected 11" in result.reason


def test_garbage_rejected_never_raises():
    for line in (b"\x00" * 10, b"A1 1 2 C1 1 2 30-08-12 14:29:21 1 1 16\x00\r\n",
                 "Не удалось определить время звонка".encode("cp1251") + b"\r\n",
                 "Не удалось определить время звонка".encode("utf-8") + b"\r\n",
                 b"\xff\xfe", b"A" * (MAX_LINE + 1), b"\r\n\r\n\r"):
        result = parse(line)
        assert isinstance(result, Rejection) or result is IGNORED


def test_nul_cp1251_and_long_lines_have_reasons():
    assert parse(OUTGOING[:-2] + b"\x00\r\n").reason == "NUL byte in line"
    assert parse("звонок".encode("cp1251") + b"\r\n").reason.startswith("not UTF-8")
    assert "longer than 65536" in parse(b"A" * (MAX_LINE + 1) + b"\r\n").reason
    # Exactly 64 KiB is not too long (it fails for its shape instead).
    assert "expected 11" in parse(b"A" * MAX_LINE + b"\r\n").reason


def test_empty_line_ignored():
    assert parse(b"\r\n") is IGNORED
    assert parse(b"") is IGNORED


def test_link_lost_causes_are_flagged():
    for cause in ("133", "134", "135"):
        record = parse(f"A1 1 2 C1 3 4 30-08-12 14:29:21 20000 19990 {cause}\r\n".encode())
        assert json.loads(record[10]) == {"cgpn_out": "3", "cdpn_out": "4", "suspect": True}
    assert "suspect" not in json.loads(parse(OUTGOING)[10])


def test_redirect_hops_are_one_row_each(tmp_path):
    hop1 = b"A2345 2345 84951234567 C0100517 2345 4951234567 30-08-12 14:29:21 130 107 16\r\n"
    hop2 = b"A2345 2345 84951234567 C0100518 2345 4957777777 30-08-12 14:29:21 130 107 16\r\n"
    ds = tmp_path / "ds"
    # The same hop twice (a log read again) is one row; two hops are two rows.
    result = cli_runner().invoke(callbuilder_command, ["-ports", "stdin vk-pbx-1", "-dataset",
                                                       str(ds)], input=hop1 + hop2 + hop1)
    assert result.exit_code == 0, result.output
    assert result.stderr.strip().splitlines()[-1] == (
        "callbuilder: read 3 lines: stored 2, duplicates 1, ignored 0, rejected 0")
    assert [(r["calldate"], r["src"], r["dst"], r["channel"], r["dstchannel"], r["extra"])
            for r in rows_of(ds / "2012-08-01.db")] == [
        ("2012-08-30 14:29:21", "2345", "84951234567", "A2345", "C0100517",
         {"cgpn_out": "2345", "cdpn_out": "4951234567"}),
        ("2012-08-30 14:29:21", "2345", "84951234567", "A2345", "C0100518",
         {"cgpn_out": "2345", "cdpn_out": "4957777777"}),
    ]


def test_public_samples_are_other_formats_and_rejected():
    """The only public callbuilder lines are formats 1, 4 and 20: never a format-10 call."""
    lines = [l for l in (SAMPLES / "m200_callbuilder.txt").read_bytes().splitlines()
             if l and not l.startswith(b"#")]
    assert lines
    for line in lines:
        line = line.replace(b"0x02", b"\x02")
        assert isinstance(parse(line), Rejection)


def test_line_parser_numbers_rejections_and_rejects_truncated_tail():
    parser = SimpleLineParser(parse_callbuilder_line, "p")
    assert parser.feed(OUTGOING)[0][0] == "p"
    bad = parser.feed(b"bad\r\n")[0]
    assert isinstance(bad, Rejection) and bad.lineno == 2
    assert parser.finish() == []
    tail = parser.finish(OUTGOING[:20])
    assert tail[0].lineno == 3 and "truncated" in tail[0].reason


MIXED = [
    b"A1 1 2 C1 1 2 30-08-12 14:00:01 10 5 16\r\r",  # two \r: stored like one
    b"A1 1 2 C1 1 2 30-08-12 14:00:02 10 5 16\r",
    b"\x02A1 1 2 C1 1 2 30-08-12 14:00:03 10 5 16\r\r\r",
    b"A1 1 2 C1 1 2 30-08-12 14:00:04 10 5 1\r6\r",  # a \r inside: rejected
    b"A1 1 2 C1 1 2 30-08-12 14:00:05 10 5 16",
    b"",
    b"\r",
]


def block_items(lines: list[bytes]) -> list:
    """parse_block over the lines joined: every item in line order."""
    records: list[tuple] = []
    others = dict(parse_callbuilder_block(b"\n".join(lines), records, "vk-pbx-1"))
    stored = iter(records)
    return [others[i] if i in others else next(stored) for i in range(len(lines))]


@pytest.mark.parametrize("bad", [None, b"bad \xff line\r", b"NUL \x00\r"])
def test_block_and_line_by_line_give_the_same_items(bad):
    # A bad line in the block sends the block parser down its line-by-line path: the
    # same lines must come out the same on either path.
    lines = MIXED + ([bad] if bad else [])
    by_line = [parse(line) for line in lines]
    assert block_items(lines) == by_line
    assert [item[1][11:] for item in by_line[:5] if type(item) is tuple] == [
        "14:00:01", "14:00:02", "14:00:03", "14:00:05"]
    assert by_line[0] == by_line[1][:1] + ("2012-08-30 14:00:01",) + by_line[1][2:]
    assert by_line[2][4] == "A1"
    assert isinstance(by_line[3], Rejection) and "cause" in by_line[3].reason
    assert by_line[5] is IGNORED and by_line[6] is IGNORED


def test_date_cache_keeps_valid_dates_only_and_stays_bounded():
    from mbg.formats import callbuilder
    from mbg.formats.base import CACHE_LIMIT

    callbuilder._DATES.clear()
    for i in range(3000):  # garbage dates: rejected, never cached
        assert isinstance(parse(f"A1 1 2 C1 1 2 {i % 100:02d}-{i // 100:02d}-99 14:00:00 1 1 16"
                                .encode()), Rejection)
    assert callbuilder._DATES == {}
    start = dt.date(2000, 1, 1)
    for i in range(CACHE_LIMIT + 500):  # a long run of valid dates
        day = start + dt.timedelta(days=i % (366 * 39))
        parse(f"A1 1 2 C1 1 2 {day:%d-%m-%y} 14:00:00 1 1 16".encode())
    assert 0 < len(callbuilder._DATES) <= CACHE_LIMIT
    assert parse(OUTGOING)[1] == "2012-08-30 14:29:21"


def sized(length: int, time: bytes) -> bytes:
    """A line of ``length`` bytes, its \\r\\n aside."""
    head, tail = b"A1 ", b" 2 C1 3 4 30-08-12 " + time + b" 10 5 16"
    return head + b"9" * (length - len(head) - len(tail)) + tail + b"\r\n"


# Lines for the quick path (tokens looked up among the valid values seen) and the general
# one (_check_tokens): odd values, values the caches refuse, and lines that fail one check.
ODD_LINES = [
    b"A1 1 2 C1 3 4 30-08-12 14:29:21 130 107 16\r\n",
    b"A1 - - C1 - - 30-08-12 14:29:22 130 107 16\r\n",  # no numbers
    b"A1 1 2 C1 - 4 30-08-12 14:29:23 130 107 16\r\n",
    b"A1 1 2 C1 3 - 30-08-12 14:29:24 130 107 16\r\n",
    b'A1 x"y 2 C1 n\\a 4 30-08-12 14:29:25 130 107 16\r\n',  # JSON escapes in extra
    b"A1 1 2 C1 3\t5 4 30-08-12 14:29:26 130 107 16\r\n",  # a TAB inside a number
    "A1 1 2 C1 \u00b2 \u0663 30-08-12 14:29:27 130 107 16\r\n".encode(),  # not ASCII digits
    "A1 \u0418 2 \u0421\u0031 3 4 30-08-12 14:29:28 1 1 16\r\n".encode(),  # Cyrillic: not ASCII
    b"A1 1 2 C1 3 4 30-08-12 14:29:29 20000 19990 133\r\n",  # suspect
    b"A1 1 2 C1 - - 30-08-12 14:29:30 20000 19990 135\r\n",
    b"A1 1 2 C1 3 4 30-08-12 14:29:31 130 107 0133\r\n",  # not suspect
    b"A1 1 2 C1 3 4 30-08-12 14:29:32 130 107 1234567\r\n",  # a long cause: not remembered
    b"A1 1 2 C1 3 4 30-08-12 14:29:33 10000000 00000000000000000007 16\r\n",  # long durations
    b"A1 1 2 C1 3 4 30-08-12 14:29:34 10000001 1 16\r\n",
    b"A1 1 2 C1 3 4 30-08-12 14:29:35 1 \xd9\xa3 16\r\n",
    b"A1 1 2 C1 3 4 30-08-12 14:29:36 x 1 16\r\n",
    b"A1 1 2 C1 3 4 30-08-12 14:29:37 1 1 normal\r\n",
    b"A1 1 2 C1 3 4 30-08-12 14:29:38 1 1 \r\n",
    b"A1 1 2 C1 3 4 31-02-12 14:29:39 1 1 16\r\n",
    b"A1 1 2 C1 3 4 01-01-39 14:29:40 1 1 16\r\n",
    b"A1 1 2 C1 3 4 30.08.12 14:29:41 1 1 16\r\n",
    b"A1 1 2 C1 3 4 30-08-12 24:00:00 1 1 16\r\n",
    b"A1 1 2 C1 3 4 30-08-12 1:02:03 1 1 16\r\n",
    b"A1 1 2 C1 3 4 30-08-12 14:29:42 1 1 16 extra\r\n",
    b"A1  1 2 C1 3 4 30-08-12 14:29:43 1 1 16\r\n",
    b"A1 1 2 C1 3 4 30-08-12 14:29:44 1 1\r\n",
    b"A1 1 2 C1 3 4 30-08-12 14:29:45 1 1 16 \r\n",
    b"A1 1 2 C1 3 4 30-08-12 14:29:46 10 5 16\r\r\n",  # several \r: stored like one
    b"A1 1 2 C1 3 4 30-08-12 14:29:47 10 5 16\r\r\r\n",
    b"A1 1 2 C1 3 4 30-08-12 14:29:48 10 5 1\r6\r\n",  # a \r inside: rejected
    b"A1 1 2 C1 3\r 4 30-08-12 14:29:49 10 5 16\r\n",  # a \r inside a number: escaped
    b"A1 1 2 C1 3 4 30-08-12 14:29:50 10 5 16\n",  # \n alone
    b"\x02A1 1 2 C1 3 4 30-08-12 14:29:51 10 5 16\r\n",
    b"\x02\x02A1 1 2 C1 3 4 30-08-12 14:29:52 10 5 16\r\n",
    b"\x02\r\n",
    b"\r\n",
    b"\n",
    b"\r\r\n",
    b"   \r\n",
    b"A1 1 2 C1 3 4 30-08-12 14:29:53 10 5 16\x00\r\n",
    b"A1 1 2 C1 3 4 30-08-12 14:29:54 10 5 \xff16\r\n",
    sized(MAX_LINE + 1, b"14:29:55"),  # too long
    sized(MAX_LINE, b"14:29:56"),  # 64 KiB: stored
    # Fewer characters than 64 KiB, more bytes: too long.
    "A1 {} 2 C1 3 4 30-08-12 14:29:59 10 5 16\r\n".format("\u0416" * 32760).encode(),
    # 64 KiB and one byte, or two, with the \r: the line itself is short.
    b"A1 1 2 C1 3 4 30-08-12 14:29:57 10 5 16".ljust(MAX_LINE + 1, b"\r") + b"\n",
    b"A1 1 2 C1 3 4 30-08-12 14:29:58 10 5 16".ljust(MAX_LINE + 2, b"\r") + b"\n",
]


def clear_caches() -> None:
    from mbg.formats import callbuilder

    for cache in (callbuilder._DATES, callbuilder._TIMES, callbuilder._SECONDS,
                  callbuilder._CAUSES):
        cache.clear()


def cold(line: bytes):
    """The line parsed alone with empty caches: the general path for every check."""
    clear_caches()
    return parse(line)


def test_the_longest_lines():
    assert [len(line) for line in ODD_LINES[-5:]] == [MAX_LINE + 3, MAX_LINE + 2, 65_560,
                                                      MAX_LINE + 2, MAX_LINE + 3]
    assert len(ODD_LINES[-3].decode()) < MAX_LINE
    too_long, longest, too_many_bytes, with_cr, with_crs = (cold(line) for line in ODD_LINES[-5:])
    assert "longer than 65536" in too_long.reason
    assert "longer than 65536" in too_many_bytes.reason
    assert longest[1] == "2012-08-30 14:29:56" and len(longest[2]) > 65000
    assert with_cr[1] == "2012-08-30 14:29:57" and with_crs[1] == "2012-08-30 14:29:58"


@pytest.mark.parametrize("seed", range(6))
def test_quick_and_general_paths_give_the_same_items(seed):
    """Every line alone with empty caches (the general path) gives what it gives in a
    block of all of them in any order, where the values already seen take the quick path,
    whatever the lines around it (a block with a bad line is checked line by line; a
    block of \\r\\n lines, or of \\n lines, is split at once)."""
    import random

    rng = random.Random(seed)
    lines = ODD_LINES * 3
    rng.shuffle(lines)
    good = [line for line in lines if b"\x00" not in line and b"\xff" not in line]
    crlf = [line for line in good if line.endswith(b"\r\n")]
    lf = [line[:-2] + b"\n" if line.endswith(b"\r\n") else line for line in good]
    expected = {line: cold(line) for line in lines + lf}
    for block in (lines, good, crlf, lf):
        clear_caches()
        items = block_items([line[:-1] for line in block])  # without their \n
        assert len(items) == len(block)
        for line, item in zip(block, items):
            wanted = expected[line]
            if type(wanted) is Rejection:
                assert type(item) is Rejection, line[:80]
                assert (item.reason, item.line + b"\n") == (wanted.reason, wanted.line), line[:80]
            else:
                assert item == wanted, line[:80]
        # Warm caches: the same again.
        assert block_items([line[:-1] for line in block]) == items


def test_quick_path_values_are_the_general_ones():
    clear_caches()
    records = [cold(line) for line in ODD_LINES[:13]]
    assert [r[6:9] for r in records] == [(130, 107, "16")] * 7 + [(1, 1, "16")] + [
        (20000, 19990, "133"), (20000, 19990, "135"), (130, 107, "0133"),
        (130, 107, "1234567"), (10_000_000, 7, "16")]
    assert [json.loads(r[10]) for r in records[:6]] == [
        {"cgpn_out": "3", "cdpn_out": "4"}, {"cgpn_out": "", "cdpn_out": ""},
        {"cgpn_out": "", "cdpn_out": "4"}, {"cgpn_out": "3", "cdpn_out": ""},
        {"cgpn_out": "n\\a", "cdpn_out": "4"}, {"cgpn_out": "3\t5", "cdpn_out": "4"}]
    assert records[1][2:4] == ("", "")
    assert records[6][10] == '{"cgpn_out": "\u00b2", "cdpn_out": "\u0663"}'
    assert json.loads(records[8][10])["suspect"] is True
    assert "suspect" not in json.loads(records[10][10])
    # Then through the quick path (the values are remembered now): the same records.
    assert [parse(line) for line in ODD_LINES[:13]] == records


def test_caches_hold_valid_short_values_only_and_stay_bounded():
    from mbg.formats import callbuilder
    from mbg.formats.base import CACHE_LIMIT

    clear_caches()
    for line in ODD_LINES * 2:  # (a time not seen yet takes the general path)
        parse(line)
    assert {"130", "107", "20000", "19990", "1", "10", "5"} <= set(callbuilder._SECONDS)
    assert all(len(k) < 8 and k.isdigit() and k.isascii() and v == int(k)
               for k, v in callbuilder._SECONDS.items())
    # Each with the \r of a \r\n line too (the last token keeps it); not "0133", too long.
    assert callbuilder._CAUSES == {cause + cr: (cause, suspect) for cause, suspect in
                                   (("16", False), ("133", True), ("135", True))
                                   for cr in ("", "\r")}
    assert all(callbuilder._TIMES[k] == k for k in callbuilder._TIMES)
    assert callbuilder._DATES == {"30-08-12": "2012-08-30 "}
    for i in range(CACHE_LIMIT + 10):
        parse(f"A1 1 2 C1 3 4 30-08-12 14:29:21 {i} {i} {i % 1000}\r\n".encode())
    assert 0 < len(callbuilder._CAUSES) <= 2 * 1000
    # Durations have a larger bound: 10,010 of them are all remembered.
    assert len(callbuilder._SECONDS) > CACHE_LIMIT
    assert callbuilder.SECONDS_LIMIT == 100_000
    # Each duration not seen yet is checked by the cache itself: never the invalid ones.
    seconds = callbuilder._Seconds()
    assert [seconds[t] for t in ("0", "7", "0007", "9999999")] == [0, 7, 7, 9_999_999]
    for token in ("10000000", "-1", "1x", "", "\u0663", "1 "):
        with pytest.raises(KeyError):
            seconds[token]
    assert seconds == {"0": 0, "7": 7, "0007": 7, "9999999": 9_999_999}
    assert parse(ODD_LINES[0])[6:9] == (130, 107, "16")


def test_extra_is_what_json_dumps_writes():
    from mbg.formats.callbuilder import _extra

    numbers = ["", "2345", "+74951234567", "x\"y", "n\\a", "\u0416\u0416", "\u00b2", "\u2028",
               "a b", "\x7f"] + [f"1{chr(c)}2" for c in range(32)]
    for cgpn_out in numbers:
        for cdpn_out in ("4951234567", "+7", "q\"", "\t"):
            for suspect in (False, True):
                extra = {"cgpn_out": cgpn_out, "cdpn_out": cdpn_out}
                if suspect:
                    extra["suspect"] = True
                assert _extra(cgpn_out, cdpn_out, suspect) == json.dumps(extra, ensure_ascii=False)
