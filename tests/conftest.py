"""Shared fixtures: real dataset files in tmp_path and the installed commands."""

from __future__ import annotations

import os
import random
import shutil
import sys
from pathlib import Path

import pytest

from mbg import db

BIN = Path(sys.executable).parent


def command(name: str) -> str:
    """The installed console script ``name`` (the venv's bin, else PATH)."""
    path = BIN / name
    if path.exists():
        return str(path)
    found = shutil.which(name)
    if not found:
        pytest.fail(f"console script {name} is not installed: pip install -e .")
    return found


def call_rows(n: int, seed: int = 1, month: str = "2009-10", source: str = "gw1") -> list[tuple]:
    """``n`` distinct, reproducible telephony_log rows of a month (content columns only)."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        day = 1 + i % 28
        sec = (i * 7919) % 86400
        rows.append(
            (
                source,
                f"{month}-{day:02d} {sec // 3600:02d}:{sec // 60 % 60:02d}:{sec % 60:02d}",
                f"49512{rng.randrange(10000, 99999)}",
                f"8{rng.randrange(10**9, 10**10)}",
                f"C{rng.randrange(100000):05d}",
                "",
                rng.randrange(0, 600),
                rng.randrange(0, 500),
                "16",
                f"id{seed}-{i}",
                None,
            )
        )
    return rows


INSERT_LOG = (
    "INSERT INTO telephony_log (source, calldate, src, dst, channel, dstchannel, duration, "
    "billsec, cause, callid, extra) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
)


def make_dataset(path: Path, rows: list[tuple]) -> Path:
    """A real dataset file holding ``rows``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    conn = db.connect(path, "dataset", create=True)
    with db.write_transaction(conn):
        conn.executemany(INSERT_LOG, rows)
    conn.close()
    return path


def make_big_dataset(path: Path, n: int) -> Path:
    """A dataset of ``n`` distinct calls generated inside SQLite (fast, for large tests)."""
    conn = db.connect(path, "dataset", create=True)
    with db.write_transaction(conn):
        conn.execute(
            "WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < ?) "
            "INSERT INTO telephony_log (source, calldate, src, dst, channel, duration, billsec, callid) "
            "SELECT 'big', printf('2009-10-%02d %02d:%02d:%02d', 1 + i % 28, i / 3600 % 24, "
            "i / 60 % 60, i % 60), printf('4951%07d', i), printf('8495%07d', i * 7 % 9999991), "
            "'C01', i % 600, i % 300, 'big-' || i FROM seq",
            (n,),
        )
    conn.close()
    return path


def log_rows(path: Path) -> list[tuple]:
    """All telephony_log rows as (id, content..., is_new), in id order."""
    conn = db.connect(path, "dataset", readonly=True)
    try:
        return conn.execute(
            "SELECT id, source, calldate, src, dst, channel, dstchannel, duration, billsec, "
            "cause, callid, extra, is_new FROM telephony_log ORDER BY id"
        ).fetchall()
    finally:
        conn.close()


@pytest.fixture
def env_root(tmp_path, monkeypatch) -> Path:
    """An MBGROOT in tmp_path, set in the environment (for subprocesses too)."""
    root = tmp_path / "mbgroot"
    monkeypatch.setenv("MBGROOT", str(root))
    monkeypatch.setenv("TZ", "Europe/Moscow")
    return root


def run_env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(extra)
    return env
