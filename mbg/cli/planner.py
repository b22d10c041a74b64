"""billing-planner-daily (mbg planner DAY): apply the service schedule due by a day."""

from __future__ import annotations

import click

from .. import db, planner
from ..dates import parse_day
from ..root import Root
from .options import handle_errors, root_option, summary


@click.command("planner")
@click.argument("day")
@click.option("--dry-run", is_flag=True, help="Print what would change and change nothing.")
@root_option
@handle_errors
def planner_command(day: str, dry_run: bool, root: Root) -> None:
    """Apply every schedule entry not yet done whose date is on or before DAY.

    Entries (start, stop, switch) are applied oldest date first, so missed days are
    caught up in order; each is marked done, or failed with its reason and tried again
    on the next run. One line per entry on stdout; exit 3 when any entry failed. Run it
    before billing-cost-daily for the same day.
    """
    when = parse_day(day)
    conn = db.connect(root.require().billing_db, "billing")
    try:
        outcomes = planner.run_planner(conn, when, dry_run)
    finally:
        conn.close()
    prefix = "would " if dry_run else ""
    for outcome in outcomes:
        if outcome.state == "done":
            click.echo(f"{outcome.entry}: {prefix}{'; '.join(outcome.changes)}")
        else:
            click.echo(f"{outcome.entry}: {'would fail' if dry_run else 'failed'}: {outcome.reason}")
    done = sum(o.state == "done" for o in outcomes)
    failed = len(outcomes) - done
    head = f"planner {when} (dry run, nothing changed)" if dry_run else f"planner {when}"
    summary(f"{head}: done {done}, failed {failed}")
    if failed:
        click.get_current_context().exit(3)
