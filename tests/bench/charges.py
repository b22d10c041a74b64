"""Charges and planner benchmark: n subscriptions charged for a 30-day month, and n
schedule entries applied by one planner run. SPEC section 12 sets no target for these;
the figures show they are far from being a bottleneck of a nightly cron run."""

from __future__ import annotations

from pathlib import Path

from mbg import charges, db, planner
from mbg.dates import month_days, parse_month
from mbg.root import Root, init_root

from .common import Figure, timed

INSERT_CHARGE = "INSERT INTO charges (day, account, service, start, amount) VALUES (?, ?, ?, ?, ?)"


def _root(path: Path, n: int) -> Root:
    root = Root(path)
    init_root(root)
    conn = db.connect(root.billing_db, "billing")
    with db.write_transaction(conn):
        conn.executemany("INSERT INTO services VALUES (?, '', ?, ?, NULL)",
                         [("monthly", 29999, None), ("daily", None, 350), ("next", 100000, None)])
        conn.execute(
            "WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < ?) "
            "INSERT INTO accounts SELECT printf('a%07d', i), '' FROM seq", (n,))
        conn.execute(
            "INSERT INTO subscriptions SELECT account, "
            "CASE WHEN rowid % 3 = 0 THEN 'daily' ELSE 'monthly' END, '2009-10-01', NULL "
            "FROM (SELECT account, row_number() OVER () AS rowid FROM accounts)")
    conn.close()
    return root


def _ceiling(rows: list[tuple], path: Path) -> float:
    """Raw executemany of the same charge rows into an empty billing.db, one transaction."""
    conn = db.connect(path, "billing", create=True)
    seconds, _ = timed(_insert, conn, rows)
    conn.close()
    return len(rows) / seconds


def _insert(conn, rows) -> None:
    with db.write_transaction(conn):
        conn.executemany(INSERT_CHARGE, rows)


def run(n: int, workdir: Path) -> list[Figure]:
    root = _root(workdir / "root", n)
    days = month_days(parse_month("2009-11"))
    conn = db.connect(root.billing_db, "billing")
    seconds, results = timed(charges.charge_days, conn, days)
    written = sum(r.charges for r in results)
    rows = conn.execute("SELECT day, account, service, start, amount FROM charges").fetchall()
    ceiling = _ceiling(rows, workdir / "ceiling.db")
    figures = [Figure("cost-daily, a month (charge rows/s)", written / seconds, "rows/s", ceiling)]

    # One switch per account, all due: the planner's worst case, a long catch-up.
    entries = min(n, 20_000)
    with db.write_transaction(conn):
        conn.execute(
            "INSERT INTO schedule (date, account, action, service, new_service) "
            "SELECT '2009-11-15', account, 'switch', 'monthly', 'next' FROM subscriptions "
            "WHERE service = 'monthly' LIMIT ?", (entries,))
    count = conn.execute("SELECT count(*) FROM schedule").fetchall()[0][0]
    seconds, outcomes = timed(planner.run_planner, conn, parse_month("2009-11").replace(day=30))
    conn.close()
    assert len(outcomes) == count and all(o.state == "done" for o in outcomes)
    figures.append(Figure("planner (entries applied/s)", count / seconds, "entries/s"))
    return figures
