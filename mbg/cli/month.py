"""month MONTH: every day of a month, one per line (for `| xargs`)."""

from __future__ import annotations

import click

from ..dates import month_days, parse_month
from .options import handle_errors


@click.command("month")
@click.argument("month")
@handle_errors
def month_command(month: str) -> None:
    """Print every day of MONTH (YYYY-MM or any day of it), one per line."""
    for day in month_days(parse_month(month)):
        click.echo(day.isoformat())
