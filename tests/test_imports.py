"""Batch imports of log folders (SPEC 6.3): telephony-import-tacacs, -callbuilder."""

from __future__ import annotations

import datetime as dt
import gzip
import os
import subprocess

from mbg.cli import main
from mbg.cli.imports import import_callbuilder_command, import_tacacs_command
from tests.collectors_helpers import cli_runner, reject_lines, rows_of, voice_stop
from tests.conftest import command, run_env

MBG_TOML = 'timezone = "Europe/Moscow"\n[tacacs.zones]\nMSK = "+03:00"\n'


def cb_line(pbx_hint: str, day: str, time: str) -> bytes:
    return f"A{pbx_hint} {pbx_hint} 84951234567 C0100517 {pbx_hint} 4951234567 {day} {time} 130 107 16\r\n".encode()


def make_callbuilder_logs(logs):
    (logs / "vk-pbx-1").mkdir(parents=True)
    (logs / "nati-txe-1").mkdir()
    (logs / "vk-pbx-1" / "cdr_log_mon10_2009.log").write_bytes(
        cb_line("2001", "30-10-09", "10:00:00") + cb_line("2001", "31-10-09", "23:59:59"))
    # Written by host time: a call of October 31 in November's file (FORMATS 2.5.5).
    (logs / "vk-pbx-1" / "cdr_log_mon11_2009.log.gz").write_bytes(gzip.compress(
        cb_line("2001", "31-10-09", "23:59:59") + cb_line("2001", "01-11-09", "00:00:00")))
    (logs / "nati-txe-1" / "cdr_log_mon10_2009.log").write_bytes(
        cb_line("3001", "15-10-09", "12:00:00") + b"garbage\r\n")
    (logs / "nati-txe-1" / "cdr_log_mon10_2008.log").write_bytes(cb_line("3001", "15-10-08", "12:00:00"))
    (logs / "nati-txe-1" / "cdr_log_mon10_2009.err").write_bytes("ошибка\r\n".encode("cp1251"))
    (logs / "nati-txe-1" / "cdr_log_mon10_2009.jrn").write_bytes(b"journal\r\n")
    (logs / "readme.txt").write_bytes(b"not a folder of logs\n")


def test_callbuilder_import_masks_pbx_names_and_rerun(tmp_path):
    logs, ds = tmp_path / "logs", tmp_path / "ds"
    make_callbuilder_logs(logs)
    runner = cli_runner()
    result = runner.invoke(import_callbuilder_command, ["10", "2009", "--logs", str(logs),
                                                       "--dataset", str(ds)])
    assert result.exit_code == 0, result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "callbuilder import: 2 files, read 4 lines: stored 3, duplicates 0, ignored 0, rejected 1")
    october = rows_of(ds / "2009-10-01.db")
    assert [(r["source"], r["calldate"]) for r in october] == [
        ("nati-txe-1", "2009-10-15 12:00:00"),
        ("vk-pbx-1", "2009-10-30 10:00:00"),
        ("vk-pbx-1", "2009-10-31 23:59:59"),
    ]
    assert reject_lines(ds) == ["expected 11 space-separated fields, found 1\tgarbage"]
    assert f"{logs / 'nati-txe-1' / 'cdr_log_mon10_2009.log'}: line 2: rejected" in result.stderr

    # Every month of every year: the .gz of November too; re-importing October adds nothing.
    result = runner.invoke(import_callbuilder_command, ["--logs", str(logs), "--dataset", str(ds)])
    assert result.exit_code == 0, result.stderr
    assert "4 files, read 7 lines: stored 2, duplicates 4, ignored 0, rejected 1" in result.stderr
    assert len(rows_of(ds / "2009-10-01.db")) == 3  # the Oct 31 call of November's file: a duplicate
    assert [r["calldate"] for r in rows_of(ds / "2009-11-01.db")] == ["2009-11-01 00:00:00"]
    assert [r["calldate"] for r in rows_of(ds / "2008-10-01.db")] == ["2008-10-15 12:00:00"]

    again = runner.invoke(import_callbuilder_command, ["--logs", str(logs), "--dataset", str(ds)])
    assert "stored 0, duplicates 6" in again.stderr


def test_callbuilder_month_mask_only_and_year_only(tmp_path):
    logs, ds = tmp_path / "logs", tmp_path / "ds"
    make_callbuilder_logs(logs)
    runner = cli_runner()
    result = runner.invoke(main, ["import", "callbuilder", "11", "--logs", str(logs),
                                  "--dataset", str(ds)])
    assert "1 files, read 2 lines" in result.stderr
    result = runner.invoke(import_callbuilder_command, ["10", "2008", "--logs", str(logs),
                                                       "--dataset", str(ds)])
    assert "1 files, read 1 lines: stored 1" in result.stderr


def test_callbuilder_bad_masks_and_missing_folder_exit_2(tmp_path):
    runner = cli_runner()
    for args, message in ((["13"], "bad month"), (["1x"], "bad month"), (["10", "09"], "bad year"),
                          (["--logs", str(tmp_path / "none")], "no such folder")):
        result = runner.invoke(import_callbuilder_command, args + ["--dataset", str(tmp_path / "ds")])
        assert result.exit_code == 2, result.output
        assert message in result.stderr
    assert not (tmp_path / "ds").exists()


def test_tacacs_import_plain_and_gz_year_from_file_date(tmp_path):
    root, logs, ds = tmp_path / "root", tmp_path / "logs", tmp_path / "ds"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "mbg.toml").write_text(MBG_TOML)
    logs.mkdir()
    december = voice_stop("Dec 31 23:59:50", "23:59:00.000 MSK Thu Dec 31 2009",
                          "23:59:30.000 MSK Thu Dec 31 2009", 20, conf="D1")
    january = voice_stop("Jan  1 00:00:50", "00:00:00.000 MSK Fri Jan 1 2010",
                         "00:00:30.000 MSK Fri Jan 1 2010", 20, conf="J1")
    # A call with no setup time takes its date from the line timestamp, so its year
    # comes from the file: written on 2010-01-02, its December lines are of 2009.
    no_clock = january.replace(b"h323-setup-time=00:00:00.000 MSK Fri Jan 1 2010\t", b"")
    no_clock = no_clock.replace(b"Jan  1 00:00:50", b"Dec 31 23:58:00")
    (logs / "tacacs.log.1.gz").write_bytes(gzip.compress(december + no_clock + january))
    (logs / "tacacs.log").write_bytes(january + b"Jan  1 00:01:00\tgarbage\n")
    (logs / ".hidden").write_bytes(b"junk\n")
    stamp = dt.datetime(2010, 1, 2, 12, 0).timestamp()
    for name in ("tacacs.log.1.gz", "tacacs.log"):
        os.utime(logs / name, (stamp, stamp))
    done = subprocess.run(
        [command("telephony-import-tacacs"), "--logs", str(logs), "-dataset", str(ds),
         "--root", str(root)], capture_output=True, env=run_env(TZ="UTC"), timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr.decode().strip().splitlines()[-1] == (
        "tacacs import: 2 files, read 5 lines: stored 3, duplicates 1, ignored 0, rejected 1")
    december_rows = rows_of(ds / "2009-12-01.db")
    assert [(r["calldate"], r["callid"]) for r in december_rows] == [
        ("2009-12-31 23:59:00", "D1/answer/Telephony"),
        ("2009-12-31 23:57:40", "J1/answer/Telephony"),  # line timestamp - 20 s
    ]
    assert december_rows[1]["extra"]["calldate_from"] == "line timestamp"
    assert [r["calldate"] for r in rows_of(ds / "2010-01-01.db")] == ["2010-01-01 00:00:00"]
    assert reject_lines(ds)[0].startswith("expected TAB-separated fields")

    # --year overrides the file's date: the call dated by its line timestamp moves to 2008;
    # the others keep the year of their h323 times.
    other = tmp_path / "ds-2008"
    by_year = subprocess.run(
        [command("telephony-import-tacacs"), "--logs", str(logs), "-dataset", str(other),
         "--root", str(root), "--year", "2008"], capture_output=True, env=run_env(TZ="UTC"),
        timeout=120)
    assert by_year.returncode == 0, by_year.stderr
    assert [(r["calldate"], r["callid"]) for r in rows_of(other / "2008-12-01.db")] == [
        ("2008-12-31 23:57:40", "J1/answer/Telephony")]
    assert [r["calldate"] for r in rows_of(other / "2009-12-01.db")] == ["2009-12-31 23:59:00"]
    assert [r["calldate"] for r in rows_of(other / "2010-01-01.db")] == ["2010-01-01 00:00:00"]

    # Re-running the same folder adds nothing new.
    rerun = subprocess.run(
        [command("telephony_import_tacacs"), "--logs", str(logs), "-dataset", str(ds),
         "--root", str(root), "--strict"], capture_output=True, env=run_env(TZ="UTC"), timeout=120)
    assert rerun.returncode == 3
    assert b"stored 0, duplicates 4" in rerun.stderr


def test_tacacs_import_empty_folder(tmp_path):
    result = cli_runner().invoke(import_tacacs_command, ["--logs", str(tmp_path), "--dataset",
                                                        str(tmp_path / "ds")])
    assert result.exit_code == 0
    assert "0 files, read 0 lines" in result.stderr
