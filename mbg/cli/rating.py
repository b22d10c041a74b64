"""telephony-rating-monthly, telephony-rating-monthly-force and mbg rate [--force] MONTH."""

from __future__ import annotations

from pathlib import Path

import click

from .. import db, mediation, rating
from ..dataset import dataset_path
from ..dates import parse_month
from ..money import format_minor
from ..root import Root
from ..tariffs import load_reference
from .options import dataset_dir, dataset_option, handle_errors, progress, root_option, summary


def run_rating(month_text: str, force: bool, dataset: Path | None, root: Root,
               rules_path: Path | None = None) -> None:
    """Rate one month; the one-line summary on stderr. Everything is checked before any write.

    ``rules_path``: a mediation rules file (--rules); by default etc/mediation.toml when
    it exists. A bad rules file stops here, before anything is written.
    """
    month = parse_month(month_text)
    root.require()
    settings = root.billing_settings()
    rules = mediation.load_optional_rules(root.mediation_file, rules_path)
    path = dataset_path(dataset_dir(root, dataset), month)
    if not path.exists():
        # Not an error: cron rates the current month before its first call arrives.
        summary(f"{path}: no dataset for {month:%Y-%m}, nothing to rate")
        return
    conn = db.connect(path, "dataset")
    try:
        new = rating.count_new(conn)
        if not force and not new:
            # cron every 30 s, nothing arrived: no need to read the reference data
            summary(rating_summary(path, rating.RatingResult(), settings.money_decimals, force))
            return
        billing = db.connect(root.billing_db, "billing", readonly=True)
        try:
            ref = load_reference(billing, settings.money_decimals, settings.rounding)
        finally:
            billing.close()
        if force:
            total = conn.execute("SELECT count(*) FROM telephony_log").fetchall()[0][0]
            with progress("re-rating", total) as bar:
                result = rating.force_month(conn, ref, rules, on_progress=bar.advance)
        else:
            with progress("rating", new) as bar:
                result = rating.rate_month(conn, ref, rules, on_progress=bar.advance)
    finally:
        conn.close()
    summary(rating_summary(path, result, settings.money_decimals, force))


def rating_summary(path: Path, result: rating.RatingResult, decimals: int, force: bool) -> str:
    unrated = sum(result.unrated.values())
    reasons = ", ".join(f"{reason} {n}" for reason, n in sorted(result.unrated.items()))
    return (f"{path.name}: {'re-rated' if force else 'rated'} {result.calls} calls "
            f"({result.unanswered} unanswered), {result.costs} costs "
            f"{format_minor(result.amount, decimals)}, unrated {unrated}"
            + (f" ({reasons})" if reasons else ""))


def rules_option(func):
    """--rules FILE: mediation rules instead of $MBGROOT/etc/mediation.toml."""
    return click.option(
        "--rules", "-rules", "rules_path", default=None,
        type=click.Path(dir_okay=False, exists=True, path_type=Path),
        help="Mediation rules file (default: $MBGROOT/etc/mediation.toml if it exists).",
    )(func)


@click.command("telephony-rating-monthly")
@click.argument("month")
@dataset_option
@rules_option
@root_option
@handle_errors
def rating_monthly_command(month: str, dataset: Path | None, root: Root,
        rules_path: Path | None) -> None:
    """Rate the month's new calls (is_new = 1) in calldate order; safe to run every minute.

    MONTH is YYYY-MM or any day of it (2009-10-01). Rated calls are never touched again;
    bucket counters continue from the previous runs.
    """
    run_rating(month, False, dataset, root, rules_path)


@click.command("telephony-rating-monthly-force")
@click.argument("month")
@dataset_option
@rules_option
@root_option
@handle_errors
def rating_force_command(month: str, dataset: Path | None, root: Root,
        rules_path: Path | None) -> None:
    """Re-rate the whole month from scratch, in one transaction (the canonical result).

    MONTH is YYYY-MM or any day of it. Deletes the month's costs, unrated reasons and
    counters and rates every call again; killed midway, the previous results stay.
    """
    run_rating(month, True, dataset, root, rules_path)


@click.command("rate")
@click.argument("month")
@click.option("--force", "-force", is_flag=True, help="Re-rate the whole month from scratch.")
@dataset_option
@rules_option
@root_option
@handle_errors
def rate_command(month: str, force: bool, dataset: Path | None, root: Root,
        rules_path: Path | None) -> None:
    """Rate the month's new calls; with --force, re-rate the whole month.

    MONTH is YYYY-MM or any day of it (2009-10-01).
    """
    run_rating(month, force, dataset, root, rules_path)
