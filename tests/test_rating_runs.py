"""Incremental and force runs: never touching rated calls, counters that continue, force
atomic under SIGKILL, and rating beside a real concurrent collector process."""

from __future__ import annotations

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

from mbg import db
from mbg.rating import force_month, rate_month
from mbg.tariffs import load_reference

from .conftest import command, run_env
from .rating_helpers import (add_calls, amounts, call, costs, mbg, query, reference, results,
                             setup_root)

REFERENCE = dict(
    accounts="\n".join(f"A{i},Customer {i}" for i in range(10)),
    numbers="\n".join(f"49500000{i},A{i},2009-01-01," for i in range(10)),
    tariffs="""
T,,other,0.50,1,1,,,
T,7,long,1.10,30,6,0.05,3,
T,7495,city,0.45,60,60,,,mins
T,8,intl,2.35,1,1,0.10,,intl
P,,,0.12,1,1,,,
P,7495,,0.07,60,60,,,pool
""",
    buckets="T,mins,600\nT,intl,90\nP,pool,3000",
    routes="C01*,P",
    services="phone,Phone,,,T",
    subscriptions="\n".join(f"A{i},phone,2009-01-01," for i in range(8)),
)


def random_calls(n: int, seed: int) -> list[tuple]:
    """Calls of October in calldate order: known and unknown numbers, every prefix, buckets."""
    rng = random.Random(seed)
    calls = []
    for i in range(n):
        sec = i * (30 * 86400 // n)
        day, rest = divmod(sec, 86400)
        calldate = f"2009-10-{day + 1:02d} {rest // 3600:02d}:{rest // 60 % 60:02d}:{rest % 60:02d}"
        src = rng.choice([f"49500000{rng.randrange(10)}", "4990000000"])
        dst = rng.choice(["7495", "7812", "81", "3", ""]) + str(rng.randrange(10**6))
        billsec = rng.choice([0, 1, 3, 29, 31, 60, 61, rng.randrange(600)])
        calls.append(call(calldate, src, dst, billsec, f"c{seed}-{i}",
                          dstchannel=rng.choice(["C0100001", "C0200002", ""])))
    return calls


def test_incremental_in_calldate_order_equals_force(tmp_path):
    root = setup_root(tmp_path / "r", **REFERENCE)
    calls = random_calls(3000, seed=7)
    ref_conn = db.connect(root / "data" / "billing.db", "billing", readonly=True)
    ref = load_reference(ref_conn, 2, "half-up")
    ref_conn.close()
    # calls arrive in six parts; each part rated incrementally in small batches
    for part in range(6):
        path = add_calls(root, calls[part * 500:(part + 1) * 500])
        conn = db.connect(path, "dataset")
        result = rate_month(conn, ref, batch_size=97)
        conn.close()
        assert result.calls == 500
    incremental = results(path)
    assert len(incremental[0]) > 1500 and incremental[2]  # costs and counters in use
    # a used-up bucket is capped at its size, and some calls paid part of their seconds
    assert ("A1", "T", "intl", 90) in incremental[2]
    assert any(0 < r[10] < r[9] for r in incremental[0])
    conn = db.connect(path, "dataset")
    forced = force_month(conn, ref, chunk_size=333)
    conn.close()
    assert forced.calls == 3000
    assert results(path) == incremental
    # the command line gives the same again
    assert mbg("rate", "--force", "2009-10", "--root", root).exit_code == 0
    assert results(path) == incremental


def _new_calls_index(path) -> list[tuple]:
    return query(path, "SELECT sql FROM sqlite_master WHERE name = 'telephony_log_new'")


def test_a_backlog_is_rated_in_one_transaction_with_the_same_results(tmp_path):
    """More than a batch of new calls and more than half the month new: rate_month rates
    them in one transaction (rating._rate_backlog), keeping the costs and counters of the
    calls rated before; the results are those of batches, and of force."""
    calls = random_calls(4000, seed=21)
    paths = []
    for name in ("batches", "backlog"):
        root = setup_root(tmp_path / name, **REFERENCE)
        path = add_calls(root, calls[:1000])
        ref = reference(root)
        conn = db.connect(path, "dataset")
        rate_month(conn, ref)
        add_calls(root, calls[1000:])  # 3,000 new of 4,000
        before = query(path, "SELECT count(*), sum(amount) FROM telephony_cost")[0]
        assert before[0] > 0
        result = rate_month(conn, ref, batch_size=400, backlog=name == "backlog")
        conn.close()
        assert result.calls == 3000
        after = query(path, "SELECT count(*), sum(amount) FROM telephony_cost")[0]
        assert (result.costs, result.amount) == (after[0] - before[0], after[1] - before[1])
        assert query(path, "SELECT count(*) FROM telephony_log WHERE is_new = 1") == [(0,)]
        paths.append((root, path, result))
    (_, batches, by_batches), (root, backlog, by_backlog) = paths
    assert results(backlog) == results(batches)
    assert (by_backlog.costs, by_backlog.amount, by_backlog.unrated) == \
        (by_batches.costs, by_batches.amount, by_batches.unrated)
    # the index of new calls, dropped while is_new was cleared, is there again and works
    assert _new_calls_index(backlog) == _new_calls_index(batches) != []
    add_calls(root, [call("2009-10-31 23:59:00", "495000001", "7495123", 61, "late")])
    conn = db.connect(backlog, "dataset")
    assert rate_month(conn, reference(root)).calls == 1
    conn.close()
    # force straight after, and force of a copy never rated (read through the index of
    # new calls, no sort), give the same again
    assert mbg("rate", "--force", "2009-10", "--root", root).exit_code == 0
    forced = results(backlog)
    with sqlite3.connect(backlog) as con:
        con.execute("UPDATE telephony_log SET is_new = 1")
    con.close()
    assert mbg("rate", "--force", "2009-10", "--root", root).exit_code == 0
    assert results(backlog) == forced
    assert _new_calls_index(backlog) == _new_calls_index(batches)


def test_incremental_never_touches_rated_calls_and_counters_continue(tmp_path):
    root = setup_root(tmp_path / "r", accounts="A1,x", numbers="111,A1,2009-01-01,",
                      tariffs="T,,,0.60,60,60,,,m", buckets="T,m,100",
                      services="phone,,,,T", subscriptions="A1,phone,2009-01-01,")
    path = add_calls(root, [call("2009-10-01 10:00:00", "111", "1", 30, "first")])
    assert mbg("rate", "2009-10", "--root", root).exit_code == 0
    assert costs(path)["first"][0][4:] == (60, 60, 0)  # 60 s from the bucket, 40 left
    # the price changes; the rated call keeps its cost, the next one uses the rest of the bucket
    (root / "t.csv").write_text("tariff,prefix,direction,price,first,next,connect_fee,free_seconds,"
                                "bucket\nT,,,1.20,60,60,,,m\n")
    assert mbg("load", "tariffs", root / "t.csv", "--root", root).exit_code == 0
    add_calls(root, [call("2009-10-02 10:00:00", "111", "1", 90, "second")])
    result = mbg("rate", "2009-10", "--root", root)
    assert "rated 1 calls" in result.output
    # second: 120 s, 40 left in the bucket, 80 s at 1.20 = 1.60
    assert costs(path) == {"first": [("T", "A1", "", "1", 60, 60, 0)],
                           "second": [("T", "A1", "", "1", 120, 40, 160)]}
    assert query(path, "SELECT * FROM telephony_counter") == [("A1", "T", "m", 100)]
    # force re-rates both at the new price: first 60 s from the bucket, second 40 + 80 paid
    assert mbg("rate", "--force", "2009-10", "--root", root).exit_code == 0
    assert amounts(path) == {"first": 0, "second": 160}


def test_a_plan_with_two_buckets_keeps_drawing_on_the_one_left(tmp_path):
    """A call priced under a plan tariff and a route tariff, each with its bucket: once the
    route's bucket is used up, later calls (in later chunks of a force, which remembers the
    plans whose buckets are all used up) still draw on the plan's."""
    root = setup_root(tmp_path / "r", accounts="A1,x", numbers="111,A1,2009-01-01,",
                      tariffs="T,,,0.60,1,1,,,a\nP,,,0.30,1,1,,,b", buckets="T,a,100\nP,b,30",
                      routes="C01*,P", services="phone,,,,T", subscriptions="A1,phone,2009-01-01,")
    path = add_calls(root, [call(f"2009-10-0{d} 10:00:00", "111", "1", 20, f"c{d}",
                                 dstchannel="C0100001") for d in range(1, 7)])
    ref = reference(root)
    # P: 30 s in its bucket, then 0.30 a minute; T: 100 s, then 0.60 a minute
    expected = {"c1": [("P", "A1", "", "1", 20, 20, 0), ("T", "A1", "", "1", 20, 20, 0)],
                "c2": [("P", "A1", "", "1", 20, 10, 5), ("T", "A1", "", "1", 20, 20, 0)],
                "c3": [("P", "A1", "", "1", 20, 0, 10), ("T", "A1", "", "1", 20, 20, 0)],
                "c4": [("P", "A1", "", "1", 20, 0, 10), ("T", "A1", "", "1", 20, 20, 0)],
                "c5": [("P", "A1", "", "1", 20, 0, 10), ("T", "A1", "", "1", 20, 20, 0)],
                "c6": [("P", "A1", "", "1", 20, 0, 10), ("T", "A1", "", "1", 20, 0, 20)]}
    conn = db.connect(path, "dataset")
    force_month(conn, ref, chunk_size=1)
    assert costs(path) == expected
    force_month(conn, ref, chunk_size=2)
    assert costs(path) == expected
    # in batches (no memory of used-up buckets between them) the same
    conn.execute("DELETE FROM telephony_cost; DELETE FROM telephony_counter; "
                 "UPDATE telephony_log SET is_new = 1")
    rate_month(conn, ref, batch_size=1, backlog=False)
    conn.close()
    assert costs(path) == expected
    assert query(path, "SELECT * FROM telephony_counter ORDER BY tariff") == [
        ("A1", "P", "b", 30), ("A1", "T", "a", 100)]


def test_a_run_with_nothing_new_does_not_read_the_reference_data(tmp_path):
    """cron every 30 s: with no new call the run only says so (it does not load 20,000
    rates for nothing); with one, the reference data is read and checked as always."""
    root = setup_root(tmp_path / "r", accounts="A1,x", numbers="111,A1,2009-01-01,",
                      tariffs="T,,,0.60,60,60,,,", services="phone,,,,T",
                      subscriptions="A1,phone,2009-01-01,")
    path = add_calls(root, [call("2009-10-01 10:00:00", "111", "1", 30, "first")])
    assert mbg("rate", "2009-10", "--root", root).exit_code == 0
    # the reference data goes bad behind mbg's back: a rate names a bucket never defined
    with sqlite3.connect(root / "data" / "billing.db") as con:
        con.execute("UPDATE tariffs SET bucket = 'gone'")
    con.close()
    result = mbg("rate", "2009-10", "--root", root)
    assert result.exit_code == 0, result.output
    assert "rated 0 calls" in result.output
    add_calls(root, [call("2009-10-02 10:00:00", "111", "1", 90, "second")])
    result = mbg("rate", "2009-10", "--root", root)
    assert result.exit_code == 2 and "names bucket 'gone'" in result.output
    assert query(path, "SELECT count(*) FROM telephony_log WHERE is_new = 1") == [(1,)]


def test_late_call_is_placed_by_force(tmp_path):
    root = setup_root(tmp_path / "r", accounts="A1,x", numbers="111,A1,2009-01-01,",
                      tariffs="T,,,0.60,60,60,,,m", buckets="T,m,60",
                      services="phone,,,,T", subscriptions="A1,phone,2009-01-01,")
    path = add_calls(root, [call("2009-10-05 10:00:00", "111", "1", 60, "later")])
    assert mbg("rate", "2009-10", "--root", root).exit_code == 0
    add_calls(root, [call("2009-10-01 10:00:00", "111", "1", 60, "earlier (merged late)")])
    assert mbg("rate", "2009-10", "--root", root).exit_code == 0
    assert amounts(path) == {"later": 0, "earlier (merged late)": 60}
    assert mbg("rate", "--force", "2009-10", "--root", root).exit_code == 0
    assert amounts(path) == {"later": 60, "earlier (merged late)": 0}


def _fill_big(root, n: int):
    path = add_calls(root, random_calls(10, seed=1))
    con = db.connect(path, "dataset")
    with db.write_transaction(con):
        con.execute(
            "WITH RECURSIVE seq(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM seq WHERE i < ?) "
            "INSERT INTO telephony_log (source, calldate, src, dst, channel, dstchannel, duration, "
            "billsec, callid) SELECT 'big', printf('2009-10-%02d %02d:%02d:%02d', 1 + i % 28, "
            "i / 3600 % 24, i / 60 % 60, i % 60), printf('49500000%d', i % 10), "
            "printf('7495%07d', i * 7 % 9999991), '', 'C01', i % 600, i % 300, 'big-' || i FROM seq",
            (n,))
    con.close()
    return path


def _fingerprint(path) -> tuple:
    """A cheap summary of every result row of a big dataset (a full sort is slow)."""
    return (
        query(path, "SELECT count(*), sum(amount), sum(log_id * (amount + 7 * seconds)), "
                    "sum(bucket_seconds), sum(length(tariff) * log_id) FROM telephony_cost"),
        query(path, "SELECT count(*), sum(log_id * length(reason)) FROM telephony_unrated"),
        query(path, "SELECT * FROM telephony_counter ORDER BY 1, 2, 3"),
        query(path, "SELECT sum(is_new) FROM telephony_log"),
    )


def _write_locked(path) -> bool:
    con = sqlite3.connect(path, timeout=0, isolation_level=None)
    try:
        con.execute("BEGIN IMMEDIATE")
        con.execute("ROLLBACK")
        return False
    except sqlite3.OperationalError:
        return True
    finally:
        con.close()


def _kill_inside_its_transaction(args: list[str], env: dict, path, delay: float) -> None:
    """Start a rating process, wait until it holds the write lock of ``path`` (it is inside
    its transaction), wait ``delay`` more and SIGKILL it."""
    proc = subprocess.Popen(args, env=env, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while not _write_locked(path):
        assert proc.poll() is None, "the run finished before it could be killed"
        assert time.monotonic() < deadline
        time.sleep(0.001)
    time.sleep(delay)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL


def test_force_killed_at_any_instant_leaves_previous_results(tmp_path):
    root = setup_root(tmp_path / "r", **REFERENCE)
    path = _fill_big(root, 100_000)
    assert mbg("rate", "2009-10", "--root", root).exit_code == 0
    before = _fingerprint(path)
    # a new price: a completed force would change every amount
    (root / "t.csv").write_text("tariff,prefix,direction,price,first,next,connect_fee,free_seconds,"
                                "bucket\nT,7495,city,9.99,1,1,,,\nP,7495,,5.55,1,1,,,\n")
    assert mbg("load", "tariffs", root / "t.csv", "--root", root).exit_code == 0
    for delay in (0.0, 0.2):
        _kill_inside_its_transaction([command("telephony-rating-monthly-force"), "2009-10"],
                                     run_env(MBGROOT=str(root)), path, delay)
        assert _fingerprint(path) == before
        assert query(path, "PRAGMA integrity_check") == [("ok",)]
    result = subprocess.run([command("telephony-rating-monthly-force"), "2009-10"],
                            env=run_env(MBGROOT=str(root)), capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert _fingerprint(path) != before


WRITER = r"""
import sys
from mbg import db
path, parts, per = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
sql = ("INSERT INTO telephony_log (source, calldate, src, dst, channel, dstchannel, duration, "
       "billsec, callid) VALUES (?,?,?,?,?,?,?,?,?)")
conn = db.connect(path, "dataset", create=True)
n = 0
for part in range(parts):
    rows = []
    for _ in range(per):
        n += 1
        s = n * 7
        calldate = "2009-10-%02d %02d:%02d:%02d" % (1 + s // 86400, s // 3600 % 24, s // 60 % 60, s % 60)
        rows.append(("w", calldate, "49500000%d" % (n % 10), "7495%07d" % n, "", "C01", 70, n % 200, "w%d" % n))
    with db.write_transaction(conn):
        conn.executemany(sql, rows)
print(n)
"""


def test_rating_beside_a_concurrent_collector(tmp_path):
    root = setup_root(tmp_path / "r", **REFERENCE)
    path = root / "dataset" / "telephony" / "2009-10-01.db"
    db.connect(path, "dataset", create=True).close()
    env = run_env(MBGROOT=str(root))
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path), "60", "200"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    runs = 0
    while writer.poll() is None or runs < 3:
        result = subprocess.run([command("telephony-rating-monthly"), "2009-10"], env=env,
                                capture_output=True, text=True)
        assert result.returncode == 0, result.stderr
        runs += 1
    out, err = writer.communicate()
    assert writer.returncode == 0, err
    assert int(out) == 12_000
    assert query(path, "SELECT count(*), sum(is_new) FROM telephony_log") == [(12_000, 0)]
    answered = query(path, "SELECT count(*) FROM telephony_log WHERE billsec > 0")[0][0]
    # each answered call: the route tariff P, and the plan tariff T but for A8 and A9 (no plan)
    expected_rows = query(path, "SELECT sum(CASE WHEN substr(src, -1) IN ('8', '9') THEN 1 "
                                "ELSE 2 END) FROM telephony_log WHERE billsec > 0")[0][0]
    assert query(path, "SELECT count(DISTINCT log_id), count(*) FROM telephony_cost") == [
        (answered, expected_rows)]
    incremental = results(path)
    assert mbg("rate", "--force", "2009-10", "--root", root).exit_code == 0
    assert results(path) == incremental  # arrived in calldate order: the same as force


RATER = r"""
import sys
from mbg import db
from mbg.rating import rate_month
from mbg.tariffs import load_reference
billing = db.connect(sys.argv[1], "billing", readonly=True)
ref = load_reference(billing, 2, "half-up")
conn = db.connect(sys.argv[2], "dataset")
if len(sys.argv) > 3:  # start together: wait for the go file
    import os, time
    while not os.path.exists(sys.argv[3]):
        time.sleep(0.001)
print(rate_month(conn, ref, batch_size=3000, backlog=False).calls)
"""


BACKLOG_RATER = RATER.replace("batch_size=3000, backlog=False", "batch_size=20_000")


def test_a_backlog_killed_at_any_instant_leaves_the_month_as_it_was(tmp_path):
    """The backlog path drops the index of new calls inside its transaction: killed at
    any instant, the month is as before, index included."""
    root = setup_root(tmp_path / "r", **REFERENCE)
    path = _fill_big(root, 100_000)  # every call new: five batches, so a backlog
    before = _fingerprint(path), _new_calls_index(path)
    args = [sys.executable, "-c", BACKLOG_RATER, str(root / "data" / "billing.db"), str(path)]
    for delay in (0.0, 0.3):
        _kill_inside_its_transaction(args, run_env(), path, delay)
        assert (_fingerprint(path), _new_calls_index(path)) == before
        assert query(path, "PRAGMA integrity_check") == [("ok",)]
    done = subprocess.run(args, env=run_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) == 100_010
    assert query(path, "SELECT sum(is_new) FROM telephony_log") == [(0,)]
    assert _new_calls_index(path) == before[1]


def test_two_incremental_runs_at_once_rate_each_call_once(tmp_path):
    root = setup_root(tmp_path / "r", **REFERENCE)
    path = add_calls(root, random_calls(30_000, seed=11))
    env = run_env(MBGROOT=str(root))
    go = tmp_path / "go"
    args = [sys.executable, "-c", RATER, str(root / "data" / "billing.db"), str(path), str(go)]
    procs = [subprocess.Popen(args, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    time.sleep(0.5)  # both loaded and waiting
    go.touch()
    outs = [p.communicate() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outs
    counts = [int(out) for out, _ in outs]
    assert sum(counts) == 30_000  # every call rated by exactly one run
    assert min(counts) > 0, counts  # each run gets the lock while the other rates a batch
    # counters hold exactly the bucket seconds of the cost rows: nothing counted twice
    assert query(path, "SELECT sum(seconds) FROM telephony_counter") == \
        query(path, "SELECT sum(bucket_seconds) FROM telephony_cost")
    incremental = results(path)
    assert mbg("rate", "--force", "2009-10", "--root", root).exit_code == 0
    assert results(path) == incremental


LOCK_WAITER = r"""
import os, sys, time
from mbg import db
conn = db.connect(sys.argv[1], "dataset", busy_timeout_ms=int(sys.argv[2]))
while not os.path.exists(sys.argv[3]):
    time.sleep(0.001)
stored = 0
end = time.monotonic() + float(sys.argv[4])
while time.monotonic() < end:
    with db.write_transaction(conn):  # raises DatasetLockedError after the busy timeout
        conn.execute("INSERT INTO telephony_log (source, calldate, src, dst, duration, billsec)"
                     " VALUES ('w', '2009-10-31 23:00:00', 'x', ?, 1, 0)", (str(stored),))
    stored += 1
    time.sleep(0.005)
print(stored)
"""

LONG_RATER = RATER.replace("batch_size=3000", "batch_size=15000")


def test_a_writer_gets_in_between_batches_of_a_long_run(tmp_path):
    root = setup_root(tmp_path / "r", **REFERENCE)
    path = add_calls(root, random_calls(90_000, seed=5))
    env = run_env(MBGROOT=str(root))
    go = tmp_path / "go"
    rater = subprocess.Popen([sys.executable, "-c", LONG_RATER, str(root / "data" / "billing.db"),
                              str(path), str(go)], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    # the writer waits at most 0.7 s for the lock each time (a batch takes about 0.2 s),
    # again and again for as long as the run lasts (over 1 s)
    writer = subprocess.Popen([sys.executable, "-c", LOCK_WAITER, str(path), "700", str(go), "1.5"],
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(0.5)
    go.touch()
    out, err = writer.communicate()
    assert writer.returncode == 0, err
    assert int(out) > 10
    out, err = rater.communicate()
    assert rater.returncode == 0, err
    assert int(out) == 90_000 + int(query(path, "SELECT count(*) FROM telephony_log WHERE "
                                                "source = 'w' AND is_new = 0")[0][0])
