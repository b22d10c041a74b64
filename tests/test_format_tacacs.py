"""The tacacs parser and line assembler (SPEC 6.1, FORMATS.md 1.1-1.8)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json

import pytest

from mbg.formats import IGNORED, MAX_LINE, Rejection, TacacsLineAssembler
from mbg.formats.tacacs import parse_line_timestamp
from mbg.settings import parse_timezone, settings_from_dict
from tests.collectors_helpers import (MOSCOW, SAMPLES, TACPPD_AVS, TACPPD_COLUMNS, replace_av,
                                      tacacs_line, voice_stop)


def feed_all(lines: list[bytes], settings=MOSCOW, **kwargs) -> list:
    assembler = TacacsLineAssembler(settings, **kwargs)
    items = []
    for line in lines:
        items.extend(assembler.feed(line))
    return items + assembler.finish()


def one(line: bytes, settings=MOSCOW, **kwargs):
    items = feed_all([line], settings, **kwargs)
    assert len(items) == 1
    return items[0]


def as_dict(record: tuple) -> dict:
    names = ["source", "calldate", "src", "dst", "channel", "dstchannel", "duration",
             "billsec", "cause", "callid", "extra"]
    out = dict(zip(names, record))
    out["extra"] = json.loads(out["extra"]) if out["extra"] else None
    return out


def test_tacppd_record_every_field():
    record = as_dict(one(tacacs_line()))
    extra = record.pop("extra")
    assert record == {
        "source": "vgw.tts.khb.cisco",
        "calldate": "2002-11-06 10:15:28",  # 17:15:28 VSK (+10) is 10:15:28 in Moscow (+3)
        "src": "84212322311",  # rem_addr (ANI)
        "dst": "111",  # no dnis attribute, no DNIS in rem_addr: the user column
        "channel": "Serial1/0:21",  # answer leg: the port is the incoming channel
        "dstchannel": "",
        "duration": 25,  # disconnect - setup, milliseconds truncated: 53 - 28
        "billsec": 25,  # elapsed_time
        "cause": "16",  # hexadecimal 10
        "callid": "5CBC9187 F08E11D6 8058C840 5D76F8B3/answer/Telephony",
    }
    assert extra["nas"] == "192.168.113.21"
    assert extra["h323-voice-quality"] == "0"
    assert extra["in-portgrp-id"] == "### 320320 ###"
    assert extra["h323-disconnect-time"] == "17:15:53.933 VSK Wed Nov 6 2002"
    for column_attr in ("h323-setup-time", "h323-gw-id", "h323-incoming-conf-id",
                        "h323-call-origin", "h323-call-type", "h323-disconnect-cause",
                        "elapsed_time"):
        assert column_attr not in extra
    assert "clock" not in extra


def test_year_less_timestamp_same_record():
    assert one(tacacs_line("Nov  6 17:15:54"), year=2002) == one(tacacs_line())


def test_billing_zone_changes_calldate():
    utc = dataclasses.replace(MOSCOW, timezone=parse_timezone("UTC"), timezone_name="UTC")
    assert one(tacacs_line(), utc)[1] == "2002-11-06 07:15:28"


def test_unknown_zone_abbreviation_falls_back_to_start_time_and_is_noted():
    record = as_dict(one(tacacs_line(), settings_from_dict({"timezone": "Europe/Moscow"})))
    # start_time=1036566928 is 07:15:28 UTC, 10:15:28 in Moscow: the same as with VSK known.
    assert record["calldate"] == "2002-11-06 10:15:28"
    assert (record["duration"], record["billsec"]) == (25, 25)
    assert record["extra"]["clock"] == "unknown zone VSK (add it to [tacacs.zones])"
    assert record["extra"]["calldate_from"] == "start_time"


def test_utc_gmt_and_zone_names_known_by_default():
    settings = settings_from_dict({"timezone": "Europe/Moscow"})
    # Moscow was +04:00 (summer time) on 2009-10-01; EET is +02:00 (a router prints EEST
    # in summer), Europe/Helsinki +03:00 in summer.
    for zone, expected in (("UTC", "2009-10-01 16:00:00"), ("GMT", "2009-10-01 16:00:00"),
                           ("EET", "2009-10-01 14:00:00"),
                           ("Europe/Helsinki", "2009-10-01 13:00:00")):
        line = voice_stop("Oct  1 12:00:10", f"12:00:00.000 {zone} Thu Oct 1 2009",
                          f"12:00:09.000 {zone} Thu Oct 1 2009", 5)
        assert one(line, settings, year=2009)[1] == expected


@pytest.mark.parametrize(
    "zone, day, utc",
    [("EET", "Wed Jul 1 2020", "10:00"), ("EET", "Wed Jan 1 2020", "10:00"),
     ("CET", "Wed Jul 1 2020", "11:00"), ("MET", "Wed Jul 1 2020", "11:00"),
     ("WET", "Wed Jul 1 2020", "12:00"), ("EST5EDT", "Wed Jul 1 2020", "17:00"),
     ("EST", "Wed Jul 1 2020", "17:00"), ("Europe/Helsinki", "Wed Jul 1 2020", "09:00"),
     ("Europe/Helsinki", "Wed Jan 1 2020", "10:00")],
)
def test_zone_abbreviation_is_its_standard_offset_all_year(zone, day, utc):
    utc_settings = settings_from_dict({"timezone": "UTC"})
    line = voice_stop("Jul  1 12:00:10", f"12:00:00.000 {zone} {day}",
                      f"12:00:09.000 {zone} {day}", 5)
    record = one(line, utc_settings, year=2020)
    assert record[1][11:16] == utc and "clock" not in json.loads(record[10])


def test_configured_zone_keeps_its_dst_rules():
    helsinki = settings_from_dict({"timezone": "UTC", "tacacs": {"zones": {"EET": "Europe/Helsinki"}}})
    line = voice_stop("Jul  1 12:00:10", "12:00:00.000 EET Wed Jul 1 2020",
                      "12:00:09.000 EET Wed Jul 1 2020", 5)
    assert one(line, helsinki, year=2020)[1] == "2020-07-01 09:00:00"


def test_dst_of_billing_zone_applied_per_call():
    berlin = dataclasses.replace(MOSCOW, timezone=parse_timezone("Europe/Berlin"))
    # 2009-10-25 01:30 UTC is 02:30 CET (after the switch at 01:00 UTC); 00:30 UTC is 02:30 CEST.
    before = voice_stop("Oct 25 00:31:00", ".00:30:00.000 UTC Sun Oct 25 2009",
                        ".00:30:50.000 UTC Sun Oct 25 2009", 40)
    after = voice_stop("Oct 25 01:31:00", "01:30:00.000 UTC Sun Oct 25 2009",
                       "01:30:50.000 UTC Sun Oct 25 2009", 40)
    assert one(before, berlin, year=2009)[1] == "2009-10-25 02:30:00"
    assert one(after, berlin, year=2009)[1] == "2009-10-25 02:30:00"


def test_leading_dot_is_used_and_noted():
    line = tacacs_line(avs=replace_av(TACPPD_AVS, "h323-setup-time",
                                      ".17:15:28.589 VSK Wed Nov 6 2002"))
    record = as_dict(one(line))
    assert record["calldate"] == "2002-11-06 10:15:28"
    assert record["extra"]["clock"] == "unsynchronised"


def test_star_time_uses_start_time_and_is_noted():
    avs = replace_av(TACPPD_AVS, "h323-setup-time", "*00:00:50.151 UTC Mon Mar 1 1993")
    avs = replace_av(avs, "h323-disconnect-time", "*00:01:15.300 UTC Mon Mar 1 1993")
    record = as_dict(one(tacacs_line(avs=avs)))
    # start_time=1036566928 is 2002-11-06 07:15:28 UTC, 10:15:28 in Moscow.
    assert record["calldate"] == "2002-11-06 10:15:28"
    assert record["duration"] == 25  # the unset clock still runs: 75 - 50
    assert record["extra"]["clock"] == "unset"
    assert record["extra"]["calldate_from"] == "start_time"


def test_star_time_without_start_time_uses_line_timestamp_minus_duration():
    avs = replace_av(TACPPD_AVS, "h323-setup-time", "*00:00:50.151 UTC Mon Mar 1 1993")
    avs = replace_av(avs, "h323-disconnect-time", "*00:01:15.300 UTC Mon Mar 1 1993")
    avs = replace_av(avs, "start_time", None)
    record = as_dict(one(tacacs_line("Nov  6 17:15:54", avs=avs), year=2002))
    # The line timestamp is the tac_plus host's clock, taken as the billing zone.
    assert record["calldate"] == "2002-11-06 17:15:29"
    assert record["extra"]["calldate_from"] == "line timestamp"


def test_milliseconds_truncated_never_rounded():
    line = voice_stop("Oct  1 12:00:10", "12:00:00.999 MSK Thu Oct 1 2009",
                      "12:00:09.001 MSK Thu Oct 1 2009", 8)
    record = one(line, year=2009)
    # MSK is configured as +03:00; Moscow was +04:00 (summer time) on 2009-10-01.
    assert record[1] == "2009-10-01 13:00:00"
    assert record[6] == 9  # 09 - 00, not 8.002 rounded


def test_billsec_from_times_without_elapsed_time():
    line = voice_stop("Oct  1 12:00:10", "12:00:00.000 MSK Thu Oct 1 2009",
                      "12:00:30.000 MSK Thu Oct 1 2009", 0)
    line = line.replace(b"\telapsed_time=0", b"").replace(
        b"h323-connect-time=12:00:00.000", b"h323-connect-time=12:00:07.900")
    record = one(line, year=2009)
    assert (record[6], record[7]) == (30, 23)


def test_zero_times_from_non_cisco_gateways_are_absent():
    line = voice_stop("Oct  1 12:00:10", "12:00:00.000 MSK Thu Oct 1 2009", "0", 0)
    record = one(line, year=2009)
    assert (record[6], record[7]) == (0, 0)


@pytest.mark.parametrize(
    "name, value, reason",
    [
        ("h323-setup-time", "17:15:28.589 VSK Wed Nov 31 2002", "impossible date"),
        ("h323-setup-time", "25:15:28.589 VSK Wed Nov 6 2002", "bad time"),
        ("h323-setup-time", "garbage", "bad time"),
        ("h323-disconnect-time", "17:15:53 VSK Nov 6 2002", "bad time zone and date"),
        ("h323-disconnect-cause", "zz", "bad h323-disconnect-cause"),
        ("elapsed_time", "2.5", "bad elapsed_time"),
        ("elapsed_time", "\u0663", "bad elapsed_time '\u0663'"),
        ("elapsed_time", "2\u0663", "bad elapsed_time"),
        ("h323-setup-time", "17:15:28.589 VSK Wed Nov \u0666 2002", "bad date"),
        ("h323-setup-time", "17:15:28.589 VSK Wed Nov 6 \u0662\u0660\u0660\u0662", "bad date"),
        ("elapsed_time", "99999999999999999999", "elapsed_time 99999999999999999999 out of range"),
        ("elapsed_time", "10000001", "elapsed_time 10000001 out of range"),
        ("h323-disconnect-time", "17:15:53.933 VSK Wed Nov 6 2003", "call longer than"),
        ("h323-disconnect-time", "17:15:00.000 VSK Wed Nov 6 2002", "out of order"),
    ],
)
def test_bad_values_reject_the_record(name, value, reason):
    result = one(tacacs_line(avs=replace_av(TACPPD_AVS, name, value)))
    assert isinstance(result, Rejection) and reason in result.reason
    assert result.line == tacacs_line(avs=replace_av(TACPPD_AVS, name, value))[:-1]


def test_line_timestamp_takes_ascii_digits_only():
    assert parse_line_timestamp("Nov  6 17:15:54", 2002) == (dt.date(2002, 11, 6), 62154)
    assert parse_line_timestamp("Nov \u0666 17:15:54", 2002) is None
    assert parse_line_timestamp("Wed Nov \u0666 17:15:54 2002") is None


def test_longest_duration_accepted():
    result = one(tacacs_line(avs=replace_av(TACPPD_AVS, "elapsed_time", "10000000")))
    assert result[7] == 10_000_000


@pytest.mark.parametrize("hex_cause, decimal", [("10", "16"), ("1F", "31"), ("1f", "31"),
                                                ("11", "17"), ("0", "0"), ("66", "102")])
def test_disconnect_cause_hex_to_decimal(hex_cause, decimal):
    line = tacacs_line(avs=replace_av(TACPPD_AVS, "h323-disconnect-cause", hex_cause))
    assert one(line)[8] == decimal


def test_legs_are_rows_with_their_own_callid_and_channels():
    answer = voice_stop("Oct  1 12:00:10", "12:00:00.000 MSK Thu Oct 1 2009",
                        "12:00:09.000 MSK Thu Oct 1 2009", 8, conf="931C146B 0F4411D6")
    originate = voice_stop("Oct  1 12:00:10", "12:00:00.000 MSK Thu Oct 1 2009",
                           "12:00:09.000 MSK Thu Oct 1 2009", 8, conf="931C146B 0F4411D6",
                           origin="originate", kind="VoIP",
                           extra_avs=["h323-remote-address=10.9.9.9"])
    a, o = feed_all([answer, originate], year=2009)
    assert a[9] == "931C146B 0F4411D6/answer/Telephony"
    assert o[9] == "931C146B 0F4411D6/originate/VoIP"
    assert (a[4], a[5]) == ("Serial0:1", "")
    assert (o[4], o[5]) == ("", "Serial0:1")
    assert json.loads(o[10])["h323-remote-address"] == "10.9.9.9"


def test_conf_id_preferred_over_incoming_conf_id():
    avs = TACPPD_AVS + ["h323-conf-id=11111111 22222222 33333333 44444444"]
    record = as_dict(one(tacacs_line(avs=avs)))
    assert record["callid"].startswith("11111111 22222222 33333333 44444444/")
    assert record["extra"]["h323-incoming-conf-id"] == "5CBC9187 F08E11D6 8058C840 5D76F8B3"


def test_no_conf_id_gives_empty_callid():
    avs = replace_av(TACPPD_AVS, "h323-incoming-conf-id", None)
    assert one(tacacs_line(avs=avs))[9] == ""


def test_source_is_nas_without_gw_id_and_unknown_reads_empty():
    avs = replace_av(TACPPD_AVS, "h323-gw-id", None)
    record = as_dict(one(tacacs_line(columns=["192.168.113.21", "unknown", "unknown",
                                              "unknown", "stop"], avs=avs)))
    assert record["source"] == "192.168.113.21"
    assert "nas" not in record["extra"]
    assert (record["src"], record["dst"], record["channel"]) == ("", "", "")


def test_numbers_default_order():
    line = voice_stop("Oct  1 12:00:10", "12:00:00.000 MSK Thu Oct 1 2009",
                      "12:00:09.000 MSK Thu Oct 1 2009", 8)
    # rem_addr 4957654321/84951112233 = ANI/DNIS.
    assert one(line, year=2009)[2:4] == ("4957654321", "84951112233")
    with_attrs = voice_stop("Oct  1 12:00:10", "12:00:00.000 MSK Thu Oct 1 2009",
                            "12:00:09.000 MSK Thu Oct 1 2009", 8,
                            extra_avs=["clid=74951000000", "dnis=79160000000"])
    assert one(with_attrs, year=2009)[2:4] == ("74951000000", "79160000000")
    calling = voice_stop("Oct  1 12:00:10", "12:00:00.000 MSK Thu Oct 1 2009",
                         "12:00:09.000 MSK Thu Oct 1 2009", 8,
                         extra_avs=["calling-number=111", "called-number=222"])
    assert one(calling, year=2009)[2:4] == ("111", "222")


def test_numbers_order_from_settings():
    settings = settings_from_dict({"timezone": "Europe/Moscow",
                                   "tacacs": {"zones": {"MSK": "+03:00"},
                                              "src": ["user"], "dst": ["rem_addr"]}})
    line = voice_stop("Oct  1 12:00:10", "12:00:00.000 MSK Thu Oct 1 2009",
                      "12:00:09.000 MSK Thu Oct 1 2009", 8, extra_avs=["clid=1", "dnis=2"])
    assert one(line, settings, year=2009)[2:4] == ("4951234567", "4957654321/84951112233")


def test_repeated_attributes_and_star_separator():
    line = voice_stop("Oct  1 12:00:10", "12:00:00.000 MSK Thu Oct 1 2009",
                      "12:00:09.000 MSK Thu Oct 1 2009", 8,
                      extra_avs=["addr=10.1.1.1", "addr=10.1.1.2", "cisco-opt*a=b",
                                 "h323-ivr-out=h323-call-id:1=2"])
    extra = json.loads(one(line, year=2009)[10])
    assert extra["addr"] == ["10.1.1.1", "10.1.1.2"]
    assert extra["cisco-opt"] == "a=b"
    assert extra["h323-ivr-out"] == "h323-call-id:1=2"


def test_start_update_and_non_voice_records_are_ignored():
    start = tacacs_line(columns=TACPPD_COLUMNS[:-1] + ["start"])
    update = tacacs_line(columns=TACPPD_COLUMNS[:-1] + ["update"])
    shell = b"Sep 24 16:08:12\t10.200.201.71\tuser\ttty0\tasync\tstop\ttask_id=2\ttimezone=UTC\tservice=shell\tpriv-lvl=15\tcmd=show version <cr>\n"
    ppp = b"Wed Jun 27 04:01:31 2001\t172.16.25.15\tusername1\ttty4\t562/4327528\tstop\ttask_id=30\taddr=10.1.1.1\tservice=ppp\tprotocol=ip\telapsed_time=51\n"
    h323_word = b"Wed Jun 27 04:01:31 2001\t1.1.1.1\tu\tp\tr\tstop\tservice=shell\tcmd=show h323 gateway\n"
    assert feed_all([start, update, shell, ppp, h323_word], year=2009) == [IGNORED] * 5


def test_protocol_h323_without_call_type_is_a_call():
    avs = replace_av(TACPPD_AVS, "h323-call-type", None)
    assert isinstance(one(tacacs_line(avs=avs)), tuple)


def test_unknown_record_type_and_lost_tab_rejected():
    lost_tab = tacacs_line(columns=TACPPD_COLUMNS[:-1] + ["stoptask_id=27"])
    result = one(lost_tab)
    assert isinstance(result, Rejection) and "unknown record type" in result.reason
    short = one(b"Sep 24 16:08:12\t10.200.201.71\tuser\n", year=2009)
    assert isinstance(short, Rejection) and "TAB-separated" in short.reason


def test_real_tac_plus_sample_lines():
    """[A] real tac_plus lines are ignored (shell); [B], [C] lost their TABs in the
    documents: rejected, joined with their wrapped continuation lines, never a crash."""
    data = (SAMPLES / "tacplus_acct.txt").read_bytes()
    lines = [l + b"\n" for l in data.split(b"\n") if not l.startswith(b"#")][:-1]
    items = feed_all(lines, year=2009, reference=dt.date(2009, 12, 31))
    section_a = [l for l in lines if l.startswith(b"Sep 24")]
    assert items[: len(section_a)] == [IGNORED] * len(section_a)
    rejected = [i for i in items if isinstance(i, Rejection)]
    assert rejected and not [i for i in items if isinstance(i, tuple)]
    # Every non-empty line of the file is in some rejection or an ignored record.
    assert len(items) >= len(section_a) + 1


def test_continuation_lines_are_joined():
    first, rest = tacacs_line()[:-1].split(b"\th323-voice-quality=0")
    lines = [first + b"\n", b"\th323-voice-quality=0" + rest + b"\n"]
    items = feed_all(lines)
    assert len(items) == 1
    extra = json.loads(items[0][10])
    assert extra["h323-voice-quality"] == "0"
    assert extra["tariff-type"] == "Unknown\n"  # the embedded newline is kept in the value


def test_extreme_networks_sample_value_with_newline():
    lines = [b"Wed Oct 14 10:40:40 2015\t10.18.245.157\tadmin1\t/dev/pts/0\t10.70.7.36\tstop\ttask_id=1\ttimezone=Etc/GMT\tservice=shell\tStop_time=Wed Oct 14 17:39:49 2015\n",
             b"\n", b"        Status=Succeeded\n", b"\n",
             b"Wed Oct 14 10:42:14 2015\t10.18.245.157\tadmin1\t/dev/pts/0\t10.70.7.36\tstop\ttask_id=1\tservice=shell\n"]
    assert feed_all(lines) == [IGNORED, IGNORED]


def test_continuation_without_record_rejected_with_line_number():
    assembler = TacacsLineAssembler(MOSCOW)
    assert assembler.feed(b"\n") == [IGNORED]
    item = assembler.feed(b"  Status=Succeeded\n")[0]
    assert isinstance(item, Rejection)
    assert item.lineno == 2 and "no record before" in item.reason


def test_record_held_back_until_next_line_or_finish():
    assembler = TacacsLineAssembler(MOSCOW)
    assert assembler.feed(tacacs_line()) == []
    assert isinstance(assembler.finish()[0], tuple)
    assert assembler.finish() == []


def test_truncated_tail_rejected_after_last_record():
    assembler = TacacsLineAssembler(MOSCOW)
    assembler.feed(tacacs_line())
    items = assembler.finish(tacacs_line()[:100])
    assert isinstance(items[0], tuple)
    assert isinstance(items[1], Rejection) and "truncated" in items[1].reason
    assert items[1].lineno == 2


def test_long_line_rejected_alone_not_joined():
    assembler = TacacsLineAssembler(MOSCOW)
    assembler.feed(tacacs_line())
    items = assembler.feed(b"x" * (MAX_LINE + 2))
    assert isinstance(items[0], tuple)
    assert isinstance(items[1], Rejection) and "longer than" in items[1].reason


def test_nul_and_cp1251_rejected():
    nul = tacacs_line().replace(b"task_id=27", b"task_id=2\x007")
    cp1251 = tacacs_line().replace(b"RegularLine", "Линия".encode("cp1251"))
    a, b = feed_all([nul, cp1251])
    assert a.reason == "NUL byte in line"
    assert b.reason.startswith("not UTF-8")


def test_year_rollover_december_to_january():
    lines = [_call_star("Dec 31 23:59:58"), _call_star("Jan  1 00:00:05"),
             _call_star("Jan  1 00:00:09")]
    items = feed_all(lines, year=2009)
    assert [i[1] for i in items] == ["2009-12-31 23:59:58", "2010-01-01 00:00:05",
                                     "2010-01-01 00:00:09"]


def test_late_december_line_after_january_stays_in_old_year():
    lines = [_call_star("Jan  1 00:00:05"), _call_star("Dec 31 23:59:59"),
             _call_star("Jan  1 00:00:09")]
    items = feed_all(lines, year=2010)
    assert [i[1][:4] for i in items] == ["2010", "2009", "2010"]


def test_year_from_reference_date():
    lines = [_call_star("Dec 30 10:00:00"), _call_star("Jan  2 10:00:00")]
    items = feed_all(lines, reference=dt.date(2010, 1, 3))
    assert [i[1][:10] for i in items] == ["2009-12-30", "2010-01-02"]
    same_year = feed_all([_call_star("Mar  3 10:00:00")], reference=dt.date(2010, 5, 1))
    assert same_year[0][1] == "2010-03-03 10:00:00"


def _call_star(stamp: str) -> bytes:
    """A call whose time must come from the line timestamp (no setup time, no start_time)."""
    avs = ["service=connection", "protocol=h323", "h323-call-type=Telephony",
           "h323-call-origin=answer", "h323-conf-id=X", "elapsed_time=0",
           "h323-disconnect-cause=10"]
    return tacacs_line(stamp, ["10.0.0.1", "u", "p", "1/2", "stop"], avs)


def test_line_timestamp_parsing():
    assert parse_line_timestamp("Sep 24 16:08:12", 2009) == (dt.date(2009, 9, 24), 58092)
    assert parse_line_timestamp("Wed Jun 27 03:48:46 2001") == (dt.date(2001, 6, 27), 13726)
    assert parse_line_timestamp("Feb 29 00:00:00", 2009) is None
    assert parse_line_timestamp("Sep 24 16:08", 2009) is None


def test_extra_is_valid_json_whatever_the_values():
    tricky = ['quote="x"', "path=C:\\dir", "name=Иван", "cmd=a=b c", "empty="]
    line = voice_stop("Oct  1 12:00:10", "12:00:00.000 MSK Thu Oct 1 2009",
                      "12:00:09.000 MSK Thu Oct 1 2009", 8, extra_avs=tricky)
    extra = json.loads(one(line, year=2009)[10])
    assert (extra["quote"], extra["path"], extra["name"], extra["cmd"], extra["empty"]) == (
        '"x"', "C:\\dir", "Иван", "a=b c", "")
    plain = voice_stop("Oct  1 12:00:10", "12:00:00.000 MSK Thu Oct 1 2009",
                       "12:00:09.000 MSK Thu Oct 1 2009", 8, extra_avs=["cmd=a=b c"])
    assert json.loads(one(plain, year=2009)[10])["cmd"] == "a=b c"


def test_record_cut_short_is_rejected_not_a_zero_second_call():
    whole = tacacs_line()[:-1].decode()
    cut = whole[: whole.index("\th323-connect-time")] + "\n"
    result = one(cut.encode())
    assert isinstance(result, Rejection) and "incomplete stop record" in result.reason
    cut_in_value = whole[: whole.index("h323-disconnect-time=") + 28] + "\n"
    result = one(cut_in_value.encode())
    assert isinstance(result, Rejection) and "h323-disconnect-time" in result.reason


def test_time_caches_keep_valid_values_only_and_stay_bounded():
    from mbg.formats import tacacs
    from mbg.formats.base import CACHE_LIMIT
    from mbg.formats.clock import BillingClock, H323Clock

    clock = H323Clock({})
    for i in range(3000):  # garbage: errors, never cached
        assert isinstance(clock.parse(f"12:00:00.000 UTC Thu Oct {i + 40} 2009"), str)
        assert isinstance(clock.parse(f"12:00:00.000 UTC Thu Oct 1 x{i}"), str)
    assert clock._days == {}
    for i in range(CACHE_LIMIT + 500):  # distinct valid dates: a bounded cache
        month = ("Oct", "Nov")[i % 2]
        assert clock.parse(f"12:00:00.000 UTC Thu {month} 1 {1000 + i // 2}")[1] == ""
    assert 0 < len(clock._days) <= CACHE_LIMIT
    assert clock.parse("12:00:00.000 UTC Thu Oct 1 2009") == (1254398400, "")

    billing = BillingClock(dt.timezone.utc)
    for i in range(CACHE_LIMIT + 500):
        billing.format(i * 86400 * 3)  # a new day and a new offset bucket each time
    assert len(billing._dates) <= CACHE_LIMIT and len(billing._offsets) <= CACHE_LIMIT
    assert billing.format(1254398400) == "2009-10-01 12:00:00"

    tacacs._CAUSES.clear()
    for i in range(CACHE_LIMIT + 500):
        line = tacacs_line(avs=replace_av(TACPPD_AVS, "h323-disconnect-cause", f"{i:x}"))
        assert one(line)[8] == str(i)
    assert one(tacacs_line(avs=replace_av(TACPPD_AVS, "h323-disconnect-cause", "zz"))).reason
    assert "zz" not in tacacs._CAUSES and len(tacacs._CAUSES) <= CACHE_LIMIT


@pytest.mark.parametrize("zone, day", [("America/St_Johns", dt.date(2010, 3, 14)),
                                       ("America/St_Johns", dt.date(2010, 11, 7)),
                                       ("Asia/Gaza", dt.date(2010, 3, 26)),
                                       ("Asia/Gaza", dt.date(2011, 3, 31)),
                                       ("Europe/Moscow", dt.date(2009, 10, 25))])
def test_billing_clock_exact_when_the_offset_changes_off_the_quarter_hour(zone, day):
    # St_Johns (before 2011) and Gaza (2010-11) changed offset at :01 local time.
    from zoneinfo import ZoneInfo

    from mbg.formats.clock import BillingClock

    clock = BillingClock(ZoneInfo(zone))
    start = int(dt.datetime.combine(day, dt.time(), dt.timezone.utc).timestamp()) - 86400
    for epoch in range(start, start + 3 * 86400, 37):
        exact = dt.datetime.fromtimestamp(epoch, ZoneInfo(zone)).strftime("%Y-%m-%d %H:%M:%S")
        assert clock.format(epoch) == exact, epoch
