"""The service planner (SPEC section 9): billing-planner-daily applies the schedule.

Every schedule entry not yet done whose date is on or before the given day is applied,
oldest date first, so a planner that missed days catches up in date order:

- ``start``: opens a subscription (account, service) from the entry's date;
- ``stop``: closes the subscription of that service active on the date, at the date
  (stop is exclusive: the date itself is no longer charged);
- ``switch``: stops ``service`` and starts ``new_service`` on the date, both or neither,
  so on the switch day only the new service is active.

Decisions where the SPEC is silent:

- Order: (date, account, action, service), with the actions ranked stop, switch, start,
  so that closing comes before opening on the same date (stop A + start A on one date is a
  re-subscription, not an "already subscribed" failure).
- Each entry is applied in its own transaction together with its new state, so a killed
  run leaves every entry either applied and done or untouched.
- A failed entry changes nothing but its state ('failed') and reason. It is tried again
  on every later run until it succeeds (an operator fixes the data, e.g. loads the missing
  service, and the next run applies it); a run where any entry fails exits 3. A retried
  entry is applied at its own date, so days charged meanwhile need billing-cost-daily-force.
- A start fails when the account or service is unknown or when a subscription of that
  service overlaps the new one (open, or ending after the date). A stop fails when no
  subscription of that service is active on the date. An entry whose effect is already
  in the data (a subscription open from exactly that date; one closed at exactly that
  date, as an operator may load them) is done with nothing to change.
- ``dry_run`` applies everything inside one transaction and rolls it back: the outcomes
  are exactly those of a real run, and nothing changes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import apsw

from . import db

ACTION_RANK = {"stop": 0, "switch": 1, "start": 2}


@dataclass(frozen=True)
class Entry:
    date: str
    account: str
    action: str
    service: str
    new_service: str | None

    @property
    def key(self) -> tuple[str, str, str, str]:
        return (self.date, self.account, self.action, self.service)

    def __str__(self) -> str:
        text = f"{self.date} {self.account} {self.action} {self.service}"
        return text + f" -> {self.new_service or '?'}" if self.action == "switch" else text


@dataclass
class Outcome:
    entry: Entry
    state: str  # 'done' or 'failed'
    reason: str = ""
    changes: list[str] = field(default_factory=list)


class EntryFailed(Exception):
    """An entry that cannot be applied; the message is the short reason stored with it."""


_SELECT = "SELECT date, account, action, service, new_service FROM schedule "


def due_entries(conn: apsw.Connection, day: dt.date) -> list[Entry]:
    """The entries not done with date <= day, in the order they are applied."""
    rows = conn.execute(_SELECT + "WHERE date <= ? AND state != 'done'", (day.isoformat(),))
    entries = [Entry(*row) for row in rows]
    entries.sort(key=lambda e: (e.date, e.account, ACTION_RANK.get(e.action, 9), e.service))
    return entries


def _known(conn: apsw.Connection, table: str, column: str, value: str) -> bool:
    # table and column are constants of this module, never data.
    return bool(conn.execute(f"SELECT 1 FROM {table} WHERE {column} = ?", (value,)).fetchall())


def start_subscription(conn: apsw.Connection, account: str, service: str, date: str) -> str:
    """Open (account, service) from ``date``; return the change, or raise EntryFailed."""
    if not _known(conn, "accounts", "account", account):
        raise EntryFailed(f"unknown account {account}")
    if not _known(conn, "services", "service", service):
        raise EntryFailed(f"unknown service {service}")
    overlap = conn.execute(
        "SELECT start, stop FROM subscriptions WHERE account = ? AND service = ? "
        "AND (stop IS NULL OR stop > ?) ORDER BY start LIMIT 1",
        (account, service, date),
    ).fetchall()
    if overlap == [(date, None)]:
        return f"{account} {service} already open from {date}"  # loaded so: nothing to do
    if overlap:
        raise EntryFailed(f"already subscribed to {service} from {overlap[0][0]}")
    conn.execute(
        "INSERT INTO subscriptions (account, service, start, stop) VALUES (?, ?, ?, NULL)",
        (account, service, date),
    )
    return f"open {account} {service} from {date}"


def stop_subscription(conn: apsw.Connection, account: str, service: str, date: str) -> str:
    """Close the subscription of (account, service) active on ``date`` at ``date``."""
    if not _known(conn, "services", "service", service):
        raise EntryFailed(f"unknown service {service}")
    active = conn.execute(
        "SELECT start FROM subscriptions WHERE account = ? AND service = ? "
        "AND start <= ?3 AND (stop IS NULL OR stop > ?3) ORDER BY start DESC LIMIT 1",
        (account, service, date),
    ).fetchall()
    if not active:
        closed = conn.execute(
            "SELECT 1 FROM subscriptions WHERE account = ? AND service = ? AND stop = ?",
            (account, service, date),
        ).fetchall()
        if closed:
            return f"{account} {service} already closed at {date}"  # loaded so: nothing to do
        raise EntryFailed(f"no open subscription of {service} on {date}")
    start = active[0][0]
    if start == date:
        # Closed on its first day it is never active: drop it rather than keep an empty
        # [date, date) row, which `mbg load` would refuse when the dump is loaded again.
        conn.execute(
            "DELETE FROM subscriptions WHERE account = ? AND service = ? AND start = ?",
            (account, service, start),
        )
        return f"cancel {account} {service} (from {start}, never active)"
    conn.execute(
        "UPDATE subscriptions SET stop = ? WHERE account = ? AND service = ? AND start = ?",
        (date, account, service, start),
    )
    return f"close {account} {service} (from {start}) at {date}"


def apply_entry(conn: apsw.Connection, entry: Entry) -> list[str]:
    """Apply one entry inside the caller's transaction; return the changes made.

    On EntryFailed nothing of the entry is left in the database (a savepoint undoes the
    first half of a switch whose second half fails).
    """
    conn.execute("SAVEPOINT entry")
    try:
        changes = _apply(conn, entry)
    except BaseException:
        conn.execute("ROLLBACK TO entry")
        conn.execute("RELEASE entry")
        raise
    conn.execute("RELEASE entry")
    return changes


def _apply(conn: apsw.Connection, entry: Entry) -> list[str]:
    if entry.action == "start":
        return [start_subscription(conn, entry.account, entry.service, entry.date)]
    if entry.action == "stop":
        return [stop_subscription(conn, entry.account, entry.service, entry.date)]
    if entry.action == "switch":
        if not entry.new_service:
            raise EntryFailed("switch without new_service")
        if entry.new_service == entry.service:
            raise EntryFailed(f"switch from {entry.service} to itself")
        return [
            stop_subscription(conn, entry.account, entry.service, entry.date),
            start_subscription(conn, entry.account, entry.new_service, entry.date),
        ]
    raise EntryFailed(f"unknown action {entry.action}")


def _apply_and_mark(conn: apsw.Connection, entry: Entry) -> Outcome | None:
    """Apply an entry and store its state; None if another run has done it meanwhile."""
    state = conn.execute(
        "SELECT state FROM schedule WHERE date = ? AND account = ? AND action = ? AND service = ?",
        entry.key,
    ).fetchall()
    if not state or state[0][0] == "done":
        return None
    try:
        outcome = Outcome(entry, "done", changes=apply_entry(conn, entry))
    except EntryFailed as e:
        outcome = Outcome(entry, "failed", reason=str(e))
    conn.execute(
        "UPDATE schedule SET state = ?, reason = ? "
        "WHERE date = ? AND account = ? AND action = ? AND service = ?",
        (outcome.state, outcome.reason, *entry.key),
    )
    return outcome


class _DryRun(Exception):
    """Raised to roll back the transaction of a dry run."""


def run_planner(conn: apsw.Connection, day: dt.date, dry_run: bool = False) -> list[Outcome]:
    """Apply every entry due by ``day``; return what happened to each, in order."""
    outcomes: list[Outcome] = []
    if dry_run:
        try:
            with db.write_transaction(conn):
                for entry in due_entries(conn, day):
                    outcome = _apply_and_mark(conn, entry)
                    if outcome:
                        outcomes.append(outcome)
                raise _DryRun
        except _DryRun:
            pass
        return outcomes
    for entry in due_entries(conn, day):
        with db.write_transaction(conn):
            outcome = _apply_and_mark(conn, entry)
        if outcome:
            outcomes.append(outcome)
    return outcomes
