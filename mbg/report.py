"""The month's bill (SPEC section 9, ``mbg report``): data only, money in minor units.

Two kinds of rows appear in ``telephony_cost``, told apart by its ``role`` column, which
rating writes from the reference data of the call's day (so later edits of services or
routes never rewrite the report of a past month):

- ``plan``: a tariff of the services the account had that day: what the customer pays;
- ``route``: the provider's tariff chosen by the outgoing channel: what carrying the call
  costs the operator.

An account's ``total`` is what the customer owes: its calls under plan tariffs plus
its subscription charges. Route tariff amounts are summed apart as ``cost``. So for a
month, grand ``total`` + grand ``cost`` = sum(telephony_cost.amount) + sum(charges.amount).

Calls rated under a route tariff whose caller is no customer (``unknown account``)
belong to the account ``''``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path

import apsw

from . import db
from .dataset import dataset_path
from .dates import next_month
from .errors import InputError

PLAN = "plan"
ROUTE = "route"


@dataclass
class TariffLine:
    """The calls of one account under one tariff and direction."""

    tariff: str
    kind: str  # PLAN or ROUTE
    direction: str
    calls: int
    seconds: int  # billed seconds
    bucket_seconds: int  # of those, paid by a bucket (free minutes)
    amount: int  # minor units


@dataclass
class ChargeLine:
    """The subscription charges of one account for one service in the month."""

    service: str
    name: str
    days: int
    amount: int


@dataclass
class CallLine:
    """One call under one tariff (a telephony_cost row with its telephony_log call)."""

    log_id: int
    calldate: str
    source: str
    src: str
    dst: str
    number: str
    billsec: int
    tariff: str
    kind: str
    direction: str
    prefix: str
    seconds: int
    bucket_seconds: int
    amount: int


@dataclass
class AccountReport:
    account: str
    name: str
    calls: int = 0  # distinct calls under plan tariffs
    tariffs: list[TariffLine] = field(default_factory=list)
    charges: list[ChargeLine] = field(default_factory=list)
    call_lines: list[CallLine] = field(default_factory=list)  # only with --account

    @property
    def seconds(self) -> int:
        return sum(t.seconds for t in self.tariffs if t.kind == PLAN)

    @property
    def calls_amount(self) -> int:
        return sum(t.amount for t in self.tariffs if t.kind == PLAN)

    @property
    def charges_amount(self) -> int:
        return sum(c.amount for c in self.charges)

    @property
    def total(self) -> int:
        return self.calls_amount + self.charges_amount

    @property
    def cost(self) -> int:
        return sum(t.amount for t in self.tariffs if t.kind == ROUTE)


@dataclass
class MonthReport:
    month: dt.date
    accounts: list[AccountReport]

    @property
    def calls(self) -> int:
        return sum(a.calls for a in self.accounts)

    @property
    def seconds(self) -> int:
        return sum(a.seconds for a in self.accounts)

    @property
    def calls_amount(self) -> int:
        return sum(a.calls_amount for a in self.accounts)

    @property
    def charges_amount(self) -> int:
        return sum(a.charges_amount for a in self.accounts)

    @property
    def total(self) -> int:
        return sum(a.total for a in self.accounts)

    @property
    def cost(self) -> int:
        return sum(a.cost for a in self.accounts)


def month_report(
    billing_db: Path, dataset_dir: Path, month: dt.date, account: str | None = None
) -> MonthReport:
    """The report of ``month``; with ``account``, that account only, with every call.

    A month without a dataset file or without charges is simply empty. Accounts are in
    name order ('', the calls of no customer, first). An account not in ``accounts``
    is an InputError; ``''`` is accepted (calls rated under route tariffs only).
    """
    billing = db.connect(billing_db, "billing", readonly=True)
    try:
        with db.read_transaction(billing):
            names = dict(billing.execute("SELECT account, name FROM accounts").fetchall())
            charges = _charges(billing, month, account)
    finally:
        billing.close()
    if account and account not in names:
        raise InputError(f"unknown account {account!r}")

    reports: dict[str, AccountReport] = {}

    def report_of(acc: str) -> AccountReport:
        if acc not in reports:
            reports[acc] = AccountReport(acc, names.get(acc, ""))
        return reports[acc]

    for acc, line in charges:
        report_of(acc).charges.append(line)

    path = dataset_path(dataset_dir, month)
    if path.exists():
        dataset = db.connect(path, "dataset", readonly=True)
        try:
            with db.read_transaction(dataset):
                for acc, line in _tariff_lines(dataset, account):
                    report_of(acc).tariffs.append(line)
                for acc, calls in _plan_calls(dataset, account):
                    report_of(acc).calls = calls
                if account in reports:
                    reports[account].call_lines = _call_lines(dataset, account)
        finally:
            dataset.close()

    return MonthReport(month, [reports[k] for k in sorted(reports)])


def _charges(
    billing: apsw.Connection, month: dt.date, account: str | None
) -> list[tuple[str, ChargeLine]]:
    rows = billing.execute(
        "SELECT c.account, c.service, coalesce(s.name, ''), count(*), sum(c.amount) "
        "FROM charges c LEFT JOIN services s ON s.service = c.service "
        "WHERE c.day >= ?1 AND c.day < ?2 AND (?3 IS NULL OR c.account = ?3) "
        "GROUP BY c.account, c.service ORDER BY c.account, c.service",
        (month.isoformat(), next_month(month).isoformat(), account),
    ).fetchall()
    return [(acc, ChargeLine(service, name, days, amount)) for acc, service, name, days, amount in rows]


def _tariff_lines(dataset: apsw.Connection, account: str | None) -> list[tuple[str, TariffLine]]:
    rows = dataset.execute(
        "SELECT account, tariff, role, direction, count(*), sum(seconds), sum(bucket_seconds), "
        "sum(amount) FROM telephony_cost WHERE (?1 IS NULL OR account = ?1) "
        "GROUP BY account, tariff, role, direction ORDER BY account, tariff, role, direction",
        (account,),
    ).fetchall()
    return [
        (acc, TariffLine(tariff, role, direction, calls, secs, bucket, amount))
        for acc, tariff, role, direction, calls, secs, bucket, amount in rows
    ]


def _plan_calls(dataset: apsw.Connection, account: str | None) -> list[tuple[str, int]]:
    # A call may be rated under several plan tariffs: count it once.
    return dataset.execute(
        "SELECT account, count(DISTINCT log_id) FROM telephony_cost "
        "WHERE (?1 IS NULL OR account = ?1) AND role = 'plan' GROUP BY account",
        (account,),
    ).fetchall()


def _call_lines(dataset: apsw.Connection, account: str) -> list[CallLine]:
    rows = dataset.execute(
        "SELECT c.log_id, l.calldate, l.source, l.src, l.dst, c.number, l.billsec, c.tariff, "
        "c.role, c.direction, c.prefix, c.seconds, c.bucket_seconds, c.amount "
        "FROM telephony_cost c JOIN telephony_log l ON l.id = c.log_id "
        "WHERE c.account = ? ORDER BY l.calldate, c.log_id, c.tariff",
        (account,),
    ).fetchall()
    return [
        CallLine(log_id, calldate, source, src, dst, number, billsec, tariff,
                 role, direction, prefix, seconds, bucket, amount)
        for (log_id, calldate, source, src, dst, number, billsec, tariff,
             role, direction, prefix, seconds, bucket, amount) in rows
    ]
