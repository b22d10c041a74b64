"""mbg load KIND FILE.csv and mbg dump KIND: the reference data of billing.db (SPEC section 5)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from .. import db, refdata
from ..root import Root
from .options import handle_errors, root_option, summary


@click.command("load")
@click.argument("kind", type=click.Choice(refdata.LOAD_ORDER))
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@root_option
@handle_errors
def load_command(kind: str, file: Path, root: Root) -> None:
    """Load a CSV file (header row required) of one KIND into billing.db.

    KIND is one of: accounts, numbers, tariffs, buckets, routes, services, subscriptions,
    schedule (load them in that order: references must exist). The file is loaded in one
    transaction: any bad row changes nothing and the error names the line and column.
    Rows with a key already present are replaced, so re-loading a file is idempotent.
    """
    root.require()
    decimals = root.billing_settings().money_decimals
    conn = db.connect(root.billing_db, "billing")
    try:
        result = refdata.load_file(conn, kind, file, decimals)
    finally:
        conn.close()
    summary(f"{file}: {kind}: read {result.rows}, inserted {result.inserted}, "
            f"replaced {result.replaced}")


@click.command("dump")
@click.argument("kind", type=click.Choice(refdata.DUMP_KINDS))
@root_option
@handle_errors
def dump_command(kind: str, root: Root) -> None:
    """Print one KIND of billing.db as CSV on stdout (loadable again by mbg load).

    Besides the loadable kinds, `charges` prints the daily charges (day, account, service,
    amount); `schedule` adds each entry's state (pending, done, failed) and reason.
    """
    root.require()
    decimals = root.billing_settings().money_decimals
    conn = db.connect(root.billing_db, "billing", readonly=True)
    try:
        refdata.dump_csv(conn, kind, decimals, sys.stdout)
    finally:
        conn.close()
