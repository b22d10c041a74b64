"""The Asterisk Master.csv parser (FORMATS.md 3.1, 3.3, 3.4)."""

from __future__ import annotations

import json

import pytest

from mbg.formats import IGNORED, Rejection, parse_asterisk_line
from tests.collectors_helpers import SAMPLES

RSCLIB = (b'"","3","11","attendo","3","lcr/439","IAX2/pbx-14597","Read","dtmf||20|noanswer||3",'
          b'"2009-04-23 15:16:52","2009-04-23 15:16:52","2009-04-23 15:17:37",45,45,"ANSWERED",'
          b'"DOCUMENTATION","asterisk-1240499812.774","102441/54"\n')
NO_ANSWER = (b'"ast_h323","3711","1110","default","""Bryl A"" <3711>","OOH323/avayaipo-1945",'
             b'"SIP/1110-000009be","Dial","SIP/1110","2018-09-07 11:08:03",,"2018-09-07 11:08:31",'
             b'28,0,"NO ANSWER","DOCUMENTATION","1536293283.12653",""\n')
BASE16 = (b'"acc","2001","84951234567","from-internal","""Ivan"" <2001>","SIP/2001-0001",'
          b'"SIP/trunk-0002","Dial","SIP/trunk/84951234567,60,tT","2009-10-31 23:59:59",'
          b'"2009-10-31 23:59:59","2009-11-01 00:01:00",61,61,"ANSWERED","BILLING"')


def parse(line: bytes):
    return parse_asterisk_line(line, "pbx-a")


def test_rsclib_line_18_columns_every_field():
    record = parse(RSCLIB)
    assert record[:10] == ("pbx-a", "2009-04-23 15:16:52", "3", "11", "lcr/439",
                           "IAX2/pbx-14597", 45, 45, "ANSWERED", "asterisk-1240499812.774")
    assert json.loads(record[10]) == {
        "accountcode": "", "dcontext": "attendo", "clid": "3", "lastapp": "Read",
        "lastdata": "dtmf||20|noanswer||3", "answer": "2009-04-23 15:16:52",
        "end": "2009-04-23 15:17:37", "amaflags": "DOCUMENTATION", "userfield": "102441/54",
    }


def test_no_answer_empty_unquoted_answer_and_doubled_quotes():
    record = parse(NO_ANSWER)
    assert record[6:10] == (28, 0, "NO ANSWER", "1536293283.12653")
    extra = json.loads(record[10])
    assert extra["answer"] == ""
    assert extra["clid"] == '"Bryl A" <3711>'
    assert extra["accountcode"] == "ast_h323"


def test_16_columns_no_uniqueid():
    record = parse(BASE16 + b"\n")
    assert record[9] == ""
    assert record[1] == "2009-10-31 23:59:59"
    extra = json.loads(record[10])
    assert extra["lastdata"] == "SIP/trunk/84951234567,60,tT"
    assert "userfield" not in extra and "uniqueid" not in extra


def test_17_columns_read_as_uniqueid():
    record = parse(BASE16 + b',"1256990399.42"\n')
    assert record[9] == "1256990399.42"


def test_21_columns_newcdrcolumns():
    record = parse(BASE16 + b',"1256990399.42","uf","peer","1256990399.40",7\n')
    assert record[9] == "1256990399.42"
    extra = json.loads(record[10])
    assert (extra["userfield"], extra["peeraccount"], extra["linkedid"], extra["sequence"]) == (
        "uf", "peer", "1256990399.40", "7")


@pytest.mark.parametrize("count", [15, 19, 20, 22])
def test_other_column_counts_rejected(count):
    line = b",".join([b'"x"'] * count) + b"\n"
    result = parse(line)
    assert isinstance(result, Rejection)
    assert f"found {count}" in result.reason


def test_truncated_kafka_line_rejected():
    line = b'2018-09-07 11:05:20","2018-09-07 11:05:20",0,0,"ANSWERED","DOCUMENTATION","1536293101.12461",""\n'
    result = parse(line)
    assert isinstance(result, Rejection) and "CSV fields" in result.reason


@pytest.mark.parametrize(
    "old, new, reason",
    [
        (b'"2009-10-31 23:59:59","2009-10-31', b'"2009-10-32 23:59:59","2009-10-31', "bad start"),
        (b'"2009-10-31 23:59:59","2009-10-31', b'"31.10.2009 23:59:59","2009-10-31', "bad start"),
        (b'"2009-10-31 23:59:59","2009-11-01', b'"yesterday","2009-11-01', "bad answer"),
        (b'"2009-11-01 00:01:00"', b'"2009-11-01 00:61:00"', "bad end"),
        (b"61,61", b"61.5,61", "bad duration"),
        (b"61,61", b"61,-1", "bad billsec"),
        (b"61,61", b"99999999999999999999,61", "duration 99999999999999999999 out of range"),
        (b"61,61", b"61,10000001", "billsec 10000001 out of range"),
        (b"61,61", "61,\u0663".encode(), "bad billsec"),
    ],
)
def test_bad_dates_and_numbers_rejected(old, new, reason):
    line = BASE16.replace(old, new, 1) + b"\n"
    assert line != BASE16 + b"\n"
    result = parse(line)
    assert isinstance(result, Rejection) and reason in result.reason


def test_longest_duration_accepted():
    record = parse(BASE16.replace(b"61,61", b" 10000000 ,61", 1))
    assert record[6:8] == (10_000_000, 61)


def test_bad_quoting_rejected():
    result = parse(b'"a"b,' + BASE16 + b"\n")
    assert isinstance(result, Rejection)


def test_nul_cp1251_empty():
    assert parse(BASE16.replace(b"Ivan", b"Iv\x00an")).reason == "NUL byte in line"
    assert parse(BASE16.replace(b"Ivan", "Иван".encode("cp1251"))).reason.startswith("not UTF-8")
    assert parse(b"\n") is IGNORED


def test_utf8_names_kept():
    record = parse(BASE16.replace(b"Ivan", "Иван".encode()) + b"\r\n")
    assert json.loads(record[10])["clid"] == '"Иван" <2001>'


def test_real_sample_lines():
    """The real lines of samples/asterisk_master_csv.txt: every full line is a call, the
    truncated first kafka line is rejected; AppDial and Local/ halves are rows too."""
    data = (SAMPLES / "asterisk_master_csv.txt").read_bytes()
    lines = [l for l in data.splitlines() if l and not l.startswith((b"#", b"//"))]
    results = [parse(l) for l in lines]
    records = [r for r in results if isinstance(r, tuple)]
    rejected = [r for r in results if isinstance(r, Rejection)]
    assert len(records) == 10 and len(rejected) == 1
    assert rejected[0].line.startswith(b'2018-09-07 11:05:20"')
    assert sum(1 for r in records if json.loads(r[10])["lastapp"] == "AppDial") == 1
    local_halves = [r for r in records if r[9] == "1536293284.12655"]
    assert len(local_halves) == 2 and local_halves[0] != local_halves[1]
