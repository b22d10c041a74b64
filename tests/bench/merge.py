"""Merge benchmark: two overlapping datasets merged into an empty target."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from mbg import db

from .common import Figure, ceiling_rows_per_s, timed

GENERATE = (
    "WITH RECURSIVE seq(i) AS (SELECT ? UNION ALL SELECT i + 1 FROM seq WHERE i < ?) "
    "INSERT INTO telephony_log (source, calldate, src, dst, channel, dstchannel, duration, "
    "billsec, cause, callid) "
    "SELECT 'gw' || (i % 3), printf('2009-10-%02d %02d:%02d:%02d', 1 + i % 28, i / 3600 % 24, "
    "i / 60 % 60, i % 60), printf('4951%07d', i * 37 % 9999991), "
    "printf('8%010d', i * 7919 % 9999999967), printf('C%07d', i % 5000), printf('T%03d', i % 97), "
    "i % 700, i % 600, '16', printf('%08X %08X/answer/Telephony', i, i * 31) FROM seq"
)


def _make(path: Path, first: int, last: int) -> None:
    conn = db.connect(path, "dataset", create=True)
    with db.write_transaction(conn):
        conn.execute(GENERATE, (first, last))
    conn.close()


def run(n: int, workdir: Path) -> list[Figure]:
    """Sources of n calls each, overlapping by a quarter; merged by the real command."""
    a, b = workdir / "merge-a.db", workdir / "merge-b.db"
    _make(a, 1, n)
    _make(b, n - n // 4 + 1, 2 * n - n // 4)
    target = workdir / "merge-target.db"
    command = [sys.executable, "-m", "mbg", "dataset", "merge", str(a), str(b), str(target)]
    seconds, _ = timed(subprocess.run, command, check=True, capture_output=True)
    read_rows = 2 * n
    conn = db.connect(a, "dataset", readonly=True)
    rows = conn.execute(
        "SELECT source, calldate, src, dst, channel, dstchannel, duration, billsec, cause, "
        "callid, extra FROM telephony_log"
    ).fetchall()
    conn.close()
    ceiling = ceiling_rows_per_s(rows, workdir)
    value = read_rows / seconds
    return [
        Figure("merge (rows read/s, whole process)", value, "rows/s", ceiling,
               ">= 0.8 of ceiling", value >= 0.8 * ceiling)
    ]
