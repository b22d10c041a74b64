"""mbg load / mbg dump: reference data of billing.db, as an operator uses them."""

from __future__ import annotations

import sqlite3
import subprocess

import pytest
from click.testing import CliRunner

from mbg.cli import main

from .conftest import command


def run(*args: str):
    return CliRunner().invoke(main, list(args))


def write(path, text: str):
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture
def root(env_root):
    assert run("init").exit_code == 0
    return env_root


class billing:
    """Queries of billing.db, each on a fresh connection (no stale read snapshot)."""

    def __init__(self, root):
        self.path = root / "data" / "billing.db"

    def execute(self, sql: str, args=()):
        con = sqlite3.connect(self.path)
        try:
            rows = con.execute(sql, args).fetchall()
            con.commit()
        finally:
            con.close()
        return _Rows(rows)

    def commit(self):
        pass


class _Rows(list):
    def fetchall(self):
        return list(self)

    def fetchone(self):
        return self[0]


def load(tmp_path, kind: str, text: str, name: str | None = None):
    path = write(tmp_path / (name or f"{kind}.csv"), text)
    return run("load", kind, str(path)), path


FULL = {
    "accounts": "account,name\nA1,Acme Ltd\nA2,\"Bolt, and Nut\"\n",
    "numbers": "number,account,valid_from,valid_to\n+74951234567,A1,2009-10-01,2009-10-15\n"
               "+74951234567,A2,2009-10-15,\n0123,A2,2009-01-01,\n",
    "tariffs": "tariff,prefix,direction,price,first,next,connect_fee,free_seconds,bucket\n"
               "city,,local,0.45,60,60,,,\ncity,7495,local,0.1234,30,6,0.50,3,mins\n"
               "prov,7,long,1.00,,,,,\n",
    "buckets": "tariff,bucket,seconds\ncity,mins,6000\n",
    "routes": "pattern,tariff\nC01*,prov\n*,city\n",
    "services": "service,name,monthly_fee,daily_fee,tariff\nphone,Phone plan,300.00,,city\n"
                "ip,Static IP,,1.50,\n",
    "subscriptions": "account,service,start,stop\nA1,phone,2009-10-10,\nA2,ip,2009-01-01,2009-12-01\n",
    "schedule": "date,account,action,service,new_service\n2009-11-01,A1,switch,phone,ip\n"
                "2009-11-05,A2,stop,ip,\n",
}


def load_all(tmp_path):
    for kind, text in FULL.items():
        result, _ = load(tmp_path, kind, text)
        assert result.exit_code == 0, (kind, result.output)


def test_load_every_kind_and_dump_loads_again(root, tmp_path):
    load_all(tmp_path)
    con = billing(root)
    assert con.execute("SELECT * FROM accounts ORDER BY account").fetchall() == [
        ("A1", "Acme Ltd"), ("A2", "Bolt, and Nut")]
    assert con.execute("SELECT * FROM numbers ORDER BY number, valid_from").fetchall() == [
        ("+74951234567", "A1", "2009-10-01", "2009-10-15"),
        ("+74951234567", "A2", "2009-10-15", None),
        ("0123", "A2", "2009-01-01", None)]
    assert con.execute("SELECT * FROM tariffs WHERE prefix = ''").fetchall() == [
        ("city", "", "local", "0.45", 60, 60, "0", 0, None)]
    assert con.execute("SELECT * FROM tariffs WHERE prefix = '7'").fetchall() == [
        ("prov", "7", "long", "1.00", 1, 1, "0", 0, None)]
    assert con.execute("SELECT * FROM services ORDER BY service").fetchall() == [
        ("ip", "Static IP", None, 150, None), ("phone", "Phone plan", 30000, None, "city")]
    assert con.execute("SELECT pattern, tariff FROM routes ORDER BY position").fetchall() == [
        ("C01*", "prov"), ("*", "city")]
    before = {t: con.execute(f"SELECT * FROM {t}").fetchall() for t in FULL}

    # dump every kind, load the dumps into a fresh tree: the same tables
    dumps = {}
    for kind in FULL:
        result = run("dump", kind)
        assert result.exit_code == 0, result.output
        dumps[kind] = result.stdout
    assert dumps["services"].splitlines()[1:] == [
        "ip,Static IP,,1.50,", "phone,Phone plan,300.00,,city"]
    assert dumps["schedule"].splitlines()[0] == "date,account,action,service,new_service,state,reason"
    assert dumps["schedule"].splitlines()[1] == "2009-11-01,A1,switch,phone,ip,pending,"
    other = tmp_path / "other"
    assert run("init", "--root", str(other)).exit_code == 0
    for kind, text in dumps.items():
        path = write(tmp_path / f"dump-{kind}.csv", text)
        result = run("load", kind, str(path), "--root", str(other))
        assert result.exit_code == 0, (kind, result.output)
    con2 = billing(other)
    for table, rows in before.items():
        assert sorted(con2.execute(f"SELECT * FROM {table}").fetchall()) == sorted(rows), table


def test_reload_is_idempotent_and_replaces_by_key(root, tmp_path):
    load_all(tmp_path)
    con = billing(root)
    tables = ("accounts", "numbers", "tariffs", "buckets", "routes", "services", "subscriptions",
              "schedule")
    before = {t: sorted(con.execute(f"SELECT * FROM {t}").fetchall()) for t in tables}
    load_all(tmp_path)
    assert {t: sorted(con.execute(f"SELECT * FROM {t}").fetchall()) for t in tables} == before
    result, _ = load(tmp_path, "accounts", "account,name\nA1,Acme Renamed\nA3,New\n")
    assert result.exit_code == 0
    assert "inserted 1, replaced 1" in result.output
    assert con.execute("SELECT * FROM accounts ORDER BY account").fetchall() == [
        ("A1", "Acme Renamed"), ("A2", "Bolt, and Nut"), ("A3", "New")]


def test_schedule_state_is_kept_on_reload_unless_changed(root, tmp_path):
    load_all(tmp_path)
    con = billing(root)
    con.execute("UPDATE schedule SET state = 'done'")
    con.commit()
    load(tmp_path, "schedule", FULL["schedule"])
    assert {r[0] for r in con.execute("SELECT state FROM schedule")} == {"done"}
    load(tmp_path, "schedule", "date,account,action,service,new_service\n"
                               "2009-11-01,A1,switch,phone,phone\n")
    assert con.execute("SELECT action, state FROM schedule ORDER BY date").fetchall() == [
        ("switch", "pending"), ("stop", "done")]


BAD = [
    ("accounts", "account,name\nA1,x\n,y\n", "line 3, column account: empty"),
    ("accounts", "account,nome\nA1,x\n", "line 1, column nome: unknown column"),
    ("accounts", "account\nA1\n", "line 1, column name: missing"),
    ("accounts", "account,name\nA1,x\nA1,y\n", "line 3, column account: the key (A1) is already on line 2"),
    ("accounts", "account,name\nA1,x,z\n", "line 2: 3 columns"),
    ("accounts", "", "line 1: empty file"),
    ("numbers", "number,account,valid_from,valid_to\n1,A9,2009-10-01,\n",
     "line 2, column account: unknown account 'A9'"),
    ("numbers", "number,account,valid_from,valid_to\n1,A1,2009-10-32,\n",
     "line 2, column valid_from: bad day"),
    ("numbers", "number,account,valid_from,valid_to\n1,A1,2009-10-05,2009-10-05\n",
     "line 2, column valid_to: must be after valid_from"),
    ("numbers", "number,account,valid_from,valid_to\n1,A1,2009-10-01,\n1,A1,2009-11-01,\n",
     "column valid_from: 1: the rows from 2009-10-01 and from 2009-11-01 overlap"),
    ("tariffs", "tariff,prefix,direction,price,first,next,connect_fee,free_seconds,bucket\n"
                "t,7,,0.4.5,,,,,\n", "line 2, column price: bad decimal '0.4.5'"),
    ("tariffs", "tariff,prefix,direction,price,first,next,connect_fee,free_seconds,bucket\n"
                "t,7,,1e3,,,,,\n", "line 2, column price"),
    ("tariffs", "tariff,prefix,direction,price,first,next,connect_fee,free_seconds,bucket\n"
                "t,7,,-1,,,,,\n", "line 2, column price: '-1' is negative"),
    ("tariffs", "tariff,prefix,direction,price,first,next,connect_fee,free_seconds,bucket\n"
                "t,7,,1,0,,,,\n", "line 2, column first: bad increment"),
    ("tariffs", "tariff,prefix,direction,price,first,next,connect_fee,free_seconds,bucket\n"
                "t,7,,1,,1.5,,,\n", "line 2, column next: bad seconds"),
    ("tariffs", "tariff,prefix,direction,price,first,next,connect_fee,free_seconds,bucket\n"
                "t,7,,1,100000000000000000000,,,,\n",
     "line 2, column first: bad seconds '100000000000000000000': more than 1000000000"),
    ("buckets", "tariff,bucket,seconds\nnope,b,60\n", "line 2, column tariff: unknown tariff"),
    ("services", "service,name,monthly_fee,daily_fee,tariff\ns,,1.005,,\n",
     "line 2, column monthly_fee: bad amount '1.005': more than 2 decimal places"),
    ("subscriptions", "account,service,start,stop\nA1,none,2009-10-01,\n",
     "line 2, column service: unknown service 'none'"),
    ("schedule", "date,account,action,service,new_service\n2009-11-01,A1,pause,phone,\n",
     "line 2, column action: bad action 'pause'"),
    ("schedule", "date,account,action,service,new_service\n2009-11-01,A1,switch,phone,\n",
     "line 2, column new_service: a switch needs the new service"),
]


@pytest.mark.parametrize("kind,text,message", BAD)
def test_bad_file_changes_nothing_and_names_line_and_column(root, tmp_path, kind, text, message):
    for k in ("accounts", "tariffs", "services"):
        assert load(tmp_path, k, FULL[k])[0].exit_code == 0
    con = billing(root)
    tables = ("accounts", "numbers", "tariffs", "buckets", "services", "subscriptions", "schedule")
    before = {t: sorted(con.execute(f"SELECT * FROM {t}").fetchall()) for t in tables}
    # good rows first: the bad row must undo them too
    result, path = load(tmp_path, kind, text, name="bad.csv")
    assert result.exit_code == 2, result.output
    assert result.output.count("\n") == 1
    assert str(path) in result.output and message in result.output
    assert {t: sorted(con.execute(f"SELECT * FROM {t}").fetchall()) for t in tables} == before


def test_bad_row_after_good_rows_loads_none(root, tmp_path):
    result, _ = load(tmp_path, "accounts", "account,name\nA1,x\nA2,y\n,z\n")
    assert result.exit_code == 2
    assert billing(root).execute("SELECT count(*) FROM accounts").fetchone()[0] == 0


def test_not_utf8_and_missing_file(root, tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes(b"account,name\nA1,Caf\xe9\n")
    result = run("load", "accounts", str(path))
    assert result.exit_code == 2 and "line 2: not UTF-8" in result.output
    result = run("load", "accounts", str(tmp_path / "none.csv"))
    assert result.exit_code == 2 and "cannot read" in result.output


def test_bom_spaces_any_column_order(root, tmp_path):
    path = tmp_path / "a.csv"
    path.write_bytes("\ufeffname , account\n Acme , A1 \n".encode())
    assert run("load", "accounts", str(path)).exit_code == 0
    assert billing(root).execute("SELECT * FROM accounts").fetchall() == [("A1", "Acme")]


def test_numbers_keep_leading_zeros_and_plus(root, tmp_path):
    load(tmp_path, "accounts", FULL["accounts"])
    load(tmp_path, "numbers", "number,account,valid_from,valid_to\n007,A1,2009-10-01,\n+7,A1,2009-10-01,\n")
    assert sorted(r[0] for r in billing(root).execute("SELECT number FROM numbers")) == ["+7", "007"]
    assert "007,A1,2009-10-01," in run("dump", "numbers").stdout


def test_routes_keep_file_order_on_reload(root, tmp_path):
    load(tmp_path, "tariffs", FULL["tariffs"])
    load(tmp_path, "routes", "pattern,tariff\nB*,city\nA*,prov\n*,city\n")
    load(tmp_path, "routes", "pattern,tariff\nB*,city\nA*,prov\n*,city\n")
    assert run("dump", "routes").stdout.splitlines()[1:] == ["B*,city", "A*,prov", "*,city"]
    load(tmp_path, "routes", "pattern,tariff\nZ*,prov\n")  # added after the rest
    assert run("dump", "routes").stdout.splitlines()[1:] == ["B*,city", "A*,prov", "*,city", "Z*,prov"]


def test_dump_charges(root):
    con = billing(root)
    con.execute("INSERT INTO charges VALUES ('2009-10-01', 'A1', 'phone', '2009-09-01', 968)")
    con.commit()
    result = run("dump", "charges")
    assert result.exit_code == 0
    assert result.stdout == "day,account,service,amount\n2009-10-01,A1,phone,9.68\n"


def test_load_needs_init_and_a_known_kind(env_root, tmp_path):
    path = write(tmp_path / "a.csv", FULL["accounts"])
    result = run("load", "accounts", str(path))
    assert result.exit_code == 2 and "mbg init" in result.output
    assert run("init").exit_code == 0
    assert run("load", "charges", str(path)).exit_code == 2
    assert run("dump", "nothing").exit_code == 2


def test_installed_mbg_load_and_dump(root, tmp_path):
    path = write(tmp_path / "a.csv", FULL["accounts"])
    out = subprocess.run([command("mbg"), "load", "accounts", str(path)], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    out = subprocess.run([command("mbg"), "dump", "accounts"], capture_output=True, text=True)
    assert out.stdout == 'account,name\nA1,Acme Ltd\nA2,"Bolt, and Nut"\n'


def test_money_decimals_cannot_change_under_stored_amounts(root, tmp_path):
    """Amounts are minor units: after the first load, a different money_decimals would
    rescale every fee and charge silently, so every money command refuses it instead."""
    settings = root / "etc" / "mbg.toml"
    settings.write_text("money_decimals = 0\n")  # chosen before the first load: fine
    settings.write_text("money_decimals = 2\n")
    load_all(tmp_path)
    assert billing(root).execute("SELECT value FROM meta").fetchall() == [("2",)]
    settings.write_text("money_decimals = 3\n")
    for args in (("dump", "services"), ("cost", "2009-10-11"), ("rate", "2009-10"),
                 ("report", "2009-10")):
        result = run(*args)
        assert result.exit_code == 2, (args, result.output)
        assert "set money_decimals = 2" in result.output
    result, _ = load(tmp_path, "accounts", "account,name\nA3,x\n")
    assert result.exit_code == 2
    assert billing(root).execute("SELECT count(*) FROM charges").fetchone() == (0,)
    assert billing(root).execute("SELECT count(*) FROM accounts").fetchone() == (2,)
    settings.write_text("money_decimals = 2\n")
    dump = run("dump", "services")
    assert dump.exit_code == 0 and "phone,Phone plan,300.00,,city" in dump.output
