"""Helpers of the charges and planner tests: a real MBGROOT with reference rows.

Rows go in with parameterized SQL through db.connect (the unit level); the end-to-end
tests load CSV files with `mbg load` as an operator would.
"""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result

from mbg import db
from mbg.cli import main
from mbg.root import Root, init_root


def make_root(path: Path) -> Root:
    root = Root(path)
    init_root(root)
    return root


def insert(root: Root, table: str, rows: list[tuple]) -> None:
    """Insert rows into a billing.db table (table names are the test's constants)."""
    conn = db.connect(root.billing_db, "billing")
    try:
        with db.write_transaction(conn):
            for row in rows:
                marks = ", ".join("?" * len(row))
                conn.execute(f"INSERT INTO {table} VALUES ({marks})", row)
    finally:
        conn.close()


def query(root: Root, sql: str, params: tuple = ()) -> list[tuple]:
    conn = db.connect(root.billing_db, "billing", readonly=True)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def charges(root: Root) -> list[tuple]:
    return query(root, "SELECT day, account, service, start, amount FROM charges ORDER BY 1, 2, 3, 4")


def subscriptions(root: Root) -> list[tuple]:
    return query(root, "SELECT account, service, start, stop FROM subscriptions ORDER BY 1, 2, 3")


def schedule(root: Root) -> list[tuple]:
    return query(root, "SELECT date, account, action, service, new_service, state, reason "
                       "FROM schedule ORDER BY 1, 2, 3, 4")


def total(root: Root, account: str, service: str, month: str) -> int:
    return query(
        root,
        "SELECT coalesce(sum(amount), 0) FROM charges WHERE account = ? AND service = ? "
        "AND day LIKE ? || '-%'",
        (account, service, month),
    )[0][0]


def mbg(root: Root, *args: str) -> Result:
    """`mbg ARGS --root ROOT` in-process; stdout and stderr kept apart."""
    try:
        runner = CliRunner(mix_stderr=False)  # click 8.1 (Debian 12)
    except TypeError:
        runner = CliRunner()  # click >= 8.2 keeps them apart by itself
    return runner.invoke(main, [*args, "--root", str(root.path)])


def write_csv(path: Path, text: str) -> Path:
    path.write_text(text.lstrip("\n"), encoding="utf-8")
    return path
