"""SQLite prices a batch (mbg.rating_sql) unless a number of it does not fit in 64 bits;
then Python does (mbg.rating_calls.cost_rows). Both must give the very same rows, and a
run may switch between them from one batch to the next."""

from __future__ import annotations

import random
import sqlite3
from decimal import ROUND_HALF_UP, Decimal

from mbg import db
from mbg.rating import force_month, rate_month
from mbg.rating_sql import MAX_BILLSEC
from mbg.tariffs import load_reference

from .rating_helpers import (add_calls, amounts, call, costs, mbg, query, reference, results,
                             setup_root)
from .test_rating_runs import REFERENCE, random_calls

HUGE = 2 * MAX_BILLSEC  # seconds: only Python prices a batch with this call


def _force(path, ref, chunk_size):
    conn = db.connect(path, "dataset")
    try:
        return force_month(conn, ref, chunk_size=chunk_size)
    finally:
        conn.close()


def test_sql_and_python_pricing_give_the_same_rows(tmp_path):
    root = setup_root(tmp_path / "r", **REFERENCE)
    calls = random_calls(3000, seed=11)
    # the last call of the month is too long for SQLite's integers; known number, city rate
    calls.append(call("2009-10-31 23:59:59", "495000001", "7495000", HUGE, "huge"))
    path = add_calls(root, calls)
    ref = reference(root)
    # one chunk: the huge call is in it, Python prices all 3001 calls
    everything_python = _force(path, ref, chunk_size=5000)
    python_rows = results(path)
    # chunks of 3000 and 1: SQLite prices the first chunk, Python the huge call alone
    mostly_sql = _force(path, ref, chunk_size=3000)
    assert results(path) == python_rows
    assert (mostly_sql.costs, mostly_sql.amount) == (everything_python.costs,
                                                     everything_python.amount)
    assert python_rows[2] and any(0 < r[10] < r[9] for r in python_rows[0])  # buckets in use
    # incremental batches, SQLite until the last one, give the force result too
    with sqlite3.connect(path) as con:
        con.execute("DELETE FROM telephony_cost")
        con.execute("DELETE FROM telephony_unrated")
        con.execute("DELETE FROM telephony_counter")
        con.execute("UPDATE telephony_log SET is_new = 1")
    con.close()
    conn = db.connect(path, "dataset")
    rate_month(conn, ref, batch_size=97, backlog=False)
    conn.close()
    assert results(path) == python_rows
    # the huge call: whole minutes at 0.45, no route; A1's bucket was used up before it
    billed = -(-HUGE // 60) * 60
    assert costs(path)["huge"] == [("T", "A1", "7495", "7495000", billed, 0, 45 * billed // 60)]


def test_rates_too_large_for_64_bits_are_priced_exactly(tmp_path):
    price, fee = "987654321.1234", "0.37"
    root = setup_root(tmp_path / "r", accounts="A1,x", numbers="111,A1,2009-01-01,",
                      tariffs=f"T,,,0.60,1,1,,,\nT,9,,{price},1,1,{fee},,",
                      services="phone,,,,T", subscriptions="A1,phone,2009-01-01,")
    rng = random.Random(5)
    calls, expected = [], {}
    for i in range(50):
        billsec = rng.choice([1, 59, 61, 3600, HUGE, rng.randrange(1, 10**7)])
        dst = rng.choice(["9", "5"]) + str(i)
        calls.append(call(f"2009-10-05 10:00:{i:02d}", "111", dst, billsec, f"c{i}"))
        exact = (Decimal(fee) + billsec * Decimal(price) / 60) if dst[0] == "9" else \
            billsec * Decimal("0.60") / 60
        expected[f"c{i}"] = int(exact.scaleb(2).quantize(Decimal(1), rounding=ROUND_HALF_UP))
    path = add_calls(root, calls)
    assert mbg("rate", "2009-10", "--root", root).exit_code == 0
    assert amounts(path) == expected
    # fee + seconds x price, scaled to integers, is far past 2**63 here: priced by Python
    assert max(expected.values()) > 10**15


def test_a_cost_row_left_from_before_is_replaced_not_doubled(tmp_path):
    """Someone sets is_new back by hand without deleting the costs: the next run rates
    those calls again and replaces their rows."""
    root = setup_root(tmp_path / "r", **REFERENCE)
    path = add_calls(root, random_calls(500, seed=12))
    assert mbg("rate", "2009-10", "--root", root).exit_code == 0
    before = query(path, "SELECT count(*), sum(amount) FROM telephony_cost WHERE tariff = 'P'")
    with sqlite3.connect(path) as con:
        con.execute("UPDATE telephony_log SET is_new = 1 WHERE id % 2 = 0")
    con.close()
    result = mbg("rate", "2009-10", "--root", root)
    assert result.exit_code == 0, result.output
    assert "rated 250 calls" in result.output
    # P's rates here have no bucket left to change: the same rows, not twice as many
    assert query(path, "SELECT count(*), sum(amount) FROM telephony_cost WHERE tariff = 'P'") \
        == before
    # the run's total is of the calls it rated, not of the range of ids they span
    (rows, total), = query(path, "SELECT count(*), sum(amount) FROM telephony_cost "
                                 "WHERE log_id % 2 = 0")
    assert f"{rows} costs {total // 100}.{total % 100:02d}," in result.output, result.output


def test_force_of_a_month_never_rated_keeps_the_index_of_new_calls(tmp_path):
    """force_month makes the index of new calls again (see rating._clear_new): the same
    index as a new file has, and used by the next incremental run."""
    assert db.NEW_CALLS_INDEX + ";" in db.schema_text("dataset.sql")
    root = setup_root(tmp_path / "r", **REFERENCE)
    path = add_calls(root, random_calls(400, seed=13))
    fresh = query(path, "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name")
    assert mbg("rate", "--force", "2009-10", "--root", root).exit_code == 0
    assert query(path, "SELECT type, name, tbl_name, sql FROM sqlite_master ORDER BY name") == fresh
    assert query(path, "SELECT count(*) FROM telephony_log WHERE is_new = 1") == [(0,)]
    add_calls(root, [call("2009-10-09 10:00:00", "495000001", "7495000", 60, "late")])
    plan = query(path, "EXPLAIN QUERY PLAN SELECT id FROM telephony_log WHERE is_new = 1 "
                       "ORDER BY calldate, id")
    assert "telephony_log_new" in str(plan)
    result = mbg("rate", "2009-10", "--root", root)
    assert "rated 1 calls" in result.output


def test_a_month_total_past_2_63_minor_units_is_still_exact(tmp_path):
    """SQLite's sum() stops at 2**63; the total of a run and of mbg status does not."""
    root = setup_root(tmp_path / "r", settings="money_decimals = 6\n", accounts="A1,x",
                      tariffs="T,,out,9000000000000,1,1,0,0,", routes="ch*,T")
    path = add_calls(root, [call("2009-10-05 10:00:00", "1", "2", 60, "a", dstchannel="ch1"),
                            call("2009-10-05 11:00:00", "1", "2", 60, "b", dstchannel="ch1")])
    for force in ([], ["--force"]):
        result = mbg("rate", *force, "2009-10", "--root", root)
        assert result.exit_code == 0, result.output
        assert "2 costs 18000000000000.000000" in result.output
    assert amounts(path) == {"a": 9 * 10**18, "b": 9 * 10**18}
    status = mbg("status", "2009-10", "--root", root)
    assert status.exit_code == 0 and "18000000000000.000000" in status.output


def test_a_run_total_past_2_63_of_rows_priced_by_sqlite_is_exact(tmp_path):
    """Each amount fits SQLite's integers (so SQLite prices the calls), their sum does not:
    the total of a batch, of a backlog and of a force is added up exactly all the same."""
    root = setup_root(tmp_path / "r", settings="money_decimals = 0\n", accounts="A1,x",
                      tariffs="T,,out,2000000000,1,1,0,0,", routes="ch*,T")
    one = MAX_BILLSEC * 2_000_000_000 // 60  # 33,333,333,333,333,333 each, 300 calls
    path = add_calls(root, [call(f"2009-10-05 10:{i // 60:02d}:{i % 60:02d}", "1", "2",
                                 MAX_BILLSEC, f"c{i}", dstchannel="ch1") for i in range(300)])
    assert 300 * one > 2**63
    result = mbg("rate", "2009-10", "--root", root)  # one batch
    assert result.exit_code == 0, result.output
    assert f"300 costs {300 * one}," in result.output, result.output
    for backlog in (True, False):  # a backlog (one transaction), or batches of 100
        with sqlite3.connect(path) as con:
            con.execute("DELETE FROM telephony_cost")
            con.execute("UPDATE telephony_log SET is_new = 1")
        con.close()
        billing = db.connect(root / "data" / "billing.db", "billing", readonly=True)
        ref = load_reference(billing, 0, "half-up")  # money_decimals = 0
        billing.close()
        conn = db.connect(path, "dataset")
        rated = rate_month(conn, ref, batch_size=100, backlog=backlog)
        conn.close()
        assert (rated.costs, rated.amount) == (300, 300 * one)
    result = mbg("rate", "--force", "2009-10", "--root", root)
    assert f"300 costs {300 * one}," in result.output, result.output
    assert set(amounts(path).values()) == {one}


def test_a_price_of_more_than_28_digits_is_exact(tmp_path):
    """Decimal's default context keeps 28 digits; a rate's price keeps all of its own."""
    root = setup_root(tmp_path / "r", settings='money_decimals = 0\nrounding = "up"\n',
                      accounts="A1,x", numbers="1,A1,2009-01-01,",
                      tariffs="T,,,60.000000000000000000000000000001,1,1,,,",
                      services="phone,,,,T", subscriptions="A1,phone,2009-01-01,")
    path = add_calls(root, [call("2009-10-05 10:00:00", "1", "2", 60, "a")])
    assert mbg("rate", "2009-10", "--root", root).exit_code == 0
    assert amounts(path) == {"a": 61}  # 60.000...01 rounded up
    explained = mbg("explain", "2009-10", "1", "--root", root)
    assert "60.000000000000000000000000000001" in explained.output, explained.output


def test_a_batch_rolled_back_is_priced_again_in_full(tmp_path):
    """The temp tables go back with a rolled-back transaction; the next write of the same
    run must send its plans again, not price against an empty table."""
    from mbg.rating import SELECT_CALLS, _resolve, _store
    from mbg.rating_sql import SqlCosting

    root = setup_root(tmp_path / "r", **REFERENCE)
    path = add_calls(root, random_calls(300, seed=14))
    ref = reference(root)
    conn = db.connect(path, "dataset")
    rows = conn.execute(SELECT_CALLS + " ORDER BY calldate, id").fetchall()
    for made_before in (True, False):  # temp tables made before, or inside, the transaction
        caches = {"sql": SqlCosting(conn)} if made_before else {}
        batch = _resolve(rows, ref, None, caches)
        try:
            with db.write_transaction(conn):
                first = _store(conn, batch, caches)
                raise RuntimeError("stop")
        except RuntimeError:
            pass
        with db.write_transaction(conn):
            again = _store(conn, batch, caches)
            written = conn.execute("SELECT count(*) FROM telephony_cost").fetchall()[0][0]
            conn.execute("DELETE FROM telephony_cost")
            conn.execute("DELETE FROM telephony_unrated")
            conn.execute("DELETE FROM telephony_counter")
        assert first.costs > 100 and again.costs == first.costs == written
    conn.close()
