"""mbg report on real billing.db and dataset files: totals against SQL, CSV, JSON, table."""

from __future__ import annotations

import csv
import io
import json
import subprocess

import pytest
from click.testing import CliRunner

from mbg import db
from mbg.cli import main
from mbg.root import Root, init_root

from .conftest import INSERT_LOG, command, make_dataset

# Three customers; 'rt' is a provider's route tariff, 'basic' and 'biz' are plans.
BILLING = [
    "INSERT INTO accounts VALUES ('acme', 'Acme Trading'), ('zeta', 'Zeta & Co, \"Ltd\"'), "
    "('idle', 'No traffic')",
    "INSERT INTO services VALUES ('basic', 'Basic plan', 30000, NULL, 'basic'), "
    "('biz', 'Business plan', 120000, NULL, 'biz'), ('rent', 'Phone rental', NULL, 500, NULL)",
    "INSERT INTO routes VALUES ('C01*', 'rt', 1), ('C02*', 'biz', 2)",
    # Charges of October, plus one of September and one of November (not in the report).
    "INSERT INTO charges VALUES ('2009-10-01', 'acme', 'basic', '2009-01-01', 967), "
    "('2009-10-02', 'acme', 'basic', '2009-01-01', 968), "
    "('2009-10-01', 'acme', 'rent', '2009-01-01', 500), "
    "('2009-10-31', 'idle', 'rent', '2009-10-01', 500), "
    "('2009-09-30', 'acme', 'basic', '2009-01-01', 1000), "
    "('2009-11-01', 'acme', 'basic', '2009-01-01', 1000)",
]

# (log_id, tariff, account, direction, prefix, number, seconds, bucket_seconds, amount, role)
COSTS = [
    (1, "basic", "acme", "local", "7495", "74951234567", 120, 120, 0, "plan"),
    (1, "rt", "acme", "local", "7495", "74951234567", 107, 0, 7, "route"),
    (2, "basic", "acme", "mobile", "79", "79161234567", 300, 0, 950, "plan"),
    (2, "rt", "acme", "mobile", "79", "79161234567", 290, 0, 411, "route"),
    (3, "basic", "acme", "mobile", "79", "79169999999", 60, 0, 190, "plan"),
    (4, "biz", "zeta", "international", "44", "442079460000", 186, 0, 3119, "plan"),
    (5, "rt", "", "local", "", "2345", 45, 0, 15, "route"),
]


def make_root(tmp_path, decimals: int | None = None) -> Root:
    root = Root(tmp_path / "root")
    init_root(root)
    if decimals is not None:
        root.settings_file.write_text(f"money_decimals = {decimals}\n")
    conn = db.connect(root.billing_db, "billing")
    with db.write_transaction(conn):
        for sql in BILLING:
            conn.execute(sql)
    conn.close()
    calls = [
        ("pbx", f"2009-10-0{i} 10:00:00", "2345", f"8495{i}", "A2345", "C0100517", 100, 90,
         "16", f"c{i}", None)
        for i in range(1, 6)
    ]
    path = make_dataset(root.dataset_dir / "2009-10-01.db", calls)
    conn = db.connect(path, "dataset")
    with db.write_transaction(conn):
        conn.executemany("INSERT INTO telephony_cost VALUES (?,?,?,?,?,?,?,?,?,?)", COSTS)
    conn.close()
    return root


def report(root: Root, *args: str):
    return CliRunner().invoke(main, ["report", *args, "--root", str(root.path)])


def sql_sums(root: Root) -> tuple[int, int, int]:
    """(plan amounts, route amounts, charges) of October 2009, straight from the files."""
    billing = db.connect(root.billing_db, "billing", readonly=True)
    charges = billing.execute(
        "SELECT sum(amount) FROM charges WHERE day BETWEEN '2009-10-01' AND '2009-10-31'"
    ).fetchall()[0][0]
    billing.close()
    dataset = db.connect(root.dataset_dir / "2009-10-01.db", "dataset", readonly=True)
    route = dataset.execute(
        "SELECT coalesce(sum(amount), 0) FROM telephony_cost WHERE role = 'route'"
    ).fetchall()[0][0]
    everything = dataset.execute("SELECT sum(amount) FROM telephony_cost").fetchall()[0][0]
    dataset.close()
    return everything - route, route, charges


def minor(text: str) -> int:
    """A printed amount back to minor units, exactly (no float on the way)."""
    whole, _, part = text.partition(".")
    sign = -1 if whole.startswith("-") else 1
    return sign * (abs(int(whole)) * 100 + int(part or 0))


def test_json_totals_equal_the_sums_in_the_databases(tmp_path):
    root = make_root(tmp_path)
    result = report(root, "2009-10", "--format", "json")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    plan, route, charges = sql_sums(root)
    assert (plan, route, charges) == (950 + 190 + 3119, 7 + 411 + 15, 967 + 968 + 500 + 500)

    totals = data["totals"]
    assert minor(totals["calls_amount"]) == plan
    assert minor(totals["charges_amount"]) == charges
    assert minor(totals["total"]) == plan + charges
    assert minor(totals["cost"]) == route
    # Every cost row and every charge of the month is in exactly one account.
    assert sum(minor(a["total"]) + minor(a["cost"]) for a in data["accounts"]) == plan + route + charges

    accounts = {a["account"]: a for a in data["accounts"]}
    assert list(accounts) == ["", "acme", "idle", "zeta"]
    acme = accounts["acme"]
    assert acme["name"] == "Acme Trading"
    assert acme["calls"] == 3 and acme["seconds"] == 480
    assert acme["calls_amount"] == "11.40" and acme["charges_amount"] == "24.35"
    assert acme["total"] == "35.75" and acme["cost"] == "4.18"
    assert acme["tariffs"] == [
        {"tariff": "basic", "kind": "plan", "direction": "local", "calls": 1, "seconds": 120,
         "bucket_seconds": 120, "amount": "0.00"},
        {"tariff": "basic", "kind": "plan", "direction": "mobile", "calls": 2, "seconds": 360,
         "bucket_seconds": 0, "amount": "11.40"},
        {"tariff": "rt", "kind": "route", "direction": "local", "calls": 1, "seconds": 107,
         "bucket_seconds": 0, "amount": "0.07"},
        {"tariff": "rt", "kind": "route", "direction": "mobile", "calls": 1, "seconds": 290,
         "bucket_seconds": 0, "amount": "4.11"},
    ]
    assert acme["charges"] == [
        {"service": "basic", "name": "Basic plan", "days": 2, "amount": "19.35"},
        {"service": "rent", "name": "Phone rental", "days": 1, "amount": "5.00"},
    ]
    # A tariff both in routes and in a service is a plan: zeta pays for its call.
    assert accounts["zeta"]["tariffs"][0]["kind"] == "plan"
    assert accounts["zeta"]["total"] == "31.19"
    # The calls of no customer carry only a provider cost.
    assert accounts[""]["calls"] == 0 and accounts[""]["total"] == "0.00"
    assert accounts[""]["cost"] == "0.15"
    # Charges without calls still make an account's bill.
    assert accounts["idle"]["total"] == "5.00" and accounts["idle"]["tariffs"] == []


def test_csv_parses_and_adds_up(tmp_path):
    root = make_root(tmp_path)
    result = report(root, "2009-10-01", "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert list(rows[0]) == ["month", "account", "name", "item", "tariff", "direction", "service",
                             "calls", "seconds", "bucket_seconds", "days", "amount"]
    assert {r["month"] for r in rows} == {"2009-10"}
    plan, route, charges = sql_sums(root)
    by_item: dict[str, int] = {}
    for r in rows:
        by_item[r["item"]] = by_item.get(r["item"], 0) + minor(r["amount"])
    assert by_item["calls"] == plan
    assert by_item["cost"] == route
    assert by_item["charge"] == charges
    assert by_item["total"] == plan + charges
    assert by_item["grand_total"] == plan + charges
    assert by_item["grand_cost"] == route
    zeta = [r for r in rows if r["account"] == "zeta" and r["item"] == "total"]
    assert zeta[0]["name"] == 'Zeta & Co, "Ltd"' and zeta[0]["amount"] == "31.19"
    assert rows[-2]["item"] == "grand_total" and rows[-2]["calls"] == "4"


def test_account_lists_every_call_with_its_costs(tmp_path):
    root = make_root(tmp_path)
    result = report(root, "2009-10", "--account", "acme", "--format", "csv")
    assert result.exit_code == 0, result.output
    rows = list(csv.DictReader(io.StringIO(result.output)))
    assert [(int(r["log_id"]), r["tariff"], r["kind"], r["amount"]) for r in rows] == [
        (1, "basic", "plan", "0.00"), (1, "rt", "route", "0.07"),
        (2, "basic", "plan", "9.50"), (2, "rt", "route", "4.11"),
        (3, "basic", "plan", "1.90"),
    ]
    assert rows[0]["calldate"] == "2009-10-01 10:00:00" and rows[0]["dst"] == "84951"
    assert rows[0]["number"] == "74951234567" and rows[0]["bucket_seconds"] == "120"

    data = json.loads(report(root, "2009-10", "--account", "acme", "--format", "json").output)
    assert [a["account"] for a in data["accounts"]] == ["acme"]
    assert len(data["accounts"][0]["detail"]) == 5
    assert data["totals"]["total"] == "35.75"

    table = report(root, "2009-10", "--account", "acme")
    assert table.exit_code == 0
    assert "Calls of acme" in table.output and "79169999999" in table.output
    assert "35.75" in table.output


def test_table_shows_each_account_and_the_grand_total(tmp_path):
    root = make_root(tmp_path)
    result = report(root, "2009-10")
    assert result.exit_code == 0, result.output
    out = result.output
    for text in ("acme (Acme Trading)", "tariff basic", "basic: Basic plan", "(no account)",
                 "grand total", "35.75", "71.94", "4.33"):
        assert text in out, text
    # Nothing wrapped at 80 columns when piped: one line per row.
    assert any("tariff basic" in line and "11.40" in line for line in out.splitlines())


def test_empty_month_is_an_empty_report(tmp_path):
    root = make_root(tmp_path)
    for args in (["2009-12"], ["2009-12", "--account", "acme"]):
        result = report(root, *args)
        assert result.exit_code == 0, result.output
        assert "2009-12: no calls and no charges" in result.output
    data = json.loads(report(root, "2009-12", "--format", "json").output)
    assert data["accounts"] == []
    assert data["totals"] == {"calls": 0, "seconds": 0, "calls_amount": "0.00",
                              "charges_amount": "0.00", "total": "0.00", "cost": "0.00"}
    rows = list(csv.reader(io.StringIO(report(root, "2009-12", "--format", "csv").output)))
    assert [r[3] for r in rows[1:]] == ["grand_total", "grand_cost"]
    assert rows[1][-1] == "0.00"
    calls = report(root, "2009-12", "--account", "acme", "--format", "csv").output
    assert calls.splitlines() == [
        "log_id,calldate,source,src,dst,number,billsec,tariff,kind,direction,prefix,"
        "seconds,bucket_seconds,amount"
    ]


def test_money_decimals_from_the_settings(tmp_path):
    root = make_root(tmp_path, decimals=0)
    data = json.loads(report(root, "2009-10", "--format", "json").output)
    assert data["money_decimals"] == 0
    assert data["totals"]["total"] == str(950 + 190 + 3119 + 967 + 968 + 500 + 500)


@pytest.mark.parametrize(
    "args, message",
    [
        (["2009-13"], "bad month"),
        (["2009-10", "--account", "nobody"], "unknown account 'nobody'"),
        (["2009-10", "--format", "xml"], "Invalid value"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(tmp_path, args, message):
    root = make_root(tmp_path)
    result = report(root, *args)
    assert result.exit_code == 2
    assert message in result.output


def test_missing_tree_and_foreign_dataset(tmp_path):
    result = report(Root(tmp_path / "nothing"), "2009-10")
    assert result.exit_code == 2 and "mbg init" in result.output
    root = make_root(tmp_path)
    (root.dataset_dir / "2009-10-01.db").unlink()
    (root.dataset_dir / "2009-10-01.db").write_bytes(b"not a database at all" * 10)
    result = report(root, "2009-10")
    assert result.exit_code == 2 and "2009-10-01.db" in result.output


def test_installed_command_reads_while_a_writer_holds_the_dataset(tmp_path):
    """A report runs beside a collector: WAL lets it read while a write transaction is open."""
    root = make_root(tmp_path)
    conn = db.connect(root.dataset_dir / "2009-10-01.db", "dataset")
    conn.execute("BEGIN IMMEDIATE")
    conn.execute(INSERT_LOG, ("pbx", "2009-10-09 10:00:00", "1", "2", "", "", 1, 1, "", "x", None))
    try:
        done = subprocess.run([command("mbg"), "report", "2009-10", "--format", "json",
                               "--root", str(root.path)], capture_output=True, text=True, timeout=60)
    finally:
        conn.execute("ROLLBACK")
        conn.close()
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["totals"]["total"] == "71.94"


def test_brackets_in_names_and_numbers_are_text_not_markup(tmp_path):
    root = make_root(tmp_path)
    conn = db.connect(root.billing_db, "billing")
    with db.write_transaction(conn):
        conn.execute("UPDATE accounts SET name = 'Alpha [/b] [red]Ltd' WHERE account = 'acme'")
    conn.close()
    conn = db.connect(root.dataset_dir / "2009-10-01.db", "dataset")
    with db.write_transaction(conn):
        conn.execute("UPDATE telephony_cost SET number = '[bold]7495' WHERE log_id = 1")
    conn.close()
    result = report(root, "2009-10")
    assert result.exit_code == 0, result.output
    assert "acme (Alpha [/b] [red]Ltd)" in result.output
    detail = report(root, "2009-10", "--account", "acme")
    assert detail.exit_code == 0, detail.output
    assert "[bold]7495" in detail.output


def test_later_edits_of_services_never_rewrite_a_past_report(tmp_path):
    """Plan and route rows are told apart by the role rating stored, not by today's
    services: a service added later that names a provider's tariff changes nothing."""
    root = tmp_path / "demo"
    assert CliRunner().invoke(main, ["demo", "--root", str(root)]).exit_code == 0
    dataset = root / "dataset" / "telephony" / "2009-10-01.db"
    conn = db.connect(dataset, "dataset", readonly=True)
    roles = dict(conn.execute("SELECT tariff, group_concat(DISTINCT role) FROM telephony_cost "
                              "GROUP BY tariff").fetchall())
    conn.close()
    assert roles["rostelecom"] == "route" and roles["basic"] == "plan"
    before = CliRunner().invoke(main, ["report", "2009-10", "--format", "json", "--root", str(root)])
    assert before.exit_code == 0, before.output
    services = tmp_path / "services.csv"
    services.write_text("service,name,monthly_fee,daily_fee,tariff\nresell,Resale,,,rostelecom\n")
    loaded = CliRunner().invoke(main, ["load", "services", str(services), "--root", str(root)])
    assert loaded.exit_code == 0, loaded.output
    after = CliRunner().invoke(main, ["report", "2009-10", "--format", "json", "--root", str(root)])
    assert json.loads(after.output) == json.loads(before.output)
    assert minor(json.loads(after.output)["totals"]["cost"]) > 0
