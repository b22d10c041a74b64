"""SPEC 7.5-7.7 for a whole batch of resolved calls at once, inside SQLite.

Binding the ten values of a cost row from Python costs more than SQLite's own work of
storing it, and there are two or three cost rows per call. So rating binds one short row
per call (mbg.rating_calls.resolve_calls) into a temporary table, and one INSERT...SELECT
joins it with the plans of the run (each with its rates, copied once) and writes every
cost row:

- billed seconds (7.5) is a CASE on the rate's free seconds and increments;
- the bucket seconds (7.6) come from rating_calls.use_buckets (in Python, as they depend
  on the calls before; once a bucket is used up that is one lookup per call);
- the amount (7.7) is one integer floor division by the rate's divisor
  (tariffs.Rate._make_hot turns down, up and half-up rounding into one), or for half-even
  the quotient plus the rounding of the remainder.

Integer arithmetic in SQLite is 64-bit and turns into floating point on overflow, so a
batch is priced here only when every number fits: rates whose numerators times 10**9
seconds stay below 2**63 (``rate_fits``), and calls of at most 10**9 seconds (31 years).
Anything else is priced by rating_calls.cost_rows, exact at any size.
"""

from __future__ import annotations

import itertools
from operator import itemgetter

import apsw

from .rating_calls import PlanRegistry
from .tariffs import Rate

MAX_BILLSEC = 10**9
_INT64 = 2**63 - 1

_TEMP_TABLES = (
    # plan -> its rates in order, each with its role; bucket: the rate draws on a bucket
    "CREATE TEMP TABLE IF NOT EXISTS rating_plans (plan INTEGER, pos INTEGER, tariff TEXT, "
    "role TEXT, direction TEXT, prefix TEXT, free_seconds INTEGER, first INTEGER, "
    "step INTEGER, fee INTEGER, price INTEGER, divisor INTEGER, denominator INTEGER, "
    "past INTEGER, "
    "bucket INTEGER, PRIMARY KEY (plan, pos)) WITHOUT ROWID",
    # the batch: seq is the rating order, 1 for the first call (the table is emptied first)
    "CREATE TEMP TABLE IF NOT EXISTS rating_calls (seq INTEGER PRIMARY KEY, log_id INTEGER, "
    "account TEXT, number TEXT, billsec INTEGER, plan INTEGER)",
    # seconds a call takes from the bucket of the rate at position pos of its plan
    "CREATE TEMP TABLE IF NOT EXISTS rating_free (seq INTEGER, pos INTEGER, free INTEGER, "
    "PRIMARY KEY (seq, pos)) WITHOUT ROWID",
)

# past = step - 1 - first: first + ceil((billsec - first) / step) * step in fewer steps
_BILLED = ("CASE WHEN c.billsec <= r.free_seconds THEN 0 WHEN c.billsec <= r.first THEN r.first "
           "ELSE r.first + (c.billsec + r.past) / r.step * r.step END")

# In the batch's order (CROSS JOIN fixes the join order: cost rows come in log_id order).
# n = fee + charged * price; half-even (divisor 0): n / d, plus 1 above the half, and at
# the half only when the quotient is odd. A plain INSERT: a cost row of a call being
# rated exists only if someone set is_new back by hand (see write).
_COSTS = f"""
INSERT INTO main.telephony_cost (log_id, tariff, account, direction, prefix, number,
  seconds, bucket_seconds, amount, role)
SELECT log_id, tariff, account, direction, prefix, number, billed, free,
  CASE WHEN divisor THEN (fee + (billed - free) * price) / divisor
  ELSE (fee + (billed - free) * price) / denominator
       + CASE WHEN 2 * ((fee + (billed - free) * price) % denominator) > denominator THEN 1
              WHEN 2 * ((fee + (billed - free) * price) % denominator) < denominator THEN 0
              ELSE ((fee + (billed - free) * price) / denominator) & 1 END
  END, role
FROM (SELECT c.log_id, r.tariff, c.account, r.direction, r.prefix, c.number, r.role, r.fee,
             r.price, r.divisor, r.denominator, {_BILLED} AS billed,
             CASE WHEN r.bucket THEN coalesce((SELECT f.free FROM temp.rating_free f
                                               WHERE f.seq = c.seq AND f.pos = r.pos), 0)
                  ELSE 0 END AS free
      FROM temp.rating_calls c CROSS JOIN temp.rating_plans r ON r.plan = c.plan)
"""

_INSERT_CALL = "INSERT INTO temp.rating_calls (log_id, account, number, billsec, plan) VALUES "
CALLS_AT_ONCE = 20
_INSERT_CALLS_AT_ONCE = _INSERT_CALL + ",".join(["(?,?,?,?,?)"] * CALLS_AT_ONCE)
_INSERT_CALL += "(?,?,?,?,?)"

# The amounts of the cost rows just written (RETURNING would cost more than these):
# those of the batch's range of log ids, when that range holds no other rows (the usual
# case: calls arrive in time order, so ids follow calldate), else a lookup per call.
# RANGE_TOTAL counts and adds them up in one pass; the other two are its exact way when
# sum() overflows.
RANGE_TOTAL = ("SELECT count(*), coalesce(sum(amount), 0) FROM main.telephony_cost "
               "WHERE log_id BETWEEN ?1 AND ?2")
RANGE_AMOUNTS = "SELECT amount FROM main.telephony_cost WHERE log_id BETWEEN ?1 AND ?2"
RANGE_ROWS = "SELECT count(*) FROM main.telephony_cost WHERE log_id BETWEEN ?1 AND ?2"
BATCH_AMOUNTS = ("SELECT t.amount FROM temp.rating_calls c "
                 "CROSS JOIN main.telephony_cost t ON t.log_id = c.log_id")


def sum_amounts(conn: apsw.Connection, amounts: str, bindings: tuple = ()) -> int:
    """The sum of the query ``amounts`` (one column), exact: SQLite's sum() stops at
    2**63 with an error; a total that large is added up in Python."""
    try:
        return conn.execute(f"SELECT coalesce(sum(amount), 0) FROM ({amounts})",
                            bindings).fetchall()[0][0]
    except apsw.SQLError:  # integer overflow
        return sum(amount for (amount,) in conn.execute(amounts, bindings))


def batch_amount(conn: apsw.Connection, rows: int) -> int:
    """The total of the ``rows`` cost rows just written for the calls of temp.rating_calls."""
    lo, hi = conn.execute("SELECT min(log_id), max(log_id) FROM temp.rating_calls").fetchall()[0]
    try:
        count, total = conn.execute(RANGE_TOTAL, (lo, hi)).fetchall()[0]
    except apsw.SQLError:  # integer overflow (see sum_amounts)
        count, total = conn.execute(RANGE_ROWS, (lo, hi)).fetchall()[0][0], None
    if count != rows:
        return sum_amounts(conn, BATCH_AMOUNTS)
    return total if total is not None else sum_amounts(conn, RANGE_AMOUNTS, (lo, hi))


def rate_fits(rate: Rate) -> bool:
    """Whether every amount of this rate, for calls up to MAX_BILLSEC, fits in 64 bits."""
    fee, price, divisor = rate.hot[7], rate.hot[8], rate.hot[9] or rate.denominator
    longest = MAX_BILLSEC + rate.first + rate.next
    return fee + longest * price <= _INT64 and 2 * (fee + longest * price) <= _INT64 \
        and divisor <= _INT64 and longest <= _INT64


class SqlCosting:
    """The temporary tables of one connection and what of a PlanRegistry is in them."""

    def __init__(self, conn: apsw.Connection) -> None:
        self.conn = conn
        # A batch's temp tables are a few MB: in the temp cache, never written to a file
        conn.execute("PRAGMA temp.cache_size = -65536")
        self.registry: PlanRegistry | None = None  # None: the temp tables are to be made
        self.plans_sent = 0
        self.rows_sent = 0  # rows of temp.rating_plans
        self.fits = True  # every rate sent so far fits (rate_fits)

    def _send_plans(self, registry: PlanRegistry) -> bool:
        """Copy the plans made since the last batch into the temp table. False, and
        nothing sent, if a rate does not fit: from then on Python prices."""
        if registry is self.registry and self._rows_in_table() != self.rows_sent:
            self.registry = None  # a transaction rolled back took what was sent in it
        if registry is not self.registry:  # another registry's plans, or none: start again
            for sql in _TEMP_TABLES:
                self.conn.execute(sql)
            self.conn.execute("DELETE FROM temp.rating_plans")
            self.registry, self.plans_sent, self.rows_sent, self.fits = registry, 0, 0, True
        new = registry.plans[self.plans_sent:]
        self.fits = self.fits and all(rate_fits(hot[10]) for plan in new for _, _, hot in plan.rated)
        if not self.fits:
            return False
        rows = [(plan.plan_id, pos, name, role, rate.direction, rate.prefix, rate.free_seconds,
                 rate.first, rate.next, hot[7], hot[8], hot[9], rate.denominator,
                 rate.next - 1 - rate.first,
                 rate.bucket is not None)
                for plan in new for pos, (name, role, hot) in enumerate(plan.rated)
                for rate in (hot[10],)]
        self.conn.executemany("INSERT INTO temp.rating_plans VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                              rows)
        self.plans_sent = len(registry.plans)
        self.rows_sent += len(rows)
        return True

    def _rows_in_table(self) -> int:
        try:
            return self.conn.execute("SELECT count(*) FROM temp.rating_plans").fetchall()[0][0]
        except apsw.SQLError:  # no such table: made in a transaction rolled back since
            return -1

    def write(self, calls: list[tuple], registry: PlanRegistry,
              taken: list[tuple[int, int, int]], amount: bool = True) -> tuple[int, int] | None:
        """Price resolved calls with the bucket seconds ``taken`` (rating_calls.use_buckets)
        and write their cost rows, inside the caller's write transaction: (cost rows, their
        amount, or 0 unless ``amount``). None, with nothing written, when a number is too
        large for SQLite's integers (see the module docstring)."""
        conn = self.conn
        if max(map(itemgetter(3), calls), default=0) > MAX_BILLSEC \
                or not self._send_plans(registry):
            return None
        conn.execute("DELETE FROM temp.rating_calls")
        conn.execute("DELETE FROM temp.rating_free")
        # CALLS_AT_ONCE calls a statement: executemany's cost is mostly per statement
        flat = list(itertools.chain.from_iterable(calls))
        whole = len(flat) - len(flat) % (5 * CALLS_AT_ONCE)
        conn.executemany(_INSERT_CALLS_AT_ONCE, [flat[i:i + 5 * CALLS_AT_ONCE]
                                                 for i in range(0, whole, 5 * CALLS_AT_ONCE)])
        conn.executemany(_INSERT_CALL, calls[whole // 5:])
        conn.executemany("INSERT INTO temp.rating_free VALUES (?,?,?)",
                         [(i + 1, pos, free) for i, pos, free in taken])
        try:
            conn.execute(_COSTS)
        except apsw.ConstraintError:  # old rows of these calls (see _COSTS): replaced
            conn.execute("DELETE FROM main.telephony_cost WHERE log_id IN "
                         "(SELECT log_id FROM temp.rating_calls)")
            conn.execute(_COSTS)
        rows = conn.changes()
        return rows, batch_amount(conn, rows) if amount else 0
