"""Incremental batches are resolved from a read snapshot, outside the write lock; the write
transaction must notice when the snapshot no longer holds and resolve the batch again, and
price it from the counters as they are then, so that the result is exactly the force result
(the canonical one)."""

from __future__ import annotations

from mbg import db
from mbg.rating import _resolve, _write_batch, RatingResult, SELECT_CALLS, force_month, rate_month

from .rating_helpers import add_calls, call, reference, results, setup_root
from .test_rating_runs import REFERENCE, random_calls

SELECT_NEW = SELECT_CALLS + " WHERE is_new = 1 ORDER BY calldate, id LIMIT ?"


def ask(conn, sql: str) -> list[tuple]:
    """A query on the run's own connection (results are read with sqlite3 once it is closed)."""
    return [tuple(r) for r in conn.execute(sql)]


def _snapshot(conn, ref, size):
    rows = conn.execute(SELECT_NEW, (size,)).fetchall()
    return _resolve(rows, ref, None, {})


def _force_results(path, ref):
    conn = db.connect(path, "dataset")
    force_month(conn, ref)
    conn.close()
    return results(path)


def test_a_late_call_before_the_batch_end_makes_the_batch_rated_again(tmp_path):
    root = setup_root(tmp_path / "r", **REFERENCE)
    path = add_calls(root, random_calls(2000, seed=3))
    ref = reference(root)
    conn = db.connect(path, "dataset")
    batch = _snapshot(conn, ref, 500)
    last_date = batch.rows[-1][1]
    # a collector stores a call that sorts inside the batch, after the snapshot was taken;
    # it uses the bucket of account A1 (prefix 7495, 60/60 increments, bucket mins)
    add_calls(root, [call("2009-10-01 00:00:01", "495000001", "7495123", 600, "late")])
    assert last_date > "2009-10-01 00:00:01"
    total = RatingResult()
    rated = _write_batch(conn, batch, SELECT_NEW, 500, ref, None, {}, total)
    assert rated == 500 and total.calls == 500
    # the late call is in the batch; the last call read in the snapshot is not any more
    assert ask(conn, "SELECT is_new FROM telephony_log WHERE callid = 'late'") == [(0,)]
    assert ask(conn, "SELECT count(*) FROM telephony_log WHERE is_new = 0") == [(500,)]
    rate_month(conn, ref)
    conn.close()
    incremental = results(path)
    assert incremental == _force_results(path, ref)


def test_a_batch_rated_by_another_run_meanwhile_is_rated_again_from_what_is_new(tmp_path):
    root = setup_root(tmp_path / "r", **REFERENCE)
    path = add_calls(root, random_calls(3000, seed=4))
    ref = reference(root)
    conn = db.connect(path, "dataset")
    rate_month(conn, ref, batch_size=1000)  # everything rated: start again with new calls
    with db.write_transaction(conn):
        conn.execute("DELETE FROM telephony_cost")
        conn.execute("DELETE FROM telephony_unrated")
        conn.execute("DELETE FROM telephony_counter")
        conn.execute("UPDATE telephony_log SET is_new = 1")
    stale = _snapshot(conn, ref, 1000)  # taken before the first batch is written
    assert stale.rows[0][1] == ask(conn, "SELECT min(calldate) FROM telephony_log")[0][0]
    total = RatingResult()
    assert _write_batch(conn, stale, SELECT_NEW, 1000, ref, None, {}, total) == 1000
    # another run's snapshot of the next batch, then that run is overtaken by this one
    second = _snapshot(conn, ref, 1000)
    other = db.connect(path, "dataset")
    assert _write_batch(other, second, SELECT_NEW, 1000, ref, None, {}, RatingResult()) == 1000
    other.close()
    # the stale snapshot of the first batch is rated again from what is new now
    assert _write_batch(conn, stale, SELECT_NEW, 1000, ref, None, {}, total) == 1000
    assert ask(conn, "SELECT count(*) FROM telephony_log WHERE is_new = 1") == [(0,)]
    assert ask(conn, "SELECT sum(seconds) FROM telephony_counter") == \
        ask(conn, "SELECT sum(bucket_seconds) FROM telephony_cost")
    conn.close()
    incremental = results(path)
    assert incremental[2]  # buckets in use
    assert incremental == _force_results(path, ref)
