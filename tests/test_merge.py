"""telephony-dataset-merge on real files: dedup, ids, is_new, safety."""

from __future__ import annotations

import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from mbg import dataset as ds
from mbg import db
from mbg.cli import main
from mbg.cli.dataset import merge_command

from .conftest import call_rows, command, log_rows, make_big_dataset, make_dataset


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def content_key(row):
    """The UNIQUE key of a content row (source, calldate, ..., callid), in order."""
    return row[:8] + row[9:10]


def merge(*args):
    result = CliRunner().invoke(merge_command, [str(a) for a in args])
    return result


@pytest.fixture
def overlapping(tmp_path):
    """Two hosts' datasets: 5,000 calls each, 2,000 of them collected by both."""
    a = call_rows(5000, seed=1)
    b = a[3000:] + call_rows(3000, seed=2)
    host1 = make_dataset(tmp_path / "host1" / "2009-10-01.db", a)
    host2 = make_dataset(tmp_path / "host2" / "2009-10-01.db", b)
    return host1, host2, a, b


def test_merge_overlapping_datasets(tmp_path, overlapping):
    host1, host2, a, b = overlapping
    target = tmp_path / "central" / "2009-10-01.db"
    make_dataset(target, a[:1000])
    # The target's rows are rated already: a merge must not touch them.
    con = sqlite3.connect(target)
    con.execute("UPDATE telephony_log SET is_new = 0")
    con.execute("INSERT INTO telephony_cost VALUES (1, 't', 'acc', '', '8', '8', 60, 0, 100, 'plan')")
    con.commit()
    con.close()
    before = log_rows(target)
    src_digests = digest(host1), digest(host2)

    result = merge(host1, host2, target)
    assert result.exit_code == 0, result.output
    assert "read 10000, stored 7000, duplicates 3000" in result.output

    rows = log_rows(target)
    assert len(rows) == 1000 + 4000 + 3000
    assert rows[:1000] == before  # ids and state of existing rows kept
    content = [r[1:12] for r in rows]
    assert len(set(content)) == len(content)
    assert set(content) == set(a) | set(b)
    assert all(r[12] == 1 for r in rows[1000:])  # added rows are new, to be rated
    con = sqlite3.connect(target)
    assert con.execute("SELECT count(*) FROM telephony_cost").fetchone()[0] == 1
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
    assert (digest(host1), digest(host2)) == src_digests


def test_rating_results_and_ids_are_not_copied(tmp_path):
    rows = call_rows(50)
    src = make_dataset(tmp_path / "src.db", rows)
    con = sqlite3.connect(src)
    con.execute("DELETE FROM telephony_log WHERE id <= 10")  # gaps in source ids
    con.execute("UPDATE telephony_log SET is_new = 0")
    con.execute("INSERT INTO telephony_cost VALUES (20, 't', 'acc', '', '8', '8', 60, 0, 100, 'plan')")
    con.execute("INSERT INTO telephony_counter VALUES ('acc', 't', 'b', 60)")
    con.commit()
    con.close()
    target = tmp_path / "dst.db"
    assert merge(src, target).exit_code == 0
    got = log_rows(target)
    assert [r[0] for r in got] == list(range(1, 41))
    # New ids follow the content key's order (the order the merge inserts in).
    assert [r[1:12] for r in got] == sorted(rows[10:], key=content_key)
    assert all(r[12] == 1 for r in got)
    con = sqlite3.connect(target)
    for table in ("telephony_cost", "telephony_unrated", "telephony_counter"):
        assert con.execute(f"SELECT count(*) FROM {table}").fetchone()[0] == 0


def test_second_merge_changes_nothing(tmp_path, overlapping):
    host1, host2, _, _ = overlapping
    target = tmp_path / "t.db"
    assert merge(host1, host2, target).exit_code == 0
    first = log_rows(target)
    result = merge(host1, host2, target)
    assert result.exit_code == 0
    assert "stored 0, duplicates 10000" in result.output
    assert log_rows(target) == first


def test_merge_folders_month_by_month(tmp_path):
    src = tmp_path / "host1"
    make_dataset(src / "2009-10-01.db", call_rows(300, seed=1, month="2009-10"))
    make_dataset(src / "2009-11-01.db", call_rows(200, seed=2, month="2009-11"))
    (src / "notes.txt").write_text("not a dataset")
    dst = tmp_path / "central"
    make_dataset(dst / "2009-10-01.db", call_rows(100, seed=1, month="2009-10"))
    result = CliRunner().invoke(main, ["dataset", "merge", str(src), str(dst)])
    assert result.exit_code == 0, result.output
    assert "read 500, stored 400, duplicates 100" in result.output
    assert len(log_rows(dst / "2009-10-01.db")) == 300
    assert len(log_rows(dst / "2009-11-01.db")) == 200
    assert sorted(p.name for p in dst.glob("*.db")) == ["2009-10-01.db", "2009-11-01.db"]


def test_foreign_source_is_refused_and_target_unchanged(tmp_path):
    good = make_dataset(tmp_path / "good.db", call_rows(100))
    foreign = tmp_path / "foreign.db"
    con = sqlite3.connect(foreign)
    con.execute("CREATE TABLE telephony_log (x)")
    con.commit()
    con.close()
    target = make_dataset(tmp_path / "t.db", call_rows(10, seed=9))
    before = digest(target)
    result = merge(good, foreign, target)
    assert result.exit_code == 2
    assert "foreign.db: not an mbg file" in result.output
    assert digest(target) == before
    assert len(log_rows(target)) == 10


def test_foreign_target_is_refused(tmp_path):
    good = make_dataset(tmp_path / "good.db", call_rows(10))
    target = tmp_path / "t.db"
    target.write_bytes(b"SQLite format 3\x00" + b"\x00" * 200)
    before = digest(target)
    result = merge(good, target)
    assert result.exit_code == 2
    assert digest(target) == before


def test_bad_arguments_exit_2(tmp_path):
    assert merge(tmp_path / "t.db").exit_code == 2
    assert merge(tmp_path / "missing.db", tmp_path / "t.db").exit_code == 2
    assert not (tmp_path / "t.db").exists()
    d = make_dataset(tmp_path / "d.db", call_rows(3))
    assert merge(d, d).exit_code == 2


def test_merge_while_a_collector_writes_the_target(tmp_path):
    """A writer inserting in short transactions and a merge run together; neither fails."""
    src = make_dataset(tmp_path / "src.db", call_rows(200_000, seed=5))
    target = make_dataset(tmp_path / "t.db", [])
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(target)], stderr=subprocess.PIPE, text=True
    )
    time.sleep(0.3)
    result = subprocess.run(
        [command("telephony-dataset-merge"), str(src), str(target)],
        capture_output=True, text=True, timeout=120,
    )
    _, err = writer.communicate(timeout=120)
    assert writer.returncode == 0, err
    assert result.returncode == 0, result.stderr
    assert len(log_rows(target)) == 200_000 + 400


WRITER = """
import sys, time
from mbg import db
from tests.conftest import INSERT_LOG, call_rows
conn = db.connect(sys.argv[1], "dataset")
rows = call_rows(400, seed=77)
for i in range(0, 400, 10):
    with db.write_transaction(conn):
        conn.executemany(INSERT_LOG, rows[i:i + 10])
    time.sleep(0.02)
"""


def test_sigkill_in_the_middle_leaves_target_as_it_was(tmp_path):
    src = make_big_dataset(tmp_path / "src.db", 1_500_000)
    target = make_dataset(tmp_path / "t.db", call_rows(1000, seed=4))
    before = log_rows(target)
    wal = target.with_name("t.db-wal")
    proc = subprocess.Popen([command("telephony-dataset-merge"), str(src), str(target)])
    deadline = time.monotonic() + 60
    # Kill once the merge has written a good part of its transaction to the WAL.
    while time.monotonic() < deadline:
        if wal.exists() and wal.stat().st_size > 20_000_000:
            break
        assert proc.poll() is None, "merge finished before it could be killed"
        time.sleep(0.005)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert log_rows(target) == before
    con = sqlite3.connect(target)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
    # And the merge, run again, completes.
    result = merge(src, target)
    assert result.exit_code == 0
    assert len(log_rows(target)) == 1000 + 1_500_000


def test_more_sources_than_one_transaction_attaches(tmp_path):
    """Eleven overlapping sources: two transactions (SQLite attaches ten files at most);
    no call is stored twice, within a group or across groups."""
    rows = call_rows(1100, seed=3)
    sources = [
        make_dataset(tmp_path / f"host{i}.db", rows[i * 100 : i * 100 + 150]) for i in range(11)
    ]
    target = make_dataset(tmp_path / "t.db", rows[:50])
    done = []
    result = ds.merge_files(sources, target, on_progress=done.append)
    assert done == sources
    assert (result.read, result.stored, result.duplicates) == (11 * 150 - 50, 1050, 550)
    got = log_rows(target)
    assert [r[0] for r in got] == list(range(1, 1101))
    assert sorted(r[1:12] for r in got) == sorted(rows)


def test_merge_sorts_each_source_rather_than_walking_its_index(tmp_path):
    """The plan SQLite runs: every source scanned in stored order and sorted by the key
    (a walk of the source's unique index costs a random table lookup per row)."""
    a = make_dataset(tmp_path / "a.db", call_rows(10, seed=1))
    b = make_dataset(tmp_path / "b.db", call_rows(10, seed=2))
    conn = db.connect(tmp_path / "t.db", "dataset", create=True)
    for alias, path in (("src0", a), ("src1", b)):
        conn.execute(f"ATTACH DATABASE ? AS {alias}", (db.file_uri(path, readonly=True),))
    for aliases in (["src0"], ["src0", "src1"]):
        plan = [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + ds.merge_sql(aliases))]
        assert [p for p in plan if p.startswith("SCAN")] == [
            f"SCAN {alias}.telephony_log" for alias in aliases
        ]
        assert plan.count("USE TEMP B-TREE FOR ORDER BY") == len(aliases)
    conn.close()



def test_source_of_a_newer_schema_is_refused_untouched(tmp_path):
    good = make_dataset(tmp_path / "good.db", call_rows(100))
    newer = make_dataset(tmp_path / "newer.db", call_rows(100, seed=2))
    con = sqlite3.connect(newer)
    con.execute(f"PRAGMA user_version = {db.SCHEMA_VERSIONS['dataset'] + 1}")
    con.commit()
    con.close()
    target = make_dataset(tmp_path / "t.db", call_rows(10, seed=9))
    before = digest(target), digest(newer)
    result = merge(good, newer, target)
    assert result.exit_code == 2
    assert "newer.db: schema version" in result.output
    assert (digest(target), digest(newer)) == before
