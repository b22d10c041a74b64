"""The collectors in pipe mode, as operators run them: real processes, real files."""

from __future__ import annotations

import datetime as dt
import gzip
import io
import os
import shlex
import socket
import stat
import subprocess
import zlib
from pathlib import Path

import pytest

from mbg import db
from mbg.cli import main
from mbg.cli.agent import asterisk_command, callbuilder_command, tacacs_command
from mbg.formats import MAX_LINE, SimpleLineParser, parse_callbuilder_line
from mbg.ingest import INSERT_LOG, MonthFiles, RejectLog, StoreError, StoreResult, store_records
from mbg.pipe import CHUNK, ingest_stream
from tests.collectors_helpers import cli_runner, reject_lines, rows_of, run_agent, tacacs_line, voice_stop
from tests.conftest import call_rows, command, log_rows, run_env

CB1 = b"A2345 2345 84951234567 C0100517 2345 4951234567 31-10-09 23:59:59 130 107 16\r\n"
CB2 = b"C0200301 84957654321 2345 A2345 - 2345 01-11-09 00:00:00 25 0 19\r\n"
CB3 = b"\x02A2001 2001 88127654321 C0100601 2001 8127654321 01-11-09 00:00:01 61 55 16\r\n"
MBG_TOML = 'timezone = "Europe/Moscow"\n[tacacs.zones]\nMSK = "+03:00"\nVSK = "+10:00"\n'


def callbuilder(args: list[str], data: bytes):
    return run_agent("telephony-agent-callbuilder", args, data)


def content(rows: list[dict]) -> list[tuple]:
    return [tuple(v for k, v in r.items() if k != "id") for r in rows]


def test_callbuilder_pipe_monthly_rotation_every_field(tmp_path):
    ds = tmp_path / "ds"
    done = callbuilder(["-ports", "stdin vk-pbx-1", "-dataset", str(ds)], CB1 + CB2 + CB3)
    assert done.returncode == 0, done.stderr
    assert done.stderr.decode().strip().splitlines()[-1] == (
        "callbuilder: read 3 lines: stored 3, duplicates 0, ignored 0, rejected 0")
    assert done.stdout == b""
    october = rows_of(ds / "2009-10-01.db")
    november = rows_of(ds / "2009-11-01.db")
    assert [r["calldate"] for r in october] == ["2009-10-31 23:59:59"]
    assert [r["calldate"] for r in november] == ["2009-11-01 00:00:00", "2009-11-01 00:00:01"]
    assert october[0] == {
        "id": 1, "source": "vk-pbx-1", "calldate": "2009-10-31 23:59:59", "src": "2345",
        "dst": "84951234567", "channel": "A2345", "dstchannel": "C0100517", "duration": 130,
        "billsec": 107, "cause": "16", "callid": "",
        "extra": {"cgpn_out": "2345", "cdpn_out": "4951234567"}, "is_new": 1,
    }
    assert november[0]["src"] == "84957654321" and november[0]["extra"]["cgpn_out"] == ""
    assert november[1]["channel"] == "A2001"  # the 0x02 byte is gone


def test_gzip_gives_the_same_rows_and_reimport_adds_nothing(tmp_path):
    data = CB1 + CB2 + CB3
    plain, packed = tmp_path / "plain", tmp_path / "packed"
    assert callbuilder(["-ports", "stdin p", "-dataset", str(plain)], data).returncode == 0
    done = callbuilder(["-ports", "stdin p", "-dataset", str(packed)], gzip.compress(data))
    assert done.returncode == 0, done.stderr
    for name in ("2009-10-01.db", "2009-11-01.db"):
        assert rows_of(plain / name) == rows_of(packed / name)
    # Plain into the gzip-made dataset: every call is a duplicate, nothing added.
    again = callbuilder(["-ports", "stdin p", "-dataset", str(packed)], data)
    assert b"stored 0, duplicates 3" in again.stderr
    assert len(rows_of(packed / "2009-11-01.db")) == 2


def test_multi_member_gzip(tmp_path):
    ds = tmp_path / "ds"
    data = gzip.compress(CB1) + gzip.compress(CB2 + CB3)
    done = callbuilder(["-ports", "stdin p", "-dataset", str(ds)], data)
    assert b"stored 3" in done.stderr


def test_bad_lines_rejected_kept_and_reported(tmp_path):
    ds = tmp_path / "ds"
    long_line = b"A" * (MAX_LINE + 10) + b"\r\n"
    data = (CB1 + b"A1 1 2 C1 1 2 31-10-09 23:59:59 1\x00 1 16\r\n"
            + "Ошибка: нет времени\r\n".encode("cp1251") + long_line + CB2
            + b"A1 1 2 C1 1 2 31-10-09 23:5")
    done = callbuilder(["-ports", "stdin p", "-dataset", str(ds)], data)
    assert done.returncode == 0
    err = done.stderr.decode().splitlines()
    assert err == [
        "line 2: rejected: NUL byte in line",
        "line 3: rejected: not UTF-8 (byte 1)",
        "line 4: rejected: line longer than 65536 bytes",
        "line 6: rejected: truncated line: input ended without end of line",
        "callbuilder: read 6 lines: stored 2, duplicates 0, ignored 0, rejected 4",
    ]
    kept = reject_lines(ds)
    assert (ds / "reject" / f"callbuilder-{dt.date.today().isoformat()}.txt").exists()
    assert kept[0] == "NUL byte in line\tA1 1 2 C1 1 2 31-10-09 23:59:59 1\\x00 1 16"
    assert kept[1] == "not UTF-8 (byte 1)\t" + "".join(
        f"\\x{b:02x}" if b >= 0x80 else chr(b) for b in "Ошибка: нет времени".encode("cp1251"))
    assert kept[2].startswith("line longer than 65536 bytes\tAAAA")
    assert kept[3] == "truncated line: input ended without end of line\tA1 1 2 C1 1 2 31-10-09 23:5"
    mode = (ds / "reject" / f"callbuilder-{dt.date.today().isoformat()}.txt").stat().st_mode
    assert not mode & stat.S_IWOTH
    # A second run appends.
    callbuilder(["-ports", "stdin p", "-dataset", str(ds)], data)
    assert len(reject_lines(ds)) == 8


def test_strict_exits_3_only_when_something_was_rejected(tmp_path):
    ds = tmp_path / "ds"
    clean = callbuilder(["-ports", "stdin p", "-dataset", str(ds), "--strict"], CB1)
    assert clean.returncode == 0
    dirty = callbuilder(["-ports", "stdin p", "-dataset", str(ds), "-strict"], CB1 + b"x\r\n")
    assert dirty.returncode == 3
    assert b"duplicates 1, ignored 0, rejected 1" in dirty.stderr


def test_stderr_flood_is_capped_but_reject_file_keeps_all(tmp_path):
    ds = tmp_path / "ds"
    runner = cli_runner()
    result = runner.invoke(callbuilder_command, ["-ports", "stdin p", "-dataset", str(ds)],
                           input=b"bad\r\n" * 30)
    assert result.exit_code == 0
    lines = result.stderr.splitlines()
    assert len([l for l in lines if "rejected: expected 11" in l]) == 20
    assert "... 10 more rejected lines" in result.stderr
    assert len(reject_lines(ds)) == 30


def test_gzip_detected_when_the_pipe_delivers_one_byte_first(tmp_path):
    packed = tmp_path / "cdr.gz"
    packed.write_bytes(gzip.compress(CB1 + CB2 + CB3))
    ds = tmp_path / "ds"
    p, agent = shlex.quote(str(packed)), shlex.quote(command("telephony-agent-callbuilder"))
    script = (f"(head -c1 {p}; sleep 1; tail -c +2 {p}) | "
              f"{agent} -ports 'stdin p' -dataset {shlex.quote(str(ds))}")
    done = subprocess.run(["sh", "-c", script], capture_output=True, timeout=60,
                          env=run_env(TZ="Europe/Moscow"))
    assert done.returncode == 0, done.stderr
    assert done.stderr.decode().strip().splitlines()[-1] == (
        "callbuilder: read 3 lines: stored 3, duplicates 0, ignored 0, rejected 0")
    assert len(rows_of(ds / "2009-11-01.db")) == 2


def truncated_gzip(data: bytes) -> tuple[bytes, bytes]:
    """A gzip of ``data`` cut short in the middle of a line, and what it still gives."""
    packed = gzip.compress(data, mtime=0)
    cut = len(packed) // 2
    while True:
        readable = zlib.decompressobj(wbits=31).decompress(packed[:cut])
        if readable and readable[-1:] != b"\n" and readable.count(b"\n") > 3:
            return packed[:cut], readable
        cut -= 1


def test_corrupt_gzip_rejected_and_what_came_before_is_stored(tmp_path):
    ds = tmp_path / "ds"
    cut, readable = truncated_gzip(CB1 + CB2 + CB3 * 2000)
    complete = readable.count(b"\n")
    partial = readable[readable.rfind(b"\n") + 1 :]
    done = callbuilder(["-ports", "stdin p", "-dataset", str(ds)], cut)
    assert done.returncode == 0, done.stderr
    assert done.stderr.decode().strip().splitlines()[-1] == (
        f"callbuilder: read {complete + 1} lines: stored 3, duplicates {complete - 3}, "
        "ignored 0, rejected 1")
    assert content(rows_of(ds / "2009-10-01.db")) == [
        ("p", "2009-10-31 23:59:59", "2345", "84951234567", "A2345", "C0100517", 130, 107, "16",
         "", {"cgpn_out": "2345", "cdpn_out": "4951234567"}, 1)]
    assert content(rows_of(ds / "2009-11-01.db")) == [
        ("p", "2009-11-01 00:00:00", "84957654321", "2345", "C0200301", "A2345", 25, 0, "19", "",
         {"cgpn_out": "", "cdpn_out": "2345"}, 1),
        ("p", "2009-11-01 00:00:01", "2001", "88127654321", "A2001", "C0100601", 61, 55, "16", "",
         {"cgpn_out": "2001", "cdpn_out": "8127654321"}, 1)]
    # The part of the line the corruption cut short is kept with the rejection.
    kept = partial.decode().replace("\x02", "\\x02")
    assert partial and reject_lines(ds) == [
        f"corrupt input after line {complete}: Compressed file ended before the "
        f"end-of-stream marker was reached\t{kept}"]


POISON = b"A1 1 2 C1 1 2 31-10-09 12:00:00 99999999999999999999 1 16\r\n"


def test_oversized_duration_rejected_and_the_rest_stored(tmp_path):
    ds = tmp_path / "ds"
    done = callbuilder(["-ports", "stdin p", "-dataset", str(ds)], CB1 + POISON + CB2)
    assert done.returncode == 0, done.stderr
    assert done.stderr.decode().strip().splitlines()[-1] == (
        "callbuilder: read 3 lines: stored 2, duplicates 0, ignored 0, rejected 1")
    assert [r["calldate"] for r in rows_of(ds / "2009-10-01.db")] == ["2009-10-31 23:59:59"]
    assert [r["calldate"] for r in rows_of(ds / "2009-11-01.db")] == ["2009-11-01 00:00:00"]
    assert reject_lines(ds) == [
        "seizure duration 99999999999999999999 out of range (over 10000000 s)\t"
        "A1 1 2 C1 1 2 31-10-09 12:00:00 99999999999999999999 1 16"]


def test_store_records_rejects_values_sqlite_refuses_and_stores_the_rest(tmp_path):
    ds = tmp_path / "ds"
    good = parse_callbuilder_line(CB1, "p")
    later = parse_callbuilder_line(CB2, "p")
    too_big = good[:6] + (10**20,) + good[7:]
    wrong_type = good[:7] + (object(),) + good[8:]
    null_src = good[:2] + (None,) + good[3:]
    result = store_records(ds, [good, too_big, later, wrong_type, null_src, good])
    assert (result.stored, result.duplicates) == (2, 1)
    assert [record for _, record in result.rejected] == [too_big, wrong_type, null_src]
    reasons = [reason for reason, _ in result.rejected]
    assert reasons[0] == "record not storable (OverflowError: int too big to convert)"
    assert reasons[1].startswith("record not storable (TypeError: ")
    assert reasons[2].startswith("record not storable (ConstraintError: NOT NULL")
    assert [r["src"] for r in rows_of(ds / "2009-10-01.db")] == ["2345"]
    assert [r["src"] for r in rows_of(ds / "2009-11-01.db")] == ["84957654321"]


def test_reject_file_not_writable_line_goes_to_stderr_and_storing_goes_on(tmp_path):
    ds = tmp_path / "ds"
    ds.mkdir()
    (ds / "reject").write_text("in the way\n")  # a file where the folder should be
    done = callbuilder(["-ports", "stdin p", "-dataset", str(ds)], CB1 + b"bad \xff line\r\n" + CB2)
    assert done.returncode == 0, done.stderr
    err = done.stderr.decode().splitlines()
    path = ds / "reject" / f"callbuilder-{dt.date.today().isoformat()}.txt"
    assert [l for l in err if "not written" in l] == [
        f"reject file {path} not written (File exists); rejected line: "
        "not UTF-8 (byte 5)\tbad \\xff line"]
    assert "Traceback" not in done.stderr.decode()
    assert err[-1] == "callbuilder: read 3 lines: stored 2, duplicates 0, ignored 0, rejected 1"
    assert len(rows_of(ds / "2009-10-01.db")) == 1 and len(rows_of(ds / "2009-11-01.db")) == 1


def test_usage_errors_exit_2_with_one_line(tmp_path):
    runner = cli_runner()
    ds = str(tmp_path / "ds")
    cases = [
        (callbuilder_command, ["-ports", "stdin", "-dataset", ds], "pairs of a port and a name"),
        (callbuilder_command, ["-ports", "10211 a", "-dataset", ds], 'pipe mode reads stdin'),
        (callbuilder_command, ["-demon", "1", "-ports", "stdin a", "-dataset", ds], "pipe mode"),
        (callbuilder_command, ["-demon", "1", "-dataset", ds], "needs -ports"),
        (tacacs_command, ["-demon", "1", "-ports", "99999", "-dataset", ds], "bad port"),
        (tacacs_command, ["--timezone", "Mars/Olympus", "-dataset", ds], "unknown time zone"),
        (asterisk_command, ["-source", " ", "-dataset", ds], "-source is empty"),
    ]
    for command, args, message in cases:
        result = runner.invoke(command, args, input=CB1)
        assert result.exit_code == 2, (args, result.output, result.stderr)
        assert message in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "ds").exists()


def test_tacacs_pipe_with_settings_and_midnight_rotation(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "mbg.toml").write_text(MBG_TOML)
    ds = tmp_path / "ds"
    # Moscow left summer time on 2009-10-25: on Oct 31 it is +03:00, like MSK.
    before = voice_stop("Oct 31 23:59:59", "23:59:59.900 MSK Sat Oct 31 2009",
                        "00:00:20.100 MSK Sun Nov 1 2009", 18, conf="C1")
    after = voice_stop("Nov  1 00:00:30", "00:00:00.000 MSK Sun Nov 1 2009",
                       "00:00:20.000 MSK Sun Nov 1 2009", 18, conf="C2")
    start = tacacs_line(columns=["10.0.0.1", "u", "p", "r", "start"])
    env = run_env(TZ="UTC")
    done = run_agent("telephony-agent-tacacs", ["--root", str(root), "-dataset", str(ds),
                                                "--year", "2009"], start + before + after, env)
    assert done.returncode == 0, done.stderr
    assert b"read 3 lines: stored 2, duplicates 0, ignored 1, rejected 0" in done.stderr
    october, = rows_of(ds / "2009-10-01.db")
    november, = rows_of(ds / "2009-11-01.db")
    assert (october["calldate"], october["duration"], october["billsec"]) == (
        "2009-10-31 23:59:59", 21, 18)
    assert (october["src"], october["dst"], october["cause"]) == ("4957654321", "84951112233", "16")
    assert october["callid"] == "C1/answer/Telephony" and october["source"] == "gw1"
    assert november["calldate"] == "2009-11-01 00:00:00"
    # --timezone moves the calls: in UTC both are on October 31.
    utc = tmp_path / "utc"
    done = run_agent("telephony-agent-tacacs", ["--root", str(root), "-dataset", str(utc),
                                                "--year", "2009", "--timezone", "UTC"],
                     before + after, env)
    assert [r["calldate"] for r in rows_of(utc / "2009-10-01.db")] == [
        "2009-10-31 20:59:59", "2009-10-31 21:00:00"]


def test_tacacs_without_root_uses_system_zone_and_notes_unknown_abbreviation(tmp_path):
    ds = tmp_path / "ds"
    env = {k: v for k, v in run_env(TZ="Asia/Vladivostok").items() if k != "MBGROOT"}
    env["HOME"] = str(tmp_path)  # no settings file anywhere
    line = voice_stop("Oct 31 12:00:30", "03:00:00.000 UTC Sat Oct 31 2009",
                      "03:00:20.000 UTC Sat Oct 31 2009", 18, conf="U")
    msk = voice_stop("Oct 31 12:00:30", "03:00:00.000 MSK Sat Oct 31 2009",
                     "03:00:20.000 MSK Sat Oct 31 2009", 18, conf="M")
    done = run_agent("telephony-agent-tacacs", ["-dataset", str(ds), "--year", "2009"],
                     line + msk, env)
    assert b"stored 2" in done.stderr and b"rejected 0" in done.stderr
    utc, unknown = rows_of(ds / "2009-10-01.db")
    assert utc["calldate"] == "2009-10-31 13:00:00"  # UTC+10
    # MSK unknown without mbg.toml, no start_time: the line timestamp (host clock) - 20 s.
    assert (unknown["calldate"], unknown["duration"]) == ("2009-10-31 12:00:10", 20)
    assert unknown["extra"]["clock"].startswith("unknown zone MSK")
    assert unknown["extra"]["calldate_from"] == "line timestamp"


def test_asterisk_pipe_source_and_default_host_name(tmp_path):
    line = (b'"","2001","84951234567","ctx","""Ivan"" <2001>","SIP/2001-1","SIP/trunk-2",'
            b'"Dial","SIP/trunk/84951234567,60","2009-10-31 23:59:59","2009-10-31 23:59:59",'
            b'"2009-11-01 00:01:00",61,61,"ANSWERED","BILLING","1256990399.42"\n')
    named = tmp_path / "named"
    done = run_agent("telephony-agent-asterisk", ["-source", "pbx-a", "-dataset", str(named)], line)
    assert done.returncode == 0, done.stderr
    row, = rows_of(named / "2009-10-01.db")
    assert (row["source"], row["calldate"], row["src"], row["dst"], row["channel"],
            row["dstchannel"], row["duration"], row["billsec"], row["cause"], row["callid"]) == (
        "pbx-a", "2009-10-31 23:59:59", "2001", "84951234567", "SIP/2001-1", "SIP/trunk-2",
        61, 61, "ANSWERED", "1256990399.42")
    assert row["extra"]["lastdata"] == "SIP/trunk/84951234567,60"
    default = tmp_path / "default"
    runner = cli_runner()
    result = runner.invoke(main, ["agent", "asterisk", "--dataset", str(default)], input=line)
    assert result.exit_code == 0, result.stderr
    assert rows_of(default / "2009-10-01.db")[0]["source"] == socket.gethostname()


def test_callbuilder_without_pbx_name_uses_host_name_and_says_so(tmp_path):
    ds = tmp_path / "ds"
    result = cli_runner().invoke(callbuilder_command, ["-dataset", str(ds)], input=CB1)
    assert result.exit_code == 0, result.stderr
    assert f"calls are stored with source {socket.gethostname()}" in result.stderr
    assert rows_of(ds / "2009-10-01.db")[0]["source"] == socket.gethostname()


def test_mbg_agent_subcommands_and_underscore_scripts(tmp_path):
    ds = tmp_path / "ds"
    runner = cli_runner()
    result = runner.invoke(main, ["agent", "callbuilder", "--ports", "stdin p", "--dataset",
                                  str(ds)], input=CB1)
    assert result.exit_code == 0, result.stderr
    done = run_agent("telephony_agent_callbuilder", ["-ports", "stdin p", "-dataset", str(ds)], CB1)
    assert b"stored 0, duplicates 1" in done.stderr


def test_default_dataset_is_under_mbgroot(tmp_path):
    env = run_env(MBGROOT=str(tmp_path / "root"), TZ="UTC")
    done = run_agent("telephony-agent-callbuilder", ["-ports", "stdin p"], CB1, env)
    assert done.returncode == 0, done.stderr
    assert len(rows_of(tmp_path / "root" / "dataset" / "telephony" / "2009-10-01.db")) == 1


def test_large_input_is_stored_in_batches_with_bounded_memory(tmp_path):
    """Records are stored every ``batch`` records (checked after each chunk read), never
    all held at once."""
    lines = b"".join(
        f"A1 1 {i} C1 1 2 {1 + i % 28:02d}-10-09 {i % 24:02d}:{i % 60:02d}:00 10 5 16\r\n".encode()
        for i in range(80_000))
    assert len(lines) > 3 * CHUNK
    held = []

    def on_batch(counts):
        held.append(counts.stored + counts.duplicates)

    with RejectLog(tmp_path, "callbuilder") as rejects:
        counts = ingest_stream(io.BufferedReader(io.BytesIO(lines)),
                               SimpleLineParser(parse_callbuilder_line, "p"), tmp_path, rejects,
                               on_batch=on_batch, batch=1000)
    assert counts.stored == 80_000 and counts.lines == 80_000
    assert len(held) >= 4
    per_chunk = CHUNK // 40 + 1  # lines are over 40 bytes
    assert all(0 < b - a <= 1000 + per_chunk for a, b in zip([0] + held, held[:-1]))
    assert len(rows_of(tmp_path / "2009-10-01.db")) == 80_000


def test_month_files_stay_open_between_batches_without_holding_a_lock(tmp_path):
    """Pipe mode's MonthFiles: the batches of six months, four files open at most, each
    batch committed (another writer gets in between batches), all closed at the end."""
    months = [f"2009-{m:02d}" for m in range(1, 7)]
    rows = {month: call_rows(30, seed=i, month=month) for i, month in enumerate(months)}
    ds = tmp_path / "ds"
    with MonthFiles(ds) as files:
        for start in range(0, 30, 10):
            result = files.store([r for month in months for r in rows[month][start:start + 10]])
            assert result == StoreResult(60, 0)
            assert list(files._open) == months[-MonthFiles.KEEP:]
            other = db.connect(ds / "2009-06-01.db", "dataset")
            with db.write_transaction(other):  # no lock held between batches
                other.execute(INSERT_LOG, call_rows(1, seed=99, month="2009-06")[0])
            other.close()
        assert files.store(rows["2009-06"][:5]) == StoreResult(0, 5)
        # A month file that is not ours: the months before it are stored, it is closed.
        (ds / "2009-08-01.db").write_text("not a database")
        with pytest.raises(StoreError) as failed:
            files.store(rows["2009-01"][:1] + call_rows(2, month="2009-07")
                        + call_rows(1, month="2009-08"))
        assert failed.value.done == {"2009-01", "2009-07"}
        assert "2009-08" not in files._open
    assert files._open == {}
    for month in months:
        stored = [r[1:12] for r in log_rows(ds / f"{month}-01.db")]
        # (the other writer's row three times: stored once)
        expected = rows[month] + (call_rows(1, seed=99, month=month)
                                  if month == "2009-06" else [])
        assert sorted(stored) == sorted(expected)
    assert len(log_rows(ds / "2009-07-01.db")) == 2


def test_a_month_file_removed_or_moved_between_batches_is_made_again(tmp_path):
    """Pipe mode keeps month files open between batches, yet after each batch the file
    itself holds every row (a copy or move of it alone is complete), and a file removed
    or moved away is made again at its path, never written through the old handle."""
    rows = call_rows(30, seed=3, month="2009-10")
    ds = tmp_path / "ds"
    path = ds / "2009-10-01.db"
    with MonthFiles(ds) as files:
        assert files.store(rows[:10]) == StoreResult(10, 0)
        for suffix in ("", "-wal", "-shm"):  # moved away whole, as an operator would
            if Path(f"{path}{suffix}").exists():
                os.rename(f"{path}{suffix}", tmp_path / f"moved.db{suffix}")
        assert files.store(rows[10:20]) == StoreResult(10, 0)
        path.unlink()
        for suffix in ("-wal", "-shm"):
            Path(f"{path}{suffix}").unlink(missing_ok=True)
        assert files.store(rows[20:]) == StoreResult(10, 0)
    moved = tmp_path / "moved.db"
    for suffix in ("-wal", "-shm"):  # the .db file alone
        Path(f"{moved}{suffix}").unlink(missing_ok=True)
    assert sorted(r[1:12] for r in log_rows(moved)) == sorted(rows[:10])
    assert sorted(r[1:12] for r in log_rows(path)) == sorted(rows[20:])


def test_pipe_stores_and_rejects_what_line_by_line_parsing_gives(tmp_path):
    """The collector (blocks of lines, the quick path for values seen before) against each
    line parsed alone: odd lines among ordinary ones, across the chunks read."""
    from collections import Counter

    from mbg.formats import IGNORED, Rejection, strip_terminator
    from mbg.ingest import escape_line
    from tests.test_format_callbuilder import ODD_LINES

    ordinary = [f"A{i} {i} 8495{i:07d} C{i:07d} {i} 495{i:07d} {1 + i % 28:02d}-08-12 "
                f"{i % 24:02d}:{i % 60:02d}:{i % 7:02d} {i % 900} {i % 100} 16\r\n".encode()
                for i in range(3000)]
    lines = []
    for copy in range(6):  # about 2 MB: the odd lines fall at other places of each chunk
        lines += ordinary[copy * 500:(copy + 1) * 500] + ODD_LINES
    items = [parse_callbuilder_line(line, "p") for line in lines]
    records = [item for item in items if type(item) is tuple]
    rejected = [item for item in items if type(item) is Rejection]
    assert len(records) > 3000 and len(rejected) > 100 and IGNORED in items
    ds = tmp_path / "ds"
    done = callbuilder(["-ports", "stdin p", "-dataset", str(ds)], b"".join(lines))
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stderr.decode().splitlines()[-1] == (
        f"callbuilder: read {len(lines)} lines: stored {len(set(records))}, duplicates "
        f"{len(records) - len(set(records))}, ignored {items.count(IGNORED)}, "
        f"rejected {len(rejected)}")
    stored = [tuple(r[1:12]) for r in log_rows(ds / "2012-08-01.db")]
    assert sorted(stored) == sorted(set(records))
    # (the reject file keeps a line's first MAX_LINE + 2 bytes, without its \r\n)
    assert Counter(reject_lines(ds)) == Counter(
        item.reason + "\t" + escape_line(strip_terminator(item.line[:-1][:MAX_LINE + 2]))
        for item in rejected)
    # The first rejections on stderr, with their line numbers.
    echoed = [line for line in done.stderr.decode().splitlines() if ": rejected: " in line]
    numbered = [f"line {number}: rejected: {item.reason}"
                for number, item in enumerate(items, 1) if type(item) is Rejection]
    assert len(echoed) == 20 and set(echoed) <= set(numbered)


def test_ingest_turns_the_garbage_collector_off_meanwhile_only(tmp_path):
    import gc

    seen = []
    for enabled in (True, False):
        (gc.enable if enabled else gc.disable)()
        try:
            with RejectLog(tmp_path, "callbuilder") as rejects:
                counts = ingest_stream(io.BufferedReader(io.BytesIO(CB1 + CB2)),
                                       SimpleLineParser(parse_callbuilder_line, "p"), tmp_path,
                                       rejects, on_batch=lambda c: seen.append(gc.isenabled()))
            assert counts.stored + counts.duplicates == 2
            assert gc.isenabled() is enabled
        finally:
            gc.enable()
    assert seen == [False, False]


def test_records_are_grouped_by_the_month_of_their_calldate():
    from mbg.ingest import group_by_month

    def rec(calldate: str) -> tuple:
        return ("pbx", calldate, "1", "2", "", "", 1, 1, "16", "", None)

    one_month = [rec("2009-10-31 23:59:59"), rec("2009-10-01 00:00:00"), rec("2009-10-15 12:00:00")]
    assert group_by_month(one_month) == {"2009-10": one_month}
    mixed = [rec("2009-10-31 23:59:59"), rec("2009-11-01 00:00:00"), rec("2009-09-30 23:59:59"),
             rec("2009-10-01 00:00:00")]
    assert group_by_month(mixed) == {"2009-10": [mixed[0], mixed[3]], "2009-11": [mixed[1]],
                                     "2009-09": [mixed[2]]}
    assert group_by_month(iter(one_month)) == {"2009-10": one_month}
    assert group_by_month([]) == {}


def test_a_record_refused_when_stored_is_echoed_without_a_line_number(tmp_path, capsys):
    """A record SQLite refuses at store time no longer knows its line (lineno 0): stderr
    says when it was rejected instead of 'line 0'."""
    from mbg.cli.agent import RejectEcho
    from mbg.formats import Rejection

    echo = RejectEcho(tmp_path / "reject.txt", prefix="callbuilder: ")
    echo(Rejection("bad time '25:00:00', expected HH:MM:SS", b"x", 7))
    echo(Rejection("record not storable (TooBigError: string or blob too big)", b"[]", 0))
    assert capsys.readouterr().err.splitlines() == [
        "callbuilder: line 7: rejected: bad time '25:00:00', expected HH:MM:SS",
        "callbuilder: when storing: rejected: record not storable (TooBigError: string or blob "
        "too big)"]
