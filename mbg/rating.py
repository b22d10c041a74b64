"""Monthly rating: incremental (``rate_month``) and from scratch (``force_month``), SPEC section 7.

A batch of calls is rated in two steps. ``_resolve`` finds, in Python and without touching
the database, each call's account, tariffs and rates (rating_calls.resolve_calls: one
short row per call). ``_store``, inside a write transaction, takes the bucket seconds from
the counters as they are then (rating_calls.use_buckets) and has SQLite price the batch
and write its cost rows in one INSERT...SELECT (rating_sql); Python prices it instead
when a number would not fit SQLite's 64-bit integers (rating_calls.cost_rows, same rows).

Incremental runs rate the calls with ``is_new = 1`` in (calldate, id) order, in batches;
each batch is resolved from a read snapshot with no lock held, then one write transaction
checks that the snapshot still holds (else resolves the batch again inside the lock), writes
the costs, unrated reasons and counters, and clears ``is_new`` on exactly those calls. So
two runs at once never rate a call twice, and a collector writing the same file gets the
lock while a batch is being resolved, with no pause (see rate_month). A backlog (a month
mostly new, more than a batch) is rated in one transaction instead, like force
(_rate_backlog): clearing is_new with the index of new calls dropped halves that work.

Force is one transaction: delete the month's costs, unrated reasons and counters, rate
every call in (calldate, id) order, clear ``is_new``. Killed at any instant, it leaves
the previous results. The same calls rated incrementally in calldate order give the same
rows: both use the same two steps in the same order with the same counters.

Decisions where SPEC is silent:
- An unanswered call (billsec <= 0) gets no rows; it only stops being new.
- A call with no account gets one unrated row (tariff '', 'unknown account') and is still
  rated under its route tariff, with account ''; a bucket of a route tariff then counts
  for account '' (the operator's own bundle with that provider).
- An account without telephony service that day gets (tariff '', 'no tariff').
- No route matching the outgoing channel is not an error (internal and incoming calls):
  the call simply has no route tariff.
- A tariff named twice (a plan tariff that is also the route tariff) is rated once.
- The connect fee is charged on every answered call rated under a rate, even when the
  billed seconds are 0 (free seconds) or all paid by a bucket: SPEC 7.7 as written.
"""

from __future__ import annotations

import contextlib
import gc
import itertools
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import apsw

from . import db
from .mediation import extra_dict
from .rating_calls import PlanRegistry, cost_rows, plan_registry, resolve_calls, use_buckets
from .rating_sql import SqlCosting, sum_amounts
from .tariffs import Reference

BATCH = 200_000  # calls a batch: fewer commits; the write lock is held about a second
FORCE_CHUNK = 100_000  # force is one transaction anyway: smaller chunks, less memory

SELECT_CALLS = "SELECT id, calldate, src, dst, channel, dstchannel, billsec FROM telephony_log"
# With mediation rules the rules see every field of the call.
SELECT_CALLS_FULL = ("SELECT id, calldate, src, dst, channel, dstchannel, billsec, source, "
                     "duration, cause, callid, extra FROM telephony_log")

INSERT_COST = ("INSERT OR REPLACE INTO telephony_cost (log_id, tariff, account, direction, prefix, "
               "number, seconds, bucket_seconds, amount, role) VALUES (?,?,?,?,?,?,?,?,?,?)")
INSERT_UNRATED = "INSERT OR REPLACE INTO telephony_unrated (log_id, tariff, reason) VALUES (?,?,?)"
WRITE_COUNTER = ("INSERT OR REPLACE INTO telephony_counter (account, tariff, bucket, seconds) "
                 "VALUES (?,?,?,?)")

@dataclass
class RatingResult:
    calls: int = 0        # calls that stopped being new (answered or not)
    unanswered: int = 0
    costs: int = 0        # telephony_cost rows written
    amount: int = 0       # their total, minor units
    unrated: Counter = field(default_factory=Counter)  # reason -> rows

    def add(self, other: "RatingResult") -> None:
        self.calls += other.calls
        self.unanswered += other.unanswered
        self.costs += other.costs
        self.amount += other.amount
        self.unrated.update(other.unrated)


def call_dict(row: tuple, parse_extra: bool = True) -> dict[str, Any]:
    """A telephony_log row of the SELECT_CALLS_FULL query as the mediation rules see it.
    ``extra``: mediation.extra_dict, or None unread when ``parse_extra`` is False (no rule
    reads it: RuleSet.uses_extra)."""
    (log_id, calldate, src, dst, channel, dstchannel, billsec, source, duration, cause, callid,
     extra) = row
    return {"source": source, "calldate": calldate, "src": src, "dst": dst, "channel": channel,
            "dstchannel": dstchannel, "duration": duration, "billsec": billsec, "cause": cause,
            "callid": callid, "extra": extra_dict(extra) if parse_extra else None}


def _normalized(rows: Iterable[tuple], rules, unrated: list) -> Iterator[tuple]:
    """SPEC 7.1: each answered call through the rules; skipped and invalid calls go to
    ``unrated`` and are not rated further: they come out with billsec -1, which
    resolve_calls neither rates nor counts as unanswered."""
    parse_extra = rules.uses_extra
    for row in rows:
        if row[6] <= 0:
            yield row[:7]
            continue
        outcome = rules.apply(call_dict(row, parse_extra))
        if outcome.skipped:
            unrated.append((row[0], "", f"skipped: {outcome.skipped}"))
            yield (row[0], row[1], "", "", "", "", -1)  # counted, no rows
            continue
        if outcome.invalid:
            unrated.append((row[0], "", outcome.invalid))
            yield (row[0], row[1], "", "", "", "", -1)
            continue
        c = outcome.call
        yield (row[0], row[1], c["src"], c["dst"], c["channel"], c["dstchannel"], int(c["billsec"]))


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """The cycle collector off for a run: the rows read, the resolved calls and the caches
    are millions of tuples without cycles, and the collector would walk them again and again
    (a quarter of a force run's time)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@dataclass
class _Batch:
    """One batch of calls, resolved (rating_calls.resolve_calls) but not priced yet."""
    rows: list             # the calls read, in rating order
    calls: list            # the resolved calls with something to price
    with_buckets: list     # positions in calls of those with a bucket in their plan
    unrated: list          # telephony_unrated rows
    tally: list            # [unanswered calls]
    registry: PlanRegistry


def _resolve(rows: list, ref: Reference, rules, caches: dict) -> _Batch:
    """Step one of rating a batch, in Python and without touching the database."""
    unrated: list = []
    tally = [0]
    with_buckets: list = []
    source = _normalized(rows, rules, unrated) if rules is not None else rows
    calls = resolve_calls(source, ref, unrated, caches, tally, with_buckets)
    return _Batch(rows, calls, with_buckets, unrated, tally, plan_registry(ref))


def _store(conn: apsw.Connection, batch: _Batch, caches: dict, amount: bool = True
           ) -> RatingResult:
    """Step two, inside the caller's write transaction: the buckets from the counters as
    they are now, then the costs, unrated reasons and counters. SQLite prices the batch
    (rating_sql) unless a number is too large for its 64-bit integers; then Python does
    (rating_calls.cost_rows), with the same result."""
    counters = _read_counters(conn)
    before = dict(counters)
    taken = use_buckets(batch.calls, batch.with_buckets, batch.registry, counters,
                        caches.get("spent"))
    costing = caches.get("sql")
    if costing is None or costing.conn is not conn:
        costing = caches["sql"] = SqlCosting(conn)
    priced = costing.write(batch.calls, batch.registry, taken, amount)
    if priced is None:
        tally = [0, 0]
        conn.executemany(INSERT_COST, cost_rows(batch.calls, batch.registry, taken, tally))
        priced = tally[0], tally[1]
    conn.executemany(WRITE_COUNTER, [(*k, v) for k, v in counters.items() if before.get(k) != v])
    conn.executemany(INSERT_UNRATED, batch.unrated)
    result = RatingResult(calls=len(batch.rows), unanswered=batch.tally[0], costs=priced[0],
                          amount=priced[1])
    result.unrated.update(u[2] for u in batch.unrated)
    return result


def _read_counters(conn: apsw.Connection) -> dict[tuple[str, str, str], int]:
    return {(a, t, b): s for a, t, b, s in
            conn.execute("SELECT account, tariff, bucket, seconds FROM telephony_counter")}


def count_new(conn: apsw.Connection) -> int:
    return conn.execute("SELECT count(*) FROM telephony_log WHERE is_new = 1").fetchall()[0][0]


# The new calls up to a given one, in (calldate, id) order: a batch once rated.
# "calldate <= ?1" lets SQLite search the index for the range; with the OR alone it would
# scan every new call left in the month, each batch (quadratic in the month).
NEW_UP_TO = "WHERE is_new = 1 AND calldate <= ?1 AND (calldate < ?1 OR id <= ?2)"


def rate_month(conn: apsw.Connection, ref: Reference, rules=None, batch_size: int = BATCH,
               on_progress: Callable[[int], None] | None = None,
               backlog: bool = True) -> RatingResult:
    """Rate the new calls of a dataset, oldest first, one write transaction per batch.

    A backlog (more than one batch of new calls, and more than half the month's calls:
    a month collected or imported in bulk and never rated) is rated in one transaction
    instead, as force does, unless ``backlog`` is False (_rate_backlog).

    Each batch is read in one snapshot and resolved (accounts, tariffs, rates) with no
    lock held. Then a write transaction checks that the snapshot still holds (the new calls
    up to the last one read are exactly those resolved, so no other run rated them and no
    late call slipped in before them), resolving the batch again inside the lock if not,
    and prices and writes it from the counters as they are in that transaction. Either way
    a call is rated once, after the calls before it. The write lock is held only for the
    pricing and writing, and a collector waiting for it gets it while the next batch is
    being resolved (db.set_busy_timeout tries every 2 ms).
    """
    new, calls = _count_calls(conn)
    if backlog and new > batch_size and new > calls // 2:
        return _rate_backlog(conn, ref, rules, on_progress, new, calls)
    total = RatingResult()
    caches: dict = {"sql": SqlCosting(conn)}
    select = (SELECT_CALLS_FULL if rules is not None else SELECT_CALLS) + \
        " WHERE is_new = 1 ORDER BY calldate, id LIMIT ?"
    with _no_gc():
        while True:
            rows = conn.execute(select, (batch_size,)).fetchall()
            if not rows:
                break
            batch = _resolve(rows, ref, rules, caches)
            done = _write_batch(conn, batch, select, batch_size, ref, rules, caches, total)
            if on_progress:
                on_progress(done)
            if done < batch_size:
                break
    return total


def _write_batch(conn, batch: _Batch, select, batch_size, ref, rules, caches,
                 total: RatingResult) -> int:
    """The write transaction of one batch (see rate_month). Returns the calls rated."""
    with db.write_transaction(conn):
        last = batch.rows[-1]
        # The same new calls up to the last one: their number and the sum of their ids
        # (ids are never reused: calls are never deleted, and SQLite gives a new call
        # the largest id + 1)
        now = conn.execute(f"SELECT count(*), coalesce(sum(id), 0) FROM telephony_log "
                           f"{NEW_UP_TO}", (last[1], last[0])).fetchall()[0]
        if now != (len(batch.rows), sum(r[0] for r in batch.rows)):
            rows = conn.execute(select, (batch_size,)).fetchall()  # changed: again, locked
            if not rows:
                return 0
            batch = _resolve(rows, ref, rules, caches)
            last = rows[-1]
        result = _store(conn, batch, caches)
        conn.execute(f"UPDATE telephony_log SET is_new = 0 {NEW_UP_TO}", (last[1], last[0]))
    total.add(result)
    return len(batch.rows)


def _rate_backlog(conn: apsw.Connection, ref: Reference, rules,
                  on_progress: Callable[[int], None] | None, new: int, calls: int
                  ) -> RatingResult:
    """rate_month of a month whose calls are mostly new (collected or imported in bulk,
    never rated): like force, in one transaction, but keeping what is rated already. One
    transaction lets _clear_new drop the index of new calls while it clears them, which
    halves that work, and saves a commit per batch; the lock is held as long as a force.
    ``new`` and ``calls``: _count_calls before the transaction, which only choose how
    _clear_new works (calls a collector added since change the speed, not the result)."""
    total = RatingResult()
    select = (SELECT_CALLS_FULL if rules is not None else SELECT_CALLS) + \
        " WHERE is_new = 1 ORDER BY calldate, id"
    with _no_gc(), db.write_transaction(conn):
        _rate_in_order(conn, ref, rules, select, total, on_progress, amount=True)
        _clear_new(conn, new, calls)
    return total


def force_month(conn: apsw.Connection, ref: Reference, rules=None, chunk_size: int = FORCE_CHUNK,
                on_progress: Callable[[int], None] | None = None) -> RatingResult:
    """Delete the month's results and rate every call again, in one transaction."""
    total = RatingResult()
    select = SELECT_CALLS_FULL if rules is not None else SELECT_CALLS
    with _no_gc(), db.write_transaction(conn):
        conn.execute("DELETE FROM telephony_cost")
        conn.execute("DELETE FROM telephony_unrated")
        conn.execute("DELETE FROM telephony_counter")
        new, calls = _count_calls(conn)
        # Every call new (never rated): the index of new calls gives their order, no sort
        where = " WHERE is_new = 1" if new == calls else ""
        _rate_in_order(conn, ref, rules, f"{select}{where} ORDER BY calldate, id", total,
                       on_progress, amount=False, chunk_size=chunk_size)
        # the month's amount in one pass, cheaper than after each chunk (the chunks
        # counted their rows)
        total.amount = sum_amounts(conn, "SELECT amount FROM telephony_cost")
        _clear_new(conn, new, calls)
    return total


def _rate_in_order(conn: apsw.Connection, ref: Reference, rules, select: str,
                   total: RatingResult, on_progress: Callable[[int], None] | None,
                   amount: bool, chunk_size: int = FORCE_CHUNK) -> None:
    """Rate the calls of ``select`` in the caller's write transaction, ``chunk_size`` at
    a time (memory stays flat, the order and counters are those of one pass). All in one
    transaction, so a bucket found used up stays so: its calls skip use_buckets ("spent")."""
    caches: dict = {"sql": SqlCosting(conn), "spent": set()}
    cursor = conn.execute(select)
    while True:
        rows = list(itertools.islice(cursor, chunk_size))
        if not rows:
            break
        total.add(_store(conn, _resolve(rows, ref, rules, caches), caches, amount))
        if on_progress:
            on_progress(len(rows))


def _count_calls(conn: apsw.Connection) -> tuple[int, int]:
    """(new calls, all calls) of the month."""
    return conn.execute("SELECT (SELECT count(*) FROM telephony_log WHERE is_new = 1), "
                        "(SELECT count(*) FROM telephony_log)").fetchall()[0]


def _clear_new(conn: apsw.Connection, new: int, calls: int) -> None:
    """is_new = 0 on every call. When most calls are new (a month never rated), dropping
    the index of new calls first and making it again, empty, costs half of updating it
    row by row; all in the caller's transaction. ``new`` and ``calls``: _count_calls,
    which choose the way only."""
    if new > calls // 2:
        conn.execute("DROP INDEX telephony_log_new")
        conn.execute("UPDATE telephony_log SET is_new = 0 WHERE is_new = 1")
        conn.execute(db.NEW_CALLS_INDEX)
    else:
        conn.execute("UPDATE telephony_log SET is_new = 0 WHERE is_new = 1")
