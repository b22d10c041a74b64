"""Helpers for the rating tests: an MBGROOT loaded through `mbg load`, calls in a dataset."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from click.testing import CliRunner

from mbg.cli import main

from .conftest import INSERT_LOG, make_dataset

HEADERS = {
    "accounts": "account,name",
    "numbers": "number,account,valid_from,valid_to",
    "tariffs": "tariff,prefix,direction,price,first,next,connect_fee,free_seconds,bucket",
    "buckets": "tariff,bucket,seconds",
    "routes": "pattern,tariff",
    "services": "service,name,monthly_fee,daily_fee,tariff",
    "subscriptions": "account,service,start,stop",
}


def mbg(*args: str):
    return CliRunner().invoke(main, [str(a) for a in args])


def setup_root(root: Path, settings: str = "", **kinds: str) -> Path:
    """mbg init, etc/mbg.toml, then `mbg load` of each kind given as CSV lines (no header)."""
    assert mbg("init", "--root", root).exit_code == 0
    (root / "etc" / "mbg.toml").write_text(settings)
    for kind in HEADERS:
        if kind in kinds:
            path = root / f"{kind}.csv"
            path.write_text(HEADERS[kind] + "\n" + kinds[kind].strip() + "\n")
            result = mbg("load", kind, path, "--root", root)
            assert result.exit_code == 0, (kind, result.output)
    return root


def reference(root: Path):
    """The Reference of an MBGROOT's billing.db, as a rating run loads it (2 decimals)."""
    from mbg import db
    from mbg.tariffs import load_reference

    conn = db.connect(root / "data" / "billing.db", "billing", readonly=True)
    try:
        return load_reference(conn, 2, "half-up")
    finally:
        conn.close()


def call(calldate: str, src: str, dst: str, billsec: int, callid: str, *,
         channel: str = "", dstchannel: str = "", source: str = "pbx") -> tuple:
    """A telephony_log content row; ``callid`` names the call in the tests."""
    return (source, calldate, src, dst, channel, dstchannel, billsec + 5, billsec, "16", callid, None)


def dataset_file(root: Path, month: str = "2009-10") -> Path:
    return root / "dataset" / "telephony" / f"{month}-01.db"


def add_calls(root: Path, calls: list[tuple], month: str = "2009-10") -> Path:
    path = dataset_file(root, month)
    if path.exists():
        con = sqlite3.connect(path)
        con.executemany(INSERT_LOG, calls)
        con.commit()
        con.close()
        return path
    return make_dataset(path, calls)


def query(path: Path, sql: str, args=()) -> list[tuple]:
    con = sqlite3.connect(path)
    try:
        return con.execute(sql, args).fetchall()
    finally:
        con.close()


def costs(path: Path) -> dict[str, list[tuple]]:
    """callid -> [(tariff, account, prefix, number, seconds, bucket_seconds, amount)]."""
    out: dict[str, list[tuple]] = {}
    for row in query(path, "SELECT l.callid, c.tariff, c.account, c.prefix, c.number, c.seconds, "
                           "c.bucket_seconds, c.amount FROM telephony_cost c "
                           "JOIN telephony_log l ON l.id = c.log_id ORDER BY l.callid, c.tariff"):
        out.setdefault(row[0], []).append(row[1:])
    return out


def amounts(path: Path, tariff: str | None = None) -> dict[str, int]:
    """callid -> amount (of the one tariff given, else of the only cost row)."""
    out = {}
    for callid, rows in costs(path).items():
        rows = [r for r in rows if tariff is None or r[0] == tariff]
        if rows:
            assert len(rows) == 1, (callid, rows)
            out[callid] = rows[0][6]
    return out


def unrated(path: Path) -> dict[str, list[tuple[str, str]]]:
    """callid -> [(tariff, reason)]."""
    out: dict[str, list] = {}
    for callid, tariff, reason in query(
        path, "SELECT l.callid, u.tariff, u.reason FROM telephony_unrated u "
              "JOIN telephony_log l ON l.id = u.log_id ORDER BY l.callid, u.tariff"):
        out.setdefault(callid, []).append((tariff, reason))
    return out


def results(path: Path) -> tuple[list, list, list]:
    """Every result row of a dataset, keyed by call content (not id), sorted."""
    key = "l.calldate, l.src, l.dst, l.callid"
    return (
        query(path, f"SELECT {key}, c.tariff, c.account, c.direction, c.prefix, c.number, "
                    "c.seconds, c.bucket_seconds, c.amount FROM telephony_cost c "
                    f"JOIN telephony_log l ON l.id = c.log_id ORDER BY {key}, c.tariff"),
        query(path, f"SELECT {key}, u.tariff, u.reason FROM telephony_unrated u "
                    f"JOIN telephony_log l ON l.id = u.log_id ORDER BY {key}, u.tariff"),
        query(path, "SELECT * FROM telephony_counter ORDER BY 1, 2, 3"),
    )
