"""billing-cost-daily, billing-cost-daily-force (mbg cost [--force] DAY...)."""

from __future__ import annotations

import click

from .. import charges, db
from ..dates import parse_day
from ..money import format_minor
from ..root import Root
from .options import handle_errors, root_option, summary


def _cost(root: Root, days: tuple[str, ...], force: bool) -> None:
    # Every DAY is checked before any work: a bad one changes nothing.
    parsed = [parse_day(day) for day in days]
    root.require()
    decimals = root.billing_settings().money_decimals
    conn = db.connect(root.billing_db, "billing")
    try:
        for day in sorted(set(parsed)):
            due = charges.schedule_due(conn, day)
            if due:
                click.echo(
                    f"warning: {day}: {due} schedule entr{'y' if due == 1 else 'ies'} due by this "
                    "day not applied (run billing-planner-daily first)",
                    err=True,
                )
        results = charges.charge_days(conn, parsed, force)
    finally:
        conn.close()
    for result in results:
        if result.uncharged:
            click.echo(
                f"warning: {result.day}: already charged, but {result.uncharged} charge(s) due "
                f"now differ from it (subscriptions or fees changed since): "
                f"billing-cost-daily-force {result.day}",
                err=True,
            )
        for account, service, start in result.unknown:
            click.echo(
                f"warning: {result.day}: subscription {account} {service} (from {start}) "
                f"not charged: unknown service {service}",
                err=True,
            )
    done = [r for r in results if not r.skipped]
    skipped = len(results) - len(done)
    total = format_minor(sum(r.amount for r in done), decimals)
    unknown = sum(len(r.unknown) for r in done)
    text = (
        f"{'re-charged' if force else 'charged'} {len(done)} day(s): "
        f"{sum(r.charges for r in done)} charge(s), total {total}; skipped {skipped} day(s) already charged"
    )
    summary(text + (f"; {unknown} subscription(s) with an unknown service" if unknown else ""))


_DAYS = click.argument("days", nargs=-1, required=True, metavar="DAY...")


@click.command("cost")
@_DAYS
@click.option("--force", is_flag=True, help="Delete those days' charges and charge them again.")
@root_option
@handle_errors
def cost_command(days: tuple[str, ...], force: bool, root: Root) -> None:
    """Charge subscription fees for each DAY (YYYY-MM-DD).

    Every subscription active on the day pays the service's daily fee, else the day's
    share of its monthly fee (a full month adds up to the fee exactly). A day already
    charged is skipped; --force deletes its charges and charges it again. Each day is one
    transaction. Many days at once: billing-cost-daily $(month 2009-11-01 | xargs).
    """
    _cost(root, days, force)


@click.command("billing-cost-daily-force")
@_DAYS
@root_option
@handle_errors
def cost_force_command(days: tuple[str, ...], root: Root) -> None:
    """Re-charge each DAY from scratch: delete its charges and charge it again, in one
    transaction per day (the same as billing-cost-daily --force)."""
    _cost(root, days, True)
