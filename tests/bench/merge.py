"""Merge benchmark: the real command, whole process, rows read per second.

Three figures, each beside the ceiling of the same run (SPEC section 12):
- two overlapping datasets merged into an empty target (the SPEC figure);
- one more dataset merged into that target, which then holds 1.75 n rows;
- a folder of two month files merged into an empty folder (one source per target file).
"""

from __future__ import annotations

import os
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


def _merge_seconds(*paths: Path) -> float:
    command = [sys.executable, "-m", "mbg", "dataset", "merge", *map(str, paths)]
    seconds, _ = timed(subprocess.run, command, check=True, capture_output=True)
    return seconds


def _figure(name: str, read_rows: int, seconds: float, ceiling: float) -> Figure:
    value = read_rows / seconds
    return Figure(name, value, "rows/s", ceiling, ">= 0.8 of ceiling", value >= 0.8 * ceiling)


def run(n: int, workdir: Path) -> list[Figure]:
    """Sources of n calls each, overlapping by a quarter; merged by the real command."""
    a, b, c = workdir / "merge-a.db", workdir / "merge-b.db", workdir / "merge-c.db"
    _make(a, 1, n)
    _make(b, n - n // 4 + 1, 2 * n - n // 4)
    _make(c, 2 * n - n // 2 + 1, 3 * n - n // 2)  # overlaps b by a quarter
    target = workdir / "merge-target.db"
    into_empty = _merge_seconds(a, b, target)
    into_filled = _merge_seconds(c, target)  # the target holds 1.75 n calls
    # A folder of month files (links: sources are only read) into an empty folder.
    folder, central = workdir / "host1", workdir / "central"
    folder.mkdir()
    os.link(a, folder / "2009-10-01.db")
    os.link(b, folder / "2009-11-01.db")
    folders = _merge_seconds(folder, central)

    conn = db.connect(a, "dataset", readonly=True)
    rows = conn.execute(
        "SELECT source, calldate, src, dst, channel, dstchannel, duration, billsec, cause, "
        "callid, extra FROM telephony_log"
    ).fetchall()
    conn.close()
    ceiling = ceiling_rows_per_s(rows, workdir)
    return [
        _figure("merge (rows read/s, whole process)", 2 * n, into_empty, ceiling),
        _figure("merge into a 1.75n-row target", n, into_filled, ceiling),
        _figure("merge folder into empty folder", 2 * n, folders, ceiling),
    ]
