"""mbg report MONTH [--account A] [--format table|csv|json]: the month's bill.

The data comes from mbg.report in integer minor units; this module only formats it.
Money is printed with mbg.money.format_minor (exact decimal strings, never a float);
JSON carries money as strings too. The CSV and JSON layouts are documented in the
README ("Reports") and are stable: new columns or keys are only ever appended.
"""

from __future__ import annotations

import csv
import json
import sys
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

import click

from ..dates import parse_month
from ..money import format_minor
from ..report import PLAN, AccountReport, MonthReport, month_report
from ..root import Root
from .options import dataset_dir, dataset_option, handle_errors, root_option

MONTH_CSV_COLUMNS = (
    "month", "account", "name", "item", "tariff", "direction", "service",
    "calls", "seconds", "bucket_seconds", "days", "amount",
)
CALL_CSV_COLUMNS = (
    "log_id", "calldate", "source", "src", "dst", "number", "billsec", "tariff", "kind",
    "direction", "prefix", "seconds", "bucket_seconds", "amount",
)


@click.command("report")
@click.argument("month")
@click.option(
    "--account", "-account", default=None,
    help="One account ('' for calls of no customer), with every call and its costs.",
)
@click.option(
    "--format", "-format", "fmt",
    type=click.Choice(["table", "csv", "json"]), default="table", show_default=True,
    help="table for people, csv and json for programs.",
)
@root_option
@dataset_option
@handle_errors
def report_command(month: str, account: str | None, fmt: str, root: Root, dataset: Path | None) -> None:
    """The bill of MONTH (YYYY-MM or any day of it): per account the calls, billed minutes
    and amounts per tariff and direction, the subscription charges and the total, and a
    grand total. With --account, that account's every call with its costs."""
    first = parse_month(month)
    root.require()
    decimals = root.billing_settings().money_decimals
    report = month_report(root.billing_db, dataset_dir(root, dataset), first, account)
    if fmt == "json":
        print_json(report, decimals, account is not None)
    elif fmt == "csv":
        if account is None:
            print_month_csv(report, decimals)
        else:
            print_calls_csv(report, decimals)
    else:
        print_table(report, decimals, account is not None)


def minutes(seconds: int) -> str:
    """Billed seconds as minutes with two decimals, for people (the seconds stay exact)."""
    return str((Decimal(seconds) / 60).quantize(Decimal("0.01"), rounding=ROUND_HALF_UP))


# ---- JSON


def report_json(report: MonthReport, decimals: int, detail: bool) -> dict:
    def money(amount: int) -> str:
        return format_minor(amount, decimals)

    def account_json(a: AccountReport) -> dict:
        item = {
            "account": a.account,
            "name": a.name,
            "calls": a.calls,
            "seconds": a.seconds,
            "calls_amount": money(a.calls_amount),
            "charges_amount": money(a.charges_amount),
            "total": money(a.total),
            "cost": money(a.cost),
            "tariffs": [
                {
                    "tariff": t.tariff, "kind": t.kind, "direction": t.direction,
                    "calls": t.calls, "seconds": t.seconds,
                    "bucket_seconds": t.bucket_seconds, "amount": money(t.amount),
                }
                for t in a.tariffs
            ],
            "charges": [
                {"service": c.service, "name": c.name, "days": c.days, "amount": money(c.amount)}
                for c in a.charges
            ],
        }
        if detail:
            item["detail"] = [
                {
                    "log_id": c.log_id, "calldate": c.calldate, "source": c.source,
                    "src": c.src, "dst": c.dst, "number": c.number, "billsec": c.billsec,
                    "tariff": c.tariff, "kind": c.kind, "direction": c.direction,
                    "prefix": c.prefix, "seconds": c.seconds,
                    "bucket_seconds": c.bucket_seconds, "amount": money(c.amount),
                }
                for c in a.call_lines
            ]
        return item

    return {
        "month": f"{report.month:%Y-%m}",
        "money_decimals": decimals,
        "accounts": [account_json(a) for a in report.accounts],
        "totals": {
            "calls": report.calls,
            "seconds": report.seconds,
            "calls_amount": money(report.calls_amount),
            "charges_amount": money(report.charges_amount),
            "total": money(report.total),
            "cost": money(report.cost),
        },
    }


def print_json(report: MonthReport, decimals: int, detail: bool) -> None:
    json.dump(report_json(report, decimals, detail), sys.stdout, indent=2, ensure_ascii=False)
    sys.stdout.write("\n")


# ---- CSV


def print_month_csv(report: MonthReport, decimals: int) -> None:
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(MONTH_CSV_COLUMNS)
    month = f"{report.month:%Y-%m}"
    for a in report.accounts:
        for t in a.tariffs:
            item = "calls" if t.kind == PLAN else "cost"
            out.writerow([month, a.account, a.name, item, t.tariff, t.direction, "",
                          t.calls, t.seconds, t.bucket_seconds, "", format_minor(t.amount, decimals)])
        for c in a.charges:
            out.writerow([month, a.account, a.name, "charge", "", "", c.service,
                          "", "", "", c.days, format_minor(c.amount, decimals)])
        out.writerow([month, a.account, a.name, "total", "", "", "",
                      a.calls, a.seconds, "", "", format_minor(a.total, decimals)])
    out.writerow([month, "", "", "grand_total", "", "", "",
                  report.calls, report.seconds, "", "", format_minor(report.total, decimals)])
    out.writerow([month, "", "", "grand_cost", "", "", "",
                  "", "", "", "", format_minor(report.cost, decimals)])


def print_calls_csv(report: MonthReport, decimals: int) -> None:
    out = csv.writer(sys.stdout, lineterminator="\n")
    out.writerow(CALL_CSV_COLUMNS)
    for a in report.accounts:
        for c in a.call_lines:
            out.writerow([c.log_id, c.calldate, c.source, c.src, c.dst, c.number, c.billsec,
                          c.tariff, c.kind, c.direction, c.prefix, c.seconds, c.bucket_seconds,
                          format_minor(c.amount, decimals)])


# ---- table


def _console():
    from rich.console import Console

    # Piped into a file or less: no wrapping at 80 columns, no colours.
    return Console() if sys.stdout.isatty() else Console(width=250, no_color=True)


def print_table(report: MonthReport, decimals: int, detail: bool) -> None:
    from rich.markup import escape  # data is text, never rich markup: "[b]" stays "[b]"
    from rich.table import Table

    console = _console()
    month = f"{report.month:%Y-%m}"
    if not report.accounts:
        console.print(f"{month}: no calls and no charges")
        return

    def money(amount: int) -> str:
        return format_minor(amount, decimals)

    table = Table(title=f"Calls and charges, {month}", title_justify="left")
    for name, right in (("account", False), ("item", False), ("direction", False),
                        ("calls", True), ("minutes", True), ("bundle min", True),
                        ("amount", True), ("provider cost", True)):
        table.add_column(name, justify="right" if right else "left")
    for a in report.accounts:
        label = escape(f"{a.account} ({a.name})" if a.name else (a.account or "(no account)"))
        for t in a.tariffs:
            amount, cost = (money(t.amount), "") if t.kind == PLAN else ("", money(t.amount))
            table.add_row(label, escape(f"tariff {t.tariff}"), escape(t.direction), str(t.calls),
                          minutes(t.seconds), minutes(t.bucket_seconds) if t.bucket_seconds else "",
                          amount, cost)
            label = ""
        for c in a.charges:
            table.add_row(label, escape(f"{c.service}: {c.name}" if c.name else c.service),
                          f"{c.days} day{'' if c.days == 1 else 's'}", "", "", "", money(c.amount), "")
            label = ""
        table.add_row(label, "[bold]total[/bold]", "", str(a.calls), minutes(a.seconds), "",
                      f"[bold]{money(a.total)}[/bold]", money(a.cost) if a.cost else "",
                      end_section=True)
    table.add_row("[bold]all accounts[/bold]", "[bold]grand total[/bold]", "", str(report.calls),
                  minutes(report.seconds), "", f"[bold]{money(report.total)}[/bold]",
                  money(report.cost))
    console.print(table)

    if detail:
        for a in report.accounts:
            _print_calls(console, a, decimals, month)


def _print_calls(console, account: AccountReport, decimals: int, month: str) -> None:
    from rich.markup import escape
    from rich.table import Table

    title = escape(f"Calls of {account.account or '(no account)'}, {month}")
    table = Table(title=title, title_justify="left")
    for name, right in (("id", True), ("date", False), ("from", False), ("to", False),
                        ("number", False), ("talk s", True), ("tariff", False),
                        ("direction", False), ("prefix", False), ("billed s", True),
                        ("bundle s", True), ("amount", True)):
        table.add_column(name, justify="right" if right else "left")
    for c in account.call_lines:
        amount = format_minor(c.amount, decimals)
        table.add_row(str(c.log_id), c.calldate, *map(escape, (c.src, c.dst, c.number)),
                      str(c.billsec),
                      escape(c.tariff if c.kind == PLAN else f"{c.tariff} (cost)"),
                      escape(c.direction), escape(c.prefix), str(c.seconds), str(c.bucket_seconds) if c.bucket_seconds else "",
                      amount)
    console.print(table)
