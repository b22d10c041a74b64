"""month, mbg init, telephony-dataset-init, settings: run as an operator would."""

from __future__ import annotations

import sqlite3
import subprocess

import pytest
from click.testing import CliRunner

from mbg import db
from mbg.cli import main
from mbg.cli.month import month_command
from mbg.errors import SettingsError
from mbg.settings import load_settings

from .conftest import command


def test_month_of_a_leap_february():
    result = CliRunner().invoke(month_command, ["2024-02"])
    assert result.exit_code == 0
    days = result.output.split()
    assert len(days) == 29 and days[0] == "2024-02-01" and days[-1] == "2024-02-29"
    assert CliRunner().invoke(month_command, ["2023-02-15"]).output.split()[-1] == "2023-02-28"


@pytest.mark.parametrize("bad", ["2024-13", "2024-02-30", "24-02", "february", "2024-2", ""])
def test_bad_dates_exit_2(bad):
    result = CliRunner().invoke(month_command, [bad])
    assert result.exit_code == 2
    assert "bad month" in result.output
    assert result.output.count("\n") == 1  # one clear line, no traceback


def test_classic_names_are_installed():
    for name in ("month", "telephony-dataset-init", "telephony_dataset_init",
                 "telephony-dataset-merge", "telephony_dataset_merge", "mbg"):
        out = subprocess.run([command(name), "--help"], capture_output=True, text=True)
        assert out.returncode == 0, (name, out.stderr)
    out = subprocess.run([command("month"), "2009-10-01"], capture_output=True, text=True)
    assert out.stdout.split()[-1] == "2009-10-31"
    out = subprocess.run([command("mbg"), "--version"], capture_output=True, text=True)
    assert "mbg, version" in out.stdout


def test_mbg_init_creates_the_tree(tmp_path, monkeypatch):
    root = tmp_path / "srv"
    monkeypatch.setenv("MBGROOT", str(root))
    result = CliRunner().invoke(main, ["init"])
    assert result.exit_code == 0, result.output
    for sub in ("etc", "data", "dataset/telephony/reject", "dataset/telephony/spool"):
        assert (root / sub).is_dir()
    con = sqlite3.connect(root / "data" / "billing.db")
    assert con.execute("PRAGMA application_id").fetchone()[0] == db.APPLICATION_IDS["billing"]
    assert CliRunner().invoke(main, ["init"]).exit_code == 0  # idempotent
    # --root wins over MBGROOT
    other = tmp_path / "other"
    assert CliRunner().invoke(main, ["init", "--root", str(other)]).exit_code == 0
    assert (other / "data" / "billing.db").is_file()


def test_dataset_init_by_month_and_by_path(tmp_path, monkeypatch):
    monkeypatch.setenv("MBGROOT", str(tmp_path / "root"))
    result = CliRunner().invoke(main, ["dataset", "init", "2009-10-15"])
    assert result.exit_code == 0, result.output
    path = tmp_path / "root" / "dataset" / "telephony" / "2009-10-01.db"
    assert path.is_file()
    out = subprocess.run(
        [command("telephony-dataset-init"), "-dataset", str(tmp_path / "ds"), "2009-11"],
        capture_output=True, text=True,
    )
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "ds" / "2009-11-01.db").is_file()
    again = CliRunner().invoke(main, ["dataset", "init", str(path)])
    assert again.exit_code == 0 and "unchanged" in again.output


def test_dataset_init_refuses_a_foreign_file(tmp_path):
    path = tmp_path / "x.db"
    path.write_text("not sqlite")
    result = CliRunner().invoke(main, ["dataset", "init", str(path)])
    assert result.exit_code == 2
    assert path.read_text() == "not sqlite"
    assert CliRunner().invoke(main, ["dataset", "init", "2009-13"]).exit_code == 2


def test_settings_defaults_and_values(tmp_path):
    s = load_settings(tmp_path / "missing.toml")
    assert s.money_decimals == 2 and s.rounding == "half-up"
    path = tmp_path / "mbg.toml"
    path.write_text(
        'timezone = "Europe/Moscow"\nmoney_decimals = 0\nrounding = "half-even"\n'
        '[tacacs.zones]\nVSK = "+10:00"\nMSK = "Europe/Moscow"\n'
    )
    s = load_settings(path)
    assert s.timezone_name == "Europe/Moscow" and s.money_decimals == 0
    assert s.rounding == "half-even"
    import datetime as dt
    assert s.tacacs_zones["VSK"].utcoffset(None) == dt.timedelta(hours=10)


@pytest.mark.parametrize(
    "text, key",
    [
        ("timezon = 'UTC'", "timezon"),
        ("timezone = 'Mars/Olympus'", "timezone"),
        ("money_decimals = 2.5", "money_decimals"),
        ("rounding = 'bankers'", "rounding"),
        ("[tacacs]\nsrcs = ['clid']", "tacacs.srcs"),
        ("[tacacs.zones]\nMSK = '+3'", "tacacs.zones.MSK"),
        ("[tacacs]\nsrc = []", "tacacs.src"),
    ],
)
def test_bad_settings_name_the_key(tmp_path, text, key):
    path = tmp_path / "mbg.toml"
    path.write_text(text + "\n")
    with pytest.raises(SettingsError, match=key.replace(".", r"\.")):
        load_settings(path)


def test_every_mbg_subcommand_loads_and_has_help():
    from mbg.cli import COMMANDS

    listed = CliRunner().invoke(main, ["--help"]).output
    for name in COMMANDS:
        assert f"  {name} " in listed
        result = CliRunner().invoke(main, [name, "--help"])
        assert result.exit_code == 0, (name, result.output)
        assert "Usage: " in result.output
    unknown = CliRunner().invoke(main, ["no-such-command"])
    assert unknown.exit_code == 2


def test_a_full_disk_is_one_line_and_exit_1(tmp_path):
    """SQLite's 'database or disk is full' (here a real one: a file capped by
    max_page_count) comes out of any command as one line, not a traceback."""
    import apsw
    import click
    from click.testing import CliRunner

    from mbg import db
    from mbg.cli.options import handle_errors

    @click.command()
    @handle_errors
    def fill():
        conn = apsw.Connection(str(tmp_path / "small.db"))
        conn.execute("PRAGMA max_page_count = 3")
        conn.execute("CREATE TABLE t (x)")
        with db.write_transaction(conn):
            conn.executemany("INSERT INTO t VALUES (?)", ((b"x" * 1000,) for _ in range(100)))

    result = CliRunner().invoke(fill, [])
    assert result.exit_code == 1, result.exception
    assert result.output.strip().splitlines() == [
        "Error: database or disk is full; the running transaction was rolled back"]
