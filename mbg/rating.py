"""Monthly rating: incremental (``rate_month``) and from scratch (``force_month``), SPEC section 7.

Incremental runs rate the calls with ``is_new = 1`` in (calldate, id) order, in batches;
each batch is rated from a read snapshot with no lock held, then one write transaction
checks that the snapshot still holds (else rates the batch again inside the lock), writes
the costs, unrated reasons and counters, and clears ``is_new`` on exactly those calls. So
two runs at once never rate a call twice, and a collector writing the same file gets the
lock while a batch is being rated, with no pause (see rate_month).

Force is one transaction: delete the month's costs, unrated reasons and counters, rate
every call in (calldate, id) order, clear ``is_new``. Killed at any instant, it leaves
the previous results. The same calls rated incrementally in calldate order give the same
rows: both feed the same ``rate_calls`` in the same order with the same counters.

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
import json
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import apsw

from . import db
from .tariffs import Reference

BATCH = 100_000

SELECT_CALLS = "SELECT id, calldate, src, dst, channel, dstchannel, billsec FROM telephony_log"
# With mediation rules the rules see every field of the call.
SELECT_CALLS_FULL = ("SELECT id, calldate, src, dst, channel, dstchannel, billsec, source, "
                     "duration, cause, callid, extra FROM telephony_log")

INSERT_COST = ("INSERT OR REPLACE INTO telephony_cost (log_id, tariff, account, direction, prefix, "
               "number, seconds, bucket_seconds, amount, role) VALUES (?,?,?,?,?,?,?,?,?,?)")
INSERT_UNRATED = "INSERT OR REPLACE INTO telephony_unrated (log_id, tariff, reason) VALUES (?,?,?)"
WRITE_COUNTER = ("INSERT OR REPLACE INTO telephony_counter (account, tariff, bucket, seconds) "
                 "VALUES (?,?,?,?)")

_MISSING = object()


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


def call_dict(row: tuple) -> dict[str, Any]:
    """A telephony_log row of the SELECT_CALLS_FULL query as the mediation rules see it."""
    (log_id, calldate, src, dst, channel, dstchannel, billsec, source, duration, cause, callid,
     extra) = row
    return {"source": source, "calldate": calldate, "src": src, "dst": dst, "channel": channel,
            "dstchannel": dstchannel, "duration": duration, "billsec": billsec, "cause": cause,
            "callid": callid, "extra": json.loads(extra) if extra else {}}


def _normalized(rows: Iterable[tuple], rules, unrated: list) -> Iterator[tuple]:
    """SPEC 7.1: each answered call through the rules; skipped and invalid calls go to
    ``unrated`` and are not rated further: they come out with billsec -1, which
    rate_calls counts as calls but neither rates nor counts as unanswered."""
    for row in rows:
        if row[6] <= 0:
            yield row[:7]
            continue
        outcome = rules.apply(call_dict(row))
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


def _month_bounds(calldate: str) -> tuple[str, str]:
    year, month = int(calldate[:4]), int(calldate[5:7])
    after = f"{year + 1:04d}-01-01" if month == 12 else f"{year:04d}-{month + 1:02d}-01"
    return f"{calldate[:7]}-01", after


def rate_calls(rows: Iterable[tuple], ref: Reference, counters: dict[tuple[str, str, str], int],
               unrated: list, caches: dict, tally: list[int]) -> Iterator[tuple]:
    """Rate calls (id, calldate, src, dst, channel, dstchannel, billsec) in the order given.

    Yields the telephony_cost rows, appends telephony_unrated rows to ``unrated``, advances
    ``counters`` ((account, tariff, bucket) -> seconds used) and adds to ``tally`` =
    [unanswered calls, cost rows, their amount]. A billsec below 0 marks a call already
    settled by mediation: not rated, not unanswered.

    A generator so that executemany writes each cost row as soon as it is made: the row is
    freed at once and its memory reused for the next, instead of millions of tuples
    scattered over the heap before the first is written (a third of the write time).

    This is the hot loop, written for speed: the month's day-independent answers first
    (MonthView), a cache per (number, channel, day) or (account, day) for the numbers and
    plans that change during the month, one walk over the union of prefixes for all tariffs
    of a call, and each rate unpacked from one tuple. It computes exactly what
    tariffs.billed_seconds and Rate.amount say.
    """
    accounts = caches.setdefault("accounts", {})
    plans = caches.setdefault("plans", {})
    views = caches.setdefault("views", {})
    route_cache = ref.route_cache
    route_tariff = ref.route_tariff
    rates_for = ref.rates_for
    resolved_get = ref.resolved.get  # union prefix -> its rates; every prefix is there
    prefix_lengths = ref.prefix_lengths
    account_for = ref.account_for
    lo = hi = ""
    month_numbers: dict = {}
    month_plans: dict = {}
    unanswered = written = total = 0
    for log_id, calldate, src, dst, channel, dstchannel, billsec in rows:
        if billsec <= 0:
            if billsec == 0:
                unanswered += 1
            continue
        if not lo <= calldate < hi:
            lo, hi = _month_bounds(calldate)
            view = views.get(lo)
            if view is None:
                view = views[lo] = ref.month_view(lo, hi)
            month_numbers, month_plans = view.numbers, view.plans
        # SPEC 7.2: the account of src on the call date, else of the channel
        account = month_numbers.get(src)
        if not account:
            by_src = account == ""  # src's account changes during the month
            if not by_src:  # src has no account this month: the channel's, if any
                account = month_numbers.get(channel)
            if account == "":  # on the call's day; caches are small (numbers that change)
                day = calldate[:10]
                key = (src if by_src else "", channel, day)
                account = accounts.get(key, _MISSING)
                if account is _MISSING:
                    found = account_for(src, day) if by_src else None
                    account = accounts[key] = found or account_for(channel, day)
        # SPEC 7.3: the plan tariffs of the account that day, plus the route tariff
        if account is None:
            unrated.append((log_id, "", "unknown account"))
            names: tuple[str, ...] = ()
            account = ""
        else:
            names = month_plans.get(account, ())
            if names is None:  # the plans change during the month
                day = calldate[:10]
                names = plans.get((account, day))
                if names is None:
                    names = plans[(account, day)] = ref.plan_tariffs(account, day)
            if not names:
                unrated.append((log_id, "", "no tariff"))
        route = route_cache.get(dstchannel, _MISSING)
        if route is _MISSING:
            route = route_tariff(dstchannel)
        if route is not None and route not in names:
            names = names + (route,)
        else:  # a plan tariff that is also the route tariff is rated once, as the plan
            route = None
        if not names:
            continue
        # SPEC 7.4: the longest prefix, for every tariff of the call at once (Reference.rates_for)
        for k in prefix_lengths:
            found = resolved_get(dst[:k])
            if found is not None:
                break
        else:
            found = rates_for(dst)
        for name in names:
            hot = found[name]
            if hot is None:
                unrated.append((log_id, name, "no rate"))
                continue
            (free_seconds, first, step, bucket, bucket_size, direction, prefix,
             fee_m, price_m, divisor, rate) = hot
            # SPEC 7.5: billed seconds
            if billsec <= free_seconds:
                billed = 0
            elif billsec <= first:
                billed = first
            else:
                billed = first + -(-(billsec - first) // step) * step
            # SPEC 7.6: the bucket pays first
            free = 0
            if bucket is not None and billed:
                ckey = (account, name, bucket)
                used = counters.get(ckey, 0)
                free = bucket_size - used
                if free > billed:
                    free = billed
                if free > 0:
                    counters[ckey] = used + free
                else:
                    free = 0
            # SPEC 7.7: connect fee + charged seconds x price / 60, rounded once
            if divisor:
                amount = (fee_m + (billed - free) * price_m) // divisor
            else:
                amount = rate.amount(billed - free)
            written += 1
            total += amount
            yield (log_id, name, account, direction, prefix, dst, billed, free, amount,
                   "route" if name == route else "plan")
    tally[0] += unanswered
    tally[1] += written
    tally[2] += total


def _store(conn: apsw.Connection, costs: Iterable[tuple], unrated: list, counters: dict,
           before: dict, tally: list[int]) -> RatingResult:
    conn.executemany(INSERT_COST, costs)  # runs the rating loop: costs is its generator
    conn.executemany(INSERT_UNRATED, unrated)
    conn.executemany(WRITE_COUNTER, [(*k, v) for k, v in counters.items() if before.get(k) != v])
    result = RatingResult(unanswered=tally[0], costs=tally[1], amount=tally[2])
    result.unrated.update(u[2] for u in unrated)
    return result


@contextlib.contextmanager
def _no_gc() -> Iterator[None]:
    """The cycle collector off for a run: the rows read, the cost rows and the caches are
    millions of tuples without cycles, and the collector would walk them again and again
    (a quarter of a force run's time)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _rate_chunk(conn, rows: list, ref, counters, before, rules, caches) -> RatingResult:
    """Rate ``rows`` and write the results as it goes (force: inside its transaction)."""
    unrated: list = []
    tally = [0, 0, 0]
    source = _normalized(rows, rules, unrated) if rules is not None else rows
    costs = rate_calls(source, ref, counters, unrated, caches, tally)
    result = _store(conn, costs, unrated, counters, before, tally)
    result.calls = len(rows)
    return result


@dataclass
class _Batch:
    """One batch of an incremental run, rated in memory, not yet written."""
    rows: list
    before: dict           # the counters it started from
    counters: dict         # the counters after it
    costs: list
    unrated: list
    tally: list


def _rate_in_memory(rows: list, counters: dict, ref, rules, caches) -> _Batch:
    unrated: list = []
    tally = [0, 0, 0]
    after = dict(counters)
    source = _normalized(rows, rules, unrated) if rules is not None else rows
    costs = list(rate_calls(source, ref, after, unrated, caches, tally))
    return _Batch(rows, counters, after, costs, unrated, tally)


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
               on_progress: Callable[[int], None] | None = None) -> RatingResult:
    """Rate the new calls of a dataset, oldest first, one write transaction per batch.

    Each batch is rated with no lock held, from one read snapshot of the first new calls
    and the counters. Then a write transaction checks that the snapshot still holds (the
    new calls up to the last one read are exactly those rated, so no other run rated them
    and no late call slipped in before them, and the counters are unchanged) and writes
    the results; if anything changed, it reads and rates the batch again inside the lock.
    Either way a call is rated once, from the counters left by the calls before it. The
    write lock is held only for the writing, and a collector waiting for it gets it while
    the next batch is being rated (its busy handler polls at least every 100 ms).
    """
    total = RatingResult()
    caches: dict = {}
    select = (SELECT_CALLS_FULL if rules is not None else SELECT_CALLS) + \
        " WHERE is_new = 1 ORDER BY calldate, id LIMIT ?"
    with _no_gc():
        while True:
            with db.read_transaction(conn):
                rows = conn.execute(select, (batch_size,)).fetchall()
                counters = _read_counters(conn) if rows else {}
            if not rows:
                break
            batch = _rate_in_memory(rows, counters, ref, rules, caches)
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
        ids = [r[0] for r in conn.execute(f"SELECT id FROM telephony_log {NEW_UP_TO} "
                                          "ORDER BY calldate, id", (last[1], last[0]))]
        if ids != [r[0] for r in batch.rows] or _read_counters(conn) != batch.before:
            rows = conn.execute(select, (batch_size,)).fetchall()  # changed: again, locked
            if not rows:
                return 0
            batch = _rate_in_memory(rows, _read_counters(conn), ref, rules, caches)
            last = rows[-1]
        result = _store(conn, batch.costs, batch.unrated, batch.counters, batch.before,
                        batch.tally)
        result.calls = len(batch.rows)
        conn.execute(f"UPDATE telephony_log SET is_new = 0 {NEW_UP_TO}", (last[1], last[0]))
    total.add(result)
    return len(batch.rows)


def force_month(conn: apsw.Connection, ref: Reference, rules=None, chunk_size: int = BATCH,
                on_progress: Callable[[int], None] | None = None) -> RatingResult:
    """Delete the month's results and rate every call again, in one transaction."""
    total = RatingResult()
    caches: dict = {}
    counters: dict = {}
    select = (SELECT_CALLS_FULL if rules is not None else SELECT_CALLS) + " ORDER BY calldate, id"
    with _no_gc(), db.write_transaction(conn):
        conn.execute("DELETE FROM telephony_cost")
        conn.execute("DELETE FROM telephony_unrated")
        conn.execute("DELETE FROM telephony_counter")
        cursor = conn.execute(select)
        while True:
            rows = list(itertools.islice(cursor, chunk_size))
            if not rows:
                break
            before = dict(counters)
            total.add(_rate_chunk(conn, rows, ref, counters, before, rules, caches))
            if on_progress:
                on_progress(len(rows))
        conn.execute("UPDATE telephony_log SET is_new = 0 WHERE is_new = 1")
    return total
