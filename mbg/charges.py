"""Daily subscription charges (SPEC section 9): billing-cost-daily and its force variant.

For each day, every subscription active that day (start <= day and (stop empty or
day < stop)) is charged the service's ``daily_fee`` if it has one, else the day's share
of its ``monthly_fee``: day k of a month of N days gets
``floor(k*F/N) - floor((k-1)*F/N)`` minor units, so the shares of a full month add up to
F exactly, whatever F and N. A service with neither fee gives no charge row.

Decisions where the SPEC is silent:

- A day is "already charged" when billing.db holds any charge row for it. Such a day is
  skipped as a whole; a subscription added to a charged day afterwards (a late planner
  run, a corrected load) is charged only by a force run of that day. The skipped day's
  result counts such subscriptions (``DayResult.uncharged``), so the run can say so.
- Each day is one transaction: the check, the delete (force) and the inserts, so a day is
  either fully charged or not at all, and two runs at once cannot charge a day twice.
- A subscription whose service is not in ``services`` cannot be priced: it is reported
  (``DayResult.unknown``), never silently dropped, and the rest of the day is charged.
"""

from __future__ import annotations

import calendar
import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field

import apsw

from . import db


def daily_share(monthly_fee: int, day: dt.date) -> int:
    """The share of a monthly fee (minor units) charged on ``day``, by the floor formula."""
    n = calendar.monthrange(day.year, day.month)[1]
    k = day.day
    # Integer floor division: exact, no rounding anywhere (fees are never negative: the
    # load refuses them).
    return (k * monthly_fee) // n - ((k - 1) * monthly_fee) // n


def day_amount(monthly_fee: int | None, daily_fee: int | None, day: dt.date) -> int | None:
    """What a service costs on ``day``: its daily fee, else its monthly share; None: no fee."""
    if daily_fee is not None:
        return daily_fee
    if monthly_fee is not None:
        return daily_share(monthly_fee, day)
    return None


@dataclass
class DayResult:
    day: dt.date
    skipped: bool = False  # already charged, left as it was
    charges: int = 0  # rows written
    amount: int = 0  # their sum, minor units
    unknown: list[tuple[str, str, str]] = field(default_factory=list)  # (account, service, start)
    uncharged: int = 0  # skipped day: charges due now that the day's rows do not hold


_ACTIVE = (
    "SELECT s.account, s.service, s.start, v.service IS NOT NULL, v.monthly_fee, v.daily_fee "
    "FROM subscriptions s LEFT JOIN services v ON v.service = s.service "
    "WHERE s.start <= ?1 AND (s.stop IS NULL OR ?1 < s.stop) "
    "ORDER BY s.account, s.service, s.start"
)


def day_charges(conn: apsw.Connection, day: dt.date) -> tuple[list[tuple], list[tuple]]:
    """The charge rows (day, account, service, start, amount) due for ``day``, and the
    subscriptions that cannot be priced because their service is unknown."""
    text = day.isoformat()
    rows, unknown = [], []
    amounts: dict[str, int | None] = {}  # per service: many subscriptions share a few services
    for account, service, start, known, monthly_fee, daily_fee in conn.execute(_ACTIVE, (text,)):
        if not known:
            unknown.append((account, service, start))
            continue
        if service not in amounts:
            amounts[service] = day_amount(monthly_fee, daily_fee, day)
        if amounts[service] is not None:
            rows.append((text, account, service, start, amounts[service]))
    return rows, unknown


def is_charged(conn: apsw.Connection, day: dt.date) -> bool:
    """True when billing.db holds any charge of ``day``."""
    return bool(conn.execute("SELECT 1 FROM charges WHERE day = ? LIMIT 1", (day.isoformat(),)).fetchall())


def charge_day(conn: apsw.Connection, day: dt.date, force: bool = False) -> DayResult:
    """Charge one day in one transaction. Without ``force`` a charged day is skipped;
    with it, the day's charges are deleted and written again."""
    result = DayResult(day)
    with db.write_transaction(conn):
        if force:
            conn.execute("DELETE FROM charges WHERE day = ?", (day.isoformat(),))
        elif is_charged(conn, day):
            result.skipped = True
            result.uncharged = len(set(_keys(day_charges(conn, day)[0])) - set(_charged_keys(conn, day)))
            return result
        rows, result.unknown = day_charges(conn, day)
        conn.executemany(
            "INSERT INTO charges (day, account, service, start, amount) VALUES (?, ?, ?, ?, ?)", rows
        )
    result.charges = len(rows)
    result.amount = sum(row[4] for row in rows)
    return result


def _keys(rows: list[tuple]) -> list[tuple]:
    """(account, service, start, amount) of charge rows."""
    return [row[1:] for row in rows]


def _charged_keys(conn: apsw.Connection, day: dt.date) -> list[tuple]:
    return conn.execute(
        "SELECT account, service, start, amount FROM charges WHERE day = ?", (day.isoformat(),)
    ).fetchall()


def charge_days(conn: apsw.Connection, days: Iterable[dt.date], force: bool = False) -> list[DayResult]:
    """Charge each day (sorted, each once), one transaction per day."""
    return [charge_day(conn, day, force) for day in sorted(set(days))]


def schedule_due(conn: apsw.Connection, day: dt.date) -> int:
    """How many schedule entries due by ``day`` are not applied yet (the planner should
    run first, or the day is charged on yesterday's subscriptions)."""
    return conn.execute(
        "SELECT count(*) FROM schedule WHERE date <= ? AND state != 'done'", (day.isoformat(),)
    ).fetchall()[0][0]
