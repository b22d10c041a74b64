"""billing-cost-daily and billing-cost-daily-force on a real billing.db."""

from __future__ import annotations

import csv
import datetime as dt
import io
import subprocess
from decimal import Decimal

import pytest

from mbg import db
from mbg.charges import daily_share
from mbg.dates import month_days, parse_month
from mbg.root import Root

from .charges_helpers import charges, insert, make_root, mbg, query, total, write_csv
from .conftest import command, run_env

MONTHS = {"2023-02": 28, "2024-02": 29, "2009-11": 30, "2009-10": 31}
FEES = {"odd": 29999, "kopeck": 1, "million": 100_000_000}  # 299.99, 0.01, 1000000.00


def days_of(month: str) -> list[str]:
    return [d.isoformat() for d in month_days(parse_month(month))]


@pytest.mark.parametrize("month,n", MONTHS.items())
@pytest.mark.parametrize("fee", FEES.values())
def test_shares_of_a_month_add_up_to_the_fee(month, n, fee):
    days = month_days(parse_month(month))
    shares = [daily_share(fee, day) for day in days]
    assert len(shares) == n
    assert sum(shares) == fee
    # Every share is the fee over N rounded down or up: no day pays a lump.
    assert {s for s in shares} <= {fee // n, fee // n + 1}


def test_share_is_the_floor_formula():
    # 299.99 over 30 days: floor(k*29999/30) - floor((k-1)*29999/30)
    day = dt.date(2009, 11, 1)
    assert daily_share(29999, day) == 999
    assert daily_share(29999, dt.date(2009, 11, 2)) == 59998 // 30 - 999 == 1000
    assert daily_share(1, dt.date(2009, 11, 29)) == 0
    assert daily_share(1, dt.date(2009, 11, 30)) == 1


@pytest.fixture
def fees_root(tmp_path):
    """Three accounts, each subscribed since 2009-01-01 to one of the awkward fees."""
    root = make_root(tmp_path / "root")
    insert(root, "accounts", [(name, name.title()) for name in FEES])
    insert(root, "services", [(f"s-{name}", "", fee, None, None) for name, fee in FEES.items()])
    insert(root, "subscriptions", [(name, f"s-{name}", "2009-01-01", None) for name in FEES])
    return root


@pytest.mark.parametrize("month", MONTHS)
def test_a_full_month_sums_to_the_fee_exactly(fees_root, month):
    days = days_of(month)
    result = mbg(fees_root, "cost", *days)
    assert result.exit_code == 0, result.output
    for name, fee in FEES.items():
        assert total(fees_root, name, f"s-{name}", month) == fee
    rows = charges(fees_root)
    assert len(rows) == 3 * len(days)  # one row per (day, subscription)
    assert {r[0] for r in rows} == set(days)
    assert f"charged {len(days)} day(s): {3 * len(days)} charge(s)" in result.stderr
    assert "skipped 0 day(s)" in result.stderr


def test_rerun_changes_nothing_and_force_equals_the_first_run(fees_root):
    days = days_of("2009-11")
    assert mbg(fees_root, "cost", *days).exit_code == 0
    first = charges(fees_root)
    again = mbg(fees_root, "cost", *days)
    assert again.exit_code == 0
    assert "charged 0 day(s)" in again.stderr and "skipped 30 day(s) already charged" in again.stderr
    assert charges(fees_root) == first
    forced = mbg(fees_root, "cost", "--force", *days)
    assert forced.exit_code == 0, forced.output
    assert "re-charged 30 day(s): 90 charge(s)" in forced.stderr
    assert charges(fees_root) == first


def test_a_charged_day_is_skipped_until_forced(fees_root):
    assert mbg(fees_root, "cost", "2009-11-05").exit_code == 0
    # A subscription loaded afterwards, active on the 5th.
    insert(fees_root, "subscriptions", [("odd", "s-kopeck", "2009-11-05", None)])
    skipped = mbg(fees_root, "cost", "2009-11-05")
    assert skipped.exit_code == 0
    assert len(charges(fees_root)) == 3
    assert ("warning: 2009-11-05: already charged, but 1 charge(s) due now differ from it"
            in skipped.stderr)
    assert "billing-cost-daily-force 2009-11-05" in skipped.stderr
    assert mbg(fees_root, "cost", "--force", "2009-11-05").exit_code == 0
    assert len(charges(fees_root)) == 4
    assert "warning" not in mbg(fees_root, "cost", "2009-11-05").stderr
    # A day with no charge yet is charged by a plain run, next to a skipped one.
    result = mbg(fees_root, "cost", "2009-11-05", "2009-11-06")
    assert "charged 1 day(s): 4 charge(s)" in result.stderr and "skipped 1 day(s)" in result.stderr


def test_daily_fee_wins_and_a_service_without_fee_is_not_charged(tmp_path):
    root = make_root(tmp_path / "root")
    insert(root, "accounts", [("a1", "")])
    insert(root, "services", [
        ("both", "", 300000, 1234, None),   # daily fee 12.34 wins over 3000.00 a month
        ("daily", "", None, 50, None),
        ("free", "", None, None, "t1"),     # a telephony plan with no fee
    ])
    insert(root, "subscriptions", [("a1", s, "2009-11-01", None) for s in ("both", "daily", "free")])
    assert mbg(root, "cost", *days_of("2009-11")).exit_code == 0
    assert total(root, "a1", "both", "2009-11") == 30 * 1234
    assert total(root, "a1", "daily", "2009-11") == 30 * 50
    assert query(root, "SELECT count(*) FROM charges WHERE service = 'free'") == [(0,)]


def test_switch_mid_month_charges_each_service_for_its_own_days(tmp_path):
    root = make_root(tmp_path / "root")
    insert(root, "accounts", [("a1", "")])
    insert(root, "services", [("basic", "", 29999, None, None), ("premium", "", 100000, None, None)])
    insert(root, "subscriptions", [
        ("a1", "basic", "2009-10-01", "2009-11-15"),
        ("a1", "premium", "2009-11-15", None),
    ])
    assert mbg(root, "cost", *days_of("2009-11")).exit_code == 0
    rows = charges(root)
    assert [r[0] for r in rows if r[2] == "basic"] == days_of("2009-11")[:14]
    assert [r[0] for r in rows if r[2] == "premium"] == days_of("2009-11")[14:]
    assert len(rows) == 30  # never both on a day, the 15th included
    assert [r[2] for r in rows if r[0] == "2009-11-15"] == ["premium"]
    assert total(root, "a1", "basic", "2009-11") == 14 * 29999 // 30
    assert total(root, "a1", "premium", "2009-11") == 100000 - 14 * 100000 // 30
    # Its own start: the charge row names the subscription it belongs to.
    assert {r[3] for r in rows if r[2] == "basic"} == {"2009-10-01"}


@pytest.mark.parametrize("bad", ["2009-11-31", "2009-13-01", "tomorrow", "2009-11", "20091101"])
def test_a_bad_day_exits_2_and_changes_nothing(fees_root, bad):
    result = mbg(fees_root, "cost", "2009-11-01", bad, "2009-11-02")
    assert result.exit_code == 2
    assert "bad day" in result.stderr and result.stderr.count("\n") == 1
    assert charges(fees_root) == []
    forced = mbg(fees_root, "cost", "--force", "2009-11-01")
    assert forced.exit_code == 0
    before = charges(fees_root)
    assert mbg(fees_root, "cost", "--force", "2009-11-01", bad).exit_code == 2
    assert charges(fees_root) == before


def test_no_day_and_no_tree_exit_2(tmp_path):
    root = make_root(tmp_path / "root")
    assert mbg(root, "cost").exit_code == 2
    missing = mbg(Root(tmp_path / "nothing"), "cost", "2009-11-01")
    assert missing.exit_code == 2 and "mbg init" in missing.stderr
    assert not (tmp_path / "nothing").exists()


def test_force_is_one_transaction_per_day(fees_root):
    """A day whose charging fails keeps its previous charges; the days before it stay done."""
    days = days_of("2009-11")[:3]
    assert mbg(fees_root, "cost", *days).exit_code == 0
    before = charges(fees_root)
    insert(fees_root, "accounts", [("new", "")])
    insert(fees_root, "subscriptions", [("new", "s-odd", "2009-11-01", None)])
    # A real SQLite trigger makes the insert of one row of the 2nd day fail.
    conn = db.connect(fees_root.billing_db, "billing")
    conn.execute(
        "CREATE TRIGGER boom BEFORE INSERT ON charges WHEN NEW.day = '2009-11-02' "
        "AND NEW.account = 'new' BEGIN SELECT RAISE(ABORT, 'disk trouble'); END"
    )
    conn.close()
    result = mbg(fees_root, "cost", "--force", *days)
    assert result.exit_code != 0
    after = charges(fees_root)

    def on(rows, day):
        return {r for r in rows if r[0] == day}

    assert on(after, "2009-11-01") == on(before, "2009-11-01") | {("2009-11-01", "new", "s-odd", "2009-11-01", 999)}
    assert on(after, "2009-11-02") == on(before, "2009-11-02") and len(on(after, "2009-11-02")) == 3
    assert on(after, "2009-11-03") == on(before, "2009-11-03")


def test_unknown_service_is_reported_and_the_rest_charged(tmp_path):
    root = make_root(tmp_path / "root")
    insert(root, "accounts", [("a1", "")])
    insert(root, "services", [("basic", "", 3000, None, None)])
    insert(root, "subscriptions", [("a1", "basic", "2009-11-01", None), ("a1", "gone", "2009-11-01", None)])
    result = mbg(root, "cost", "2009-11-01")
    assert result.exit_code == 0
    assert "a1 gone (from 2009-11-01) not charged: unknown service gone" in result.stderr
    assert "1 subscription(s) with an unknown service" in result.stderr
    assert charges(root) == [("2009-11-01", "a1", "basic", "2009-11-01", 100)]


def test_warns_when_the_planner_has_not_run(fees_root):
    insert(fees_root, "schedule", [("2009-11-03", "odd", "stop", "s-odd", None, "pending", "")])
    result = mbg(fees_root, "cost", "2009-11-02", "2009-11-03")
    assert result.exit_code == 0
    assert "2009-11-03: 1 schedule entry due by this day not applied" in result.stderr
    assert "2009-11-02: " not in result.stderr


def test_installed_scripts_charge_a_month_from_month_xargs(fees_root):
    env = run_env(MBGROOT=str(fees_root.path))
    days = subprocess.run([command("month"), "2009-11-01"], capture_output=True, text=True).stdout.split()
    out = subprocess.run([command("billing-cost-daily"), *days], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout == ""
    assert out.stderr.strip().splitlines()[-1] == (
        "charged 30 day(s): 90 charge(s), total 1000300.00; skipped 0 day(s) already charged"
    )
    first = charges(fees_root)
    out = subprocess.run([command("billing_cost_daily_force"), "-root", str(fees_root.path), *days],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert "re-charged 30 day(s)" in out.stderr
    assert charges(fees_root) == first
    out = subprocess.run([command("billing_cost_daily"), "2009-11-31"], capture_output=True, text=True, env=env)
    assert out.returncode == 2 and "bad day '2009-11-31'" in out.stderr


def load_operator_month(root: Root, tmp_path) -> None:
    """A month as an operator loads it: CSV files through `mbg load`, in load order."""
    files = {
        "accounts": "account,name\na1,Alpha\na2,Beta\na3,Gamma\n",
        "services": "service,name,monthly_fee,daily_fee,tariff\n"
                    "basic,Basic,299.99,,\npremium,Premium,1000000.00,,\n"
                    "kop,Kopeck,0.01,,\ntv,TV,,3.50,\nboth,Both,3000.00,12.34,\n",
        "subscriptions": "account,service,start,stop\n"
                         "a1,basic,2009-10-01,\na2,kop,2009-11-01,\n"
                         "a3,tv,2009-11-10,2009-11-20\na3,both,2009-11-30,\n",
        "schedule": "date,account,action,service,new_service\n"
                    "2009-11-15,a1,switch,basic,premium\n2009-11-25,a2,stop,kop,\n",
    }
    for kind, text in files.items():
        path = write_csv(tmp_path / f"{kind}.csv", text)
        result = mbg(root, "load", kind, str(path))
        assert result.exit_code == 0, result.output


def dumped_totals(root: Root) -> tuple[str, dict[tuple[str, str], Decimal]]:
    result = mbg(root, "dump", "charges")
    assert result.exit_code == 0, result.output
    totals: dict[tuple[str, str], Decimal] = {}
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    for row in rows:
        key = (row["account"], row["service"])
        totals[key] = totals.get(key, Decimal(0)) + Decimal(row["amount"])
    return result.stdout, totals


EXPECTED_NOVEMBER = {
    ("a1", "basic"): Decimal("139.99"),  # days 1-14 of 299.99: floor(14 * 29999 / 30)
    ("a1", "premium"): Decimal("533333.34"),  # days 15-30 of 1000000.00
    ("a2", "kop"): Decimal("0.00"),  # days 1-24 of 0.01: the kopeck falls on the 30th
    ("a3", "tv"): Decimal("35.00"),  # days 10-19 at 3.50 a day
    ("a3", "both"): Decimal("12.34"),  # the daily fee wins over the monthly one
}


def test_operator_month_by_cron_and_by_catch_up(tmp_path):
    """Cron every day (planner, then cost) and a catch-up at the month's end give the same
    charges, to the kopeck, read back with `mbg dump charges`."""
    days = days_of("2009-11")
    daily = make_root(tmp_path / "daily")
    load_operator_month(daily, tmp_path)
    for day in days:
        assert mbg(daily, "planner", day).exit_code == 0
        assert mbg(daily, "cost", day).exit_code == 0
    text, totals = dumped_totals(daily)
    assert totals == EXPECTED_NOVEMBER
    assert "2009-11-15,a1,premium,33333.34\n" in text  # 1500000000 // 30 - 1400000000 // 30
    assert "2009-11-15,a1,basic" not in text

    late = make_root(tmp_path / "late")
    load_operator_month(late, tmp_path)
    assert mbg(late, "planner", "2009-11-30").exit_code == 0
    assert mbg(late, "cost", *days).exit_code == 0
    assert dumped_totals(late) == (text, totals)
    schedule = mbg(late, "dump", "schedule").stdout
    assert schedule.count(",done,") == 2
