"""Rating benchmark (SPEC section 12): a generated month of N calls, 20,000 prefixes,
3 tariffs per call (two plan tariffs and a route tariff), buckets in use.

Prints incremental and force calls/s beside the ceiling of writing the same number of
cost rows (executemany into telephony_cost, one transaction), and the force time scaled
to 1,000,000 calls. Incremental is ``rate_month`` of the month straight after
collection (every call new: a backlog, rated in one transaction), and again in batches
of 200,000 as when fewer calls are new (``backlog=False``; no target, for comparison).
Force is timed on the month the incremental run rated, and on a copy never rated (every
call new, as straight after collection), and once more with the Python resolving of each
chunk replayed from the force run (SQLite's part alone: the bound of any work on the
Python side). Each timed run loads the reference data afresh, as a rating process does
(rates and plans are made as calls need them), but the replayed one, which needs the
plans of the run it replays. The data is fixed: prefixes from a seeded random generator,
calls from integer hashes of their number inside SQLite.

    python -m tests.bench rate [--n 1000000]
"""

from __future__ import annotations

import contextlib
import gc
import random
import time
from pathlib import Path

from mbg import db, rating
from mbg.rating import SELECT_CALLS, INSERT_COST, force_month, rate_month
from mbg.rating_calls import resolve_calls
from mbg.tariffs import load_reference

from .common import Figure, ceiling_rows_per_s, cost_rows_sample, timed

PREFIXES = 20_000
ACCOUNTS = 5_000
TARIFFS_PER_CALL = 3


def make_billing(path: Path, seed: int = 12) -> None:
    """5,000 accounts with two numbers each, two plan tariffs and one route tariff over the
    same 20,000 prefixes (plus the empty one); a quarter of plan rates draw on buckets."""
    rng = random.Random(seed)
    prefixes: set[str] = set()
    while len(prefixes) < PREFIXES:
        prefixes.add(rng.choice("789") + "".join(rng.choice("0123456789")
                                                 for _ in range(rng.randrange(2, 7))))
    ordered = [""] + sorted(prefixes)
    conn = db.connect(path, "billing", create=True)
    with db.write_transaction(conn):
        conn.executemany("INSERT INTO accounts VALUES (?, ?)",
                         [(f"A{i}", f"Customer {i}") for i in range(ACCOUNTS)])
        conn.executemany("INSERT INTO numbers VALUES (?, ?, '2009-01-01', NULL)",
                         [(f"4950{i:06d}", f"A{i // 2}") for i in range(2 * ACCOUNTS)])
        rates = []
        for tariff, first, step in (("PLAN", 60, 60), ("EXTRA", 30, 6), ("ROUTE", 1, 1)):
            for k, prefix in enumerate(ordered):
                price = f"{rng.randrange(1, 300) / 100:.2f}"
                bucket = "mins" if tariff == "PLAN" and k % 4 == 0 else \
                    "intl" if tariff == "EXTRA" and k % 4 == 1 else None
                fee = "0.05" if k % 3 == 0 else "0"
                rates.append((tariff, prefix, "d", price, first, step, fee, k % 5, bucket))
        conn.executemany("INSERT INTO tariffs VALUES (?,?,?,?,?,?,?,?,?)", rates)
        conn.executemany("INSERT INTO buckets VALUES (?,?,?)",
                         [("PLAN", "mins", 3600), ("EXTRA", "intl", 600)])
        conn.execute("INSERT INTO routes VALUES ('C01*', 'ROUTE', 1)")
        conn.executemany("INSERT INTO services VALUES (?, ?, NULL, NULL, ?)",
                         [("plan", "Plan", "PLAN"), ("extra", "Extra", "EXTRA")])
        conn.executemany("INSERT INTO subscriptions VALUES (?, ?, '2009-01-01', NULL)",
                         [(f"A{i}", s) for i in range(ACCOUNTS) for s in ("plan", "extra")])
    conn.close()


def make_month(path: Path, n: int) -> None:
    """n calls over October 2009 in calldate order; 90% answered; 97% from known numbers."""
    conn = db.connect(path, "dataset", create=True)
    with db.write_transaction(conn):
        conn.execute(
            "WITH RECURSIVE seq(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM seq WHERE i < ? - 1), "
            "h(i, a, b, s) AS (SELECT i, (i * 2654435761 + 97) % 4294967296, "
            "(i * 40503 + 11) % 1000003, i * 2678400 / ?1 FROM seq) "
            "INSERT INTO telephony_log (source, calldate, src, dst, channel, dstchannel, duration, "
            "billsec, callid) SELECT 'bench', "
            "printf('2009-10-%02d %02d:%02d:%02d', 1 + s / 86400, s / 3600 % 24, s / 60 % 60, s % 60), "
            "CASE WHEN a % 100 < 97 THEN printf('4950%06d', a % 10000) ELSE printf('4999%06d', a % 997) END, "
            "printf('%d%010d', 7 + a % 3, (a * 31 + b) % 10000000000), '', "
            "printf('C01%04d', b % 1000), 0, CASE WHEN b % 10 = 0 THEN 0 ELSE b % 600 END, "
            "'b' || i FROM h",
            (n,),
        )
        conn.execute("UPDATE telephony_log SET duration = billsec + 7")
    conn.close()


class _Replay:
    """resolve_calls of mbg.rating recording its results, then replaying them in order."""

    def __init__(self) -> None:
        self.recording = True
        self.results: list = []
        self.next = 0

    def __call__(self, rows, ref, unrated, caches, tally, with_buckets):
        if self.recording:
            start = len(unrated), tally[0], len(with_buckets)
            out = resolve_calls(rows, ref, unrated, caches, tally, with_buckets)
            self.results.append((unrated[start[0]:], tally[0] - start[1],
                                 with_buckets[start[2]:], out))
            return out
        more_unrated, unanswered, more_with_buckets, out = self.results[self.next]
        self.next += 1
        unrated.extend(more_unrated)
        tally[0] += unanswered
        with_buckets.extend(more_with_buckets)
        return out


@contextlib.contextmanager
def replayed_resolve():
    """mbg.rating's resolve_calls replaced by a _Replay for the time of the block."""
    replay = _Replay()
    rating.resolve_calls = replay
    try:
        yield replay
    finally:
        rating.resolve_calls = resolve_calls


def run(n: int, workdir: Path) -> list[Figure]:
    billing_path = workdir / "billing.db"
    make_billing(billing_path)
    month_path = workdir / "2009-10-01.db"
    make_month(month_path, n)
    never_rated = workdir / "never-rated" / "2009-10-01.db"
    never_rated.parent.mkdir()
    make_month(never_rated, n)
    in_batches = workdir / "in-batches" / "2009-10-01.db"
    in_batches.parent.mkdir()
    make_month(in_batches, n)

    billing = db.connect(billing_path, "billing", readonly=True)
    load_s, ref = timed(load_reference, billing, 2, "half-up")

    def rating_run(rate, path: Path, ref=None, **options):
        """(seconds, result, CPU seconds) of one run as a rating process makes it: the
        reference data loaded afresh (rates and plans are made as calls need them, so a
        Reference shared between runs would let the later ones skip that work), unless
        ``ref`` is given."""
        conn = db.connect(path, "dataset")
        cpu = time.process_time()
        seconds, result = timed(
            lambda: rate(conn, ref or load_reference(billing, 2, "half-up"), **options))
        cpu = time.process_time() - cpu
        conn.close()
        return seconds, result, cpu

    # force straight after collection: every call new (rating._clear_new's other way)
    fresh_s, fresh, _ = rating_run(force_month, never_rated)
    # the same month in batches of 200,000 (what rate_month does when fewer calls are new)
    batches_s, batches, _ = rating_run(rate_month, in_batches, backlog=False)
    incremental_s, inc, _ = rating_run(rate_month, month_path)
    force_s, forced, force_cpu = rating_run(force_month, month_path)
    # What SQLite's part of force costs alone (reading, pricing, writing, clearing is_new):
    # the same force with every chunk's resolve_calls replayed from a run just made, so
    # the bound of any work on the Python side
    forced_ref = load_reference(billing, 2, "half-up")
    with replayed_resolve() as replay:
        rating_run(force_month, month_path, forced_ref)  # recording
        replay.recording = False
        sql_part_s, sql_part, _ = rating_run(force_month, month_path, forced_ref)
    billing.close()
    conn = db.connect(month_path, "dataset")
    cost_rows = conn.execute("SELECT count(*) FROM telephony_cost").fetchall()[0][0]
    # Where the time goes: the Python loop alone, on calls already in memory.
    in_memory = conn.execute(f"{SELECT_CALLS} ORDER BY calldate, id LIMIT 200000").fetchall()
    conn.close()
    gc.disable()
    resolve_calls(in_memory, ref, [], {}, [0, 0], [])  # rates and plans made: the loop alone
    cpu = time.process_time()
    resolve_calls(in_memory, ref, [], {}, [0, 0], [])
    loop_cpu = time.process_time() - cpu
    gc.enable()
    assert inc.calls == n and forced.calls == n and forced.costs == inc.costs == cost_rows
    assert (fresh.costs, fresh.amount) == (forced.costs, forced.amount) == \
        (batches.costs, batches.amount) == (sql_part.costs, sql_part.amount)

    # The ceiling: the same number of cost rows per call, bulk-inserted in one transaction.
    sample_calls = min(n, 200_000)
    sample = cost_rows_sample(sample_calls, ACCOUNTS)
    rows_per_call = cost_rows / n
    ceiling_calls = ceiling_rows_per_s(sample, workdir, sql=INSERT_COST) / rows_per_call

    return [
        Figure("load reference (20,000 prefixes x 3)", load_s, "s"),
        Figure(f"cost rows per call (answered {100 * (n - inc.unanswered) // n}%)",
               rows_per_call, "rows"),
        Figure("rating incremental", n / incremental_s, "calls/s", ceiling_calls,
               ">= 100,000 calls/s", n / incremental_s >= 100_000),
        Figure("rating incremental, batches of 200,000", n / batches_s, "calls/s",
               ceiling_calls),
        Figure("rating force", n / force_s, "calls/s", ceiling_calls,
               ">= 100,000 calls/s", n / force_s >= 100_000),
        Figure("force time for 1,000,000 calls", force_s * 1_000_000 / n, "s", None,
               "<= 10 s", force_s * 1_000_000 / n <= 10),
        Figure("force of a month never rated", n / fresh_s, "calls/s", ceiling_calls,
               ">= 100,000 calls/s", n / fresh_s >= 100_000),
        Figure("force time for 1,000,000 calls never rated", fresh_s * 1_000_000 / n, "s",
               None, "<= 10 s", fresh_s * 1_000_000 / n <= 10),
        Figure("force CPU time of this process", force_cpu, "s"),
        Figure("force with resolving replayed (SQLite)", n / sql_part_s, "calls/s",
               ceiling_calls),
        Figure("resolving calls alone, in memory (CPU)", len(in_memory) / loop_cpu, "calls/s"),
    ]
