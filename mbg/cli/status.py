"""mbg status [MONTH] and mbg explain MONTH CALL_ID (SPEC section 9)."""

from __future__ import annotations

from pathlib import Path

import click

from .. import db, explain, mediation
from ..dataset import dataset_path
from ..dates import parse_month
from ..errors import InputError
from ..root import Root
from ..tariffs import load_reference
from .options import dataset_dir, dataset_option, handle_errors, root_option
from .rating import rules_option


@click.command("status")
@click.argument("month", required=False)
@dataset_option
@root_option
@handle_errors
def status_command(month: str | None, dataset: Path | None, root: Root) -> None:
    """Each dataset's calls, new, rated, unanswered, costs and unrated rows by reason.

    MONTH (YYYY-MM or any day of it) limits the table to that month's dataset; without
    it, every dataset file of the folder is listed. Read-only: safe while rating runs.
    """
    folder = dataset_dir(root, dataset)
    if month is not None:
        path = dataset_path(folder, parse_month(month))
        if not path.exists():
            raise InputError(f"{path}: no dataset for {parse_month(month):%Y-%m}")
        paths = [path]
    else:
        paths = sorted(folder.glob("[0-9][0-9][0-9][0-9]-[0-9][0-9]-01.db"))
    statuses = []
    for path in paths:
        conn = db.connect(path, "dataset", readonly=True)
        try:
            statuses.append(explain.dataset_status(conn, path))
        finally:
            conn.close()
    for line in explain.format_status(statuses, root.billing_settings().money_decimals):
        click.echo(line)


@click.command("explain")
@click.argument("month")
@click.argument("call_id", type=int)
@dataset_option
@rules_option
@root_option
@handle_errors
def explain_command(month: str, call_id: int, dataset: Path | None, root: Root,
                    rules_path: Path | None) -> None:
    """How one call was priced, step by step: account, tariffs, prefix, billed seconds,
    bucket, exact amount and its rounding, beside the stored result.

    MONTH is YYYY-MM or any day of it; CALL_ID is the call's telephony_log.id.
    """
    first = parse_month(month)
    root.require()
    settings = root.billing_settings()
    path = dataset_path(dataset_dir(root, dataset), first)
    if not path.exists():
        raise InputError(f"{path}: no dataset for {first:%Y-%m}")
    rules = mediation.load_optional_rules(root.mediation_file, rules_path)
    billing = db.connect(root.billing_db, "billing", readonly=True)
    try:
        ref = load_reference(billing, settings.money_decimals, settings.rounding)
    finally:
        billing.close()
    conn = db.connect(path, "dataset", readonly=True)
    try:
        with db.read_transaction(conn):
            lines = explain.explain_call(conn, ref, call_id, settings.money_decimals,
                                         settings.rounding, rules)
    finally:
        conn.close()
    for line in lines:
        click.echo(line)
