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
