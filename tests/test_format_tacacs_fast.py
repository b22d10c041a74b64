"""The tacacs fast path (mbg.formats.tacacs_avs: the ordinary line, by its "shape") gives
exactly what the general path gives, and lines it cannot take go the general way."""

from __future__ import annotations

import json

import pytest

from mbg.formats import IGNORED, Rejection
from mbg.formats.base import strip_terminator
from mbg.formats.tacacs import TacacsParser
from mbg.formats.tacacs_avs import AvShapes
from mbg.settings import settings_from_dict
from tests.collectors_helpers import MOSCOW, TACPPD_AVS, TACPPD_COLUMNS, replace_av, tacacs_line

BENCH_AVS = [  # the attributes of a Cisco originate leg with a gateway id and a conf id
    "task_id=7", "start_time=1254448885", "timezone=MSK", "service=connection",
    "protocol=h323", "h323-gw-id=vgw1.example", "h323-conf-id=68FD7D52 6E48B1DA 7E46E7AA B9",
    "h323-call-origin=originate", "h323-call-type=VoIP",
    "h323-setup-time=06:01:25.715 MSK Thu Oct 1 2009", "subscriber=RegularLine",
    "in-portgrp-id=### 998 ###", "h323-connect-time=06:01:27.664 MSK Thu Oct 1 2009",
    "h323-disconnect-time=06:10:00.420 MSK Thu Oct 1 2009", "h323-disconnect-cause=1F",
    "clid=84958209942", "dnis=84777213885", "elapsed_time=513",
    "h323-remote-address=10.1.2.3",
]


def both_paths(parser: TacacsParser, line: bytes, year: int = 2002):
    """(fast-or-general item, general item, whether the fast path took the line)."""
    raw = strip_terminator(line)
    text = raw.decode("utf-8", errors="replace")
    # parse_record's condition for its fast path
    fast = parser.shapes.parse(raw, text) if text.isascii() and "\tstop\t" in text else None
    took = fast is not None and fast[0][5] == "stop"
    return parser.parse_record(line, year), parser.parse_general(raw, text, year), took


ORDINARY = [
    tacacs_line(),
    tacacs_line(stamp="Nov  6 17:15:54"),
    tacacs_line(avs=BENCH_AVS),
    tacacs_line(avs=replace_av(BENCH_AVS, "h323-gw-id", None)),  # source: NAS, extra nas
    tacacs_line(avs=replace_av(BENCH_AVS, "h323-setup-time", ".06:01:25.715 MSK Thu Oct 1 2009")),
    tacacs_line(avs=replace_av(BENCH_AVS, "h323-setup-time", "06:01:25.715 XYZ Thu Oct 1 2009")),
    tacacs_line(avs=replace_av(BENCH_AVS, "h323-setup-time", None)),
    tacacs_line(avs=replace_av(BENCH_AVS, "elapsed_time", None)),  # billsec from the times
    tacacs_line(avs=replace_av(BENCH_AVS, "h323-conf-id", None)),  # no conf id: callid ''
    tacacs_line(avs=["h323-incoming-conf-id=AB CD", *BENCH_AVS]),  # both conf ids
    tacacs_line(avs=["{odd}=x", "a}b={y}", *TACPPD_AVS]),  # braces in names and values
    tacacs_line(avs=["h323-call-type=Telephony", "elapsed_time=5"]),  # only column attributes
    tacacs_line(avs=["h323-call-type=Telephony", "elapsed_time=5", "x="]),  # one kept, empty
    tacacs_line(columns=["unknown", "unknown", "unknown", "unknown", "stop"], avs=BENCH_AVS),
    tacacs_line(avs=[*BENCH_AVS, "h323-disconnect-cause=10"][:-1]),
    tacacs_line(avs=replace_av(BENCH_AVS, "elapsed_time", "x")),  # rejected
    tacacs_line(avs=replace_av(BENCH_AVS, "h323-disconnect-cause", "zz")),  # rejected
    tacacs_line(avs=replace_av(BENCH_AVS, "h323-call-type", None)),  # service/protocol: a call
    tacacs_line(avs=replace_av(replace_av(BENCH_AVS, "h323-call-type", None), "protocol",
                               None)),  # not a call: ignored
]

GENERAL = [
    # A '*' anywhere (here the router's clock never set): the general split decides.
    tacacs_line(avs=replace_av(BENCH_AVS, "h323-setup-time", "*06:01:25.715 MSK Thu Oct 1 2009")),
    tacacs_line(avs=replace_av(replace_av(BENCH_AVS, "h323-setup-time",
                                          "*06:01:25.715 MSK Thu Oct 1 2009"), "start_time", None)),
    tacacs_line(avs=[*BENCH_AVS, "clid=1111"]),  # a repeated name: a list in extra
    tacacs_line(avs=[*BENCH_AVS, "h323-ivr-out=a=b"]),  # '=' in a value
    tacacs_line(avs=[*BENCH_AVS, "cisco-avpair*h323-ivr-out=x"]),  # '*' separator
    tacacs_line(avs=[*BENCH_AVS, "flag"]),  # a pair without '='
    tacacs_line(avs=[*BENCH_AVS, ""]),  # an empty field
    tacacs_line(avs=[*BENCH_AVS, 'quote="q"']),  # JSON escapes
    tacacs_line(avs=[*BENCH_AVS, "back=a\\b"]),
    tacacs_line(avs=[*BENCH_AVS, "ctl=a\x01b"]),
    tacacs_line(avs=[*BENCH_AVS, "name=Иван"]),  # not ASCII
    tacacs_line(avs=["nas=10.9.9.9", *BENCH_AVS]),  # names the record adds itself
    tacacs_line(avs=["clock=x", *BENCH_AVS]),
    tacacs_line(columns=["10.0.0.1", "u=1", "p", "r", "stop"], avs=BENCH_AVS),  # '=' in a column
    tacacs_line(columns=["10.0.0.1", "u", "p", "r", "start"], avs=BENCH_AVS),  # not a stop
    tacacs_line(columns=["10.0.0.1", "u", "p", "r", "stop", "extra"], avs=BENCH_AVS),
    tacacs_line(avs=[]),
]


@pytest.mark.parametrize("line", ORDINARY)
def test_ordinary_lines_take_the_fast_path_and_give_the_general_result(line):
    parser = TacacsParser(MOSCOW)
    for _ in range(2):  # a new shape, then a known one
        fast, general, took = both_paths(parser, line)
        assert took
        assert fast == general
    if type(fast) is tuple and fast[10] is not None:
        json.loads(fast[10])


@pytest.mark.parametrize("line", GENERAL)
def test_other_lines_take_the_general_path(line):
    parser = TacacsParser(MOSCOW)
    fast, general, took = both_paths(parser, line)
    assert not took
    assert fast == general


def test_general_path_results_still_what_they_were():
    parser = TacacsParser(MOSCOW)
    record = parser.parse_record(tacacs_line(avs=[*BENCH_AVS, "clid=1111", "x=a=b"]), 2002)
    extra = json.loads(record[10])
    assert extra["clid"] == ["84958209942", "1111"] and extra["x"] == "a=b"
    assert record[2] == "84958209942"  # the first value of a repeated name
    assert parser.parse_record(tacacs_line(avs=[*BENCH_AVS, "ctl=a\x01b"]), 2002)[10].endswith(
        '"ctl": "a\\u0001b", "nas": "192.168.113.21"}')


def test_many_shapes_in_turn_and_a_bounded_cache():
    parser = TacacsParser(MOSCOW)
    lines = [tacacs_line(avs=[*BENCH_AVS, f"extra-{i}=v"]) for i in range(AvShapes.RECENT + 3)]
    for _ in range(3):
        for line in lines:
            fast, general, took = both_paths(parser, line)
            assert took and fast == general
    assert len(parser.shapes._recent) == AvShapes.RECENT


def test_a_misaligned_line_never_matches_a_known_shape():
    """'a=1 TAB b=x=c TAB z' splits into the names of 'a=1 TAB b=x TAB c=z': the check of
    the separators sends it the general way."""
    parser = TacacsParser(MOSCOW)
    good = tacacs_line(avs=[*BENCH_AVS, "b=x", "c=z"])
    bad = tacacs_line(avs=[*BENCH_AVS, "b=x=c", "z"])
    assert both_paths(parser, good)[2]
    fast, general, took = both_paths(parser, bad)
    assert not took and fast == general
    assert json.loads(fast[10])["b"] == "x=c" and json.loads(fast[10])["z"] == ""


def test_user_number_orders_read_through_the_fast_path():
    settings = settings_from_dict({"timezone": "Europe/Moscow",
                                   "tacacs": {"zones": {"MSK": "+03:00"},
                                              "src": ["subscriber", "rem_addr.ani"],
                                              "dst": ["in-portgrp-id", "user"]}})
    parser = TacacsParser(settings)
    fast, general, took = both_paths(parser, tacacs_line(avs=BENCH_AVS))
    assert took and fast == general
    assert fast[2:4] == ("RegularLine", "### 998 ###")


def test_ignored_and_rejected_items_agree():
    parser = TacacsParser(MOSCOW)
    not_a_call = tacacs_line(avs=["task_id=1", "service=shell"])
    assert parser.parse_record(not_a_call, 2002) is IGNORED
    bad = tacacs_line(avs=replace_av(TACPPD_AVS, "elapsed_time", "-3"))
    assert isinstance(parser.parse_record(bad, 2002), Rejection)
    assert TACPPD_COLUMNS[-1] == "stop"


def test_time_of_day_caches_fill_at_once_with_valid_times_only():
    from mbg.formats import callbuilder, clock
    from mbg.formats.clock import FILL_AFTER, BillingClock, H323Clock, seconds_of_day

    h323 = H323Clock({})
    billing = BillingClock(MOSCOW.timezone)
    for sod in range(0, 86400, 7)[: FILL_AFTER + 5]:
        hms = f"{sod // 3600:02d}:{sod // 60 % 60:02d}:{sod % 60:02d}"
        assert h323.parse(f"{hms}.123 UTC Thu Oct 1 2009") == (1254355200 + sod, "")
        assert callbuilder.parse_callbuilder_line(f"A1 1 2 C1 3 4 01-10-09 {hms} 5 5 16".encode(),
                                                  "p")[1] == f"2009-10-01 {hms}"
        billing.format(1254355200 + sod)
    assert len(clock._SECONDS) == len(callbuilder._TIMES) == len(billing._times) == 86400
    assert all(clock._SECONDS[hms] == seconds_of_day(hms) == sod
               for sod, hms in enumerate(clock.day_times()))
    assert all(billing._times[sod] == hms for sod, hms in enumerate(clock.day_times()))
    assert isinstance(h323.parse("24:00:00.000 UTC Thu Oct 1 2009"), str)
    assert isinstance(callbuilder.parse_callbuilder_line(b"A1 1 2 C1 3 4 01-10-09 23:60:00 5 5 16",
                                                         "p"), Rejection)
    assert billing.format(1254355200 + 3661) == "2009-10-01 05:01:01"  # Moscow: UTC+4 in 2009
