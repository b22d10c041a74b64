"""mbg mediate: what the mediation rules do to a month's calls or to CDR lines on stdin."""

from __future__ import annotations

import socket
import sys
from collections.abc import Iterator
from pathlib import Path

import click

from .. import db, mediation
from ..dataset import dataset_path
from ..dates import parse_month
from ..errors import InputError
from ..root import Root
from .options import dataset_dir, dataset_option, handle_errors, root_option, summary

FORMATS = ("callbuilder", "tacacs", "asterisk")
SHOWN_FIELDS = ("src", "dst", "channel", "dstchannel", "source", "calldate",
                "duration", "billsec", "cause", "callid")


@click.command("mediate")
@click.argument("month", required=False)
@click.option("--rules", "-rules", "rules", type=click.Path(dir_okay=False, path_type=Path),
              default=None, help="Rules file (default: $MBGROOT/etc/mediation.toml).")
@click.option("--format", "-format", "fmt", type=click.Choice(FORMATS), default=None,
              help="Format of the CDR lines on stdin (with MONTH '-').")
@click.option("--source", "-source", "source", default=None,
              help="Source (PBX or host) name of callbuilder/asterisk lines on stdin "
              "(default: 'stdin' for callbuilder, the host name for asterisk).")
@click.option("--limit", type=click.IntRange(min=1), default=None,
              help="Show at most this many calls.")
@click.option("--changed", is_flag=True,
              help="Show only the calls the rules changed, skipped or found invalid.")
@click.option("--example", is_flag=True,
              help="Print the example rules file (Russian numbering) and exit.")
@click.option("--check", is_flag=True, help="Only load the rules file: exit 0 if it is valid.")
@root_option
@dataset_option
@handle_errors
def mediate_command(
    month: str | None, rules: Path | None, fmt: str | None, source: str | None,
    limit: int | None, changed: bool, example: bool, check: bool,
    root: Root, dataset: Path | None,
) -> None:
    """Show what the mediation rules do: before, after and the rules fired.

    MONTH (YYYY-MM or any day of it) reads the calls of that month's dataset, in
    (calldate, id) order; '-' reads CDR lines on stdin in the --format given. Nothing
    is written. Each call is a block: its id (or input line), the fields the rules
    changed as 'before -> after', the rules fired and the result: ok, skipped: RULE or
    invalid: FIELD CHECK. Rating applies the same rules to answered calls only.
    """
    if example:
        click.echo(mediation.example_text(), nl=False)
        return
    path = mediation.rules_file(root.mediation_file, rules)
    if path is None:
        raise InputError(
            f"no rules file: {root.mediation_file} does not exist and no --rules was given "
            "(mbg mediate --example prints an example to start from)"
        )
    ruleset = mediation.load_rules(path)
    if check:
        click.echo(f"{path}: {len(ruleset.rules)} rules, chain of {len(ruleset.chain)}, "
                   f"{len(ruleset.validated)} fields validated: ok")
        return
    if month is None:
        raise click.UsageError("give a MONTH, or '-' with --format to read CDR lines on stdin")
    if month == "-":
        if fmt is None:
            raise click.UsageError("reading stdin needs --format callbuilder|tacacs|asterisk")
        calls = _stdin_calls(fmt, source, root)
    else:
        if fmt is not None:
            raise click.UsageError("--format is for CDR lines on stdin (MONTH '-')")
        calls = _month_calls(dataset_path(dataset_dir(root, dataset), parse_month(month)))
    counts = {"calls": 0, "changed": 0, "skipped": 0, "invalid": 0, "rejected": 0}
    shown = 0
    for label, call in calls:
        if call is None:  # a line the format parser rejected
            counts["rejected"] += 1
            click.echo(label)
            continue
        counts["calls"] += 1
        outcome = ruleset.apply(call)
        differs = [f for f in SHOWN_FIELDS if outcome.call[f] != call[f]]
        counts["changed"] += bool(differs)
        counts["skipped"] += outcome.skipped is not None
        counts["invalid"] += outcome.invalid is not None
        if changed and not (differs or outcome.skipped or outcome.invalid):
            continue
        click.echo(format_outcome(label, call, outcome, differs))
        shown += 1
        if limit is not None and shown >= limit:
            break
    rejected = f", {counts['rejected']} lines rejected" if counts["rejected"] else ""
    summary(f"mediate: {counts['calls']} calls, {counts['changed']} changed, "
            f"{counts['skipped']} skipped, {counts['invalid']} invalid{rejected}")


def format_outcome(label: str, call: dict, outcome: mediation.Outcome, differs: list[str]) -> str:
    lines = [f"{label}  {call['calldate']}  {call['source']}  {call['src']} -> {call['dst']}"]
    for f in differs:
        lines.append(f"    {f}: {call[f]} -> {outcome.call[f]}")
    lines.append(f"    fired: {', '.join(outcome.fired) if outcome.fired else '-'}")
    if outcome.skipped:
        result = f"skipped: {outcome.skipped}"
    else:
        result = outcome.invalid or "ok"
    lines.append(f"    result: {result}")
    return "\n".join(lines)


def _month_calls(path: Path) -> Iterator[tuple[str, dict]]:
    if not path.exists():
        raise InputError(f"{path}: no dataset for this month")
    conn = db.connect(path, "dataset", readonly=True)
    try:
        cursor = conn.execute(
            "SELECT id, source, calldate, src, dst, channel, dstchannel, duration, billsec, "
            "cause, callid, extra FROM telephony_log ORDER BY calldate, id"
        )
        for row in cursor:
            yield f"call {row[0]}", mediation.call_from_row(row[1:])
    finally:
        conn.close()


def _stdin_calls(fmt: str, source: str | None, root: Root) -> Iterator[tuple[str, dict | None]]:
    from ..formats import AGENTS, IGNORED, Rejection

    if source is None and fmt != "tacacs":
        source = "stdin" if fmt == "callbuilder" else socket.gethostname()
    parser = AGENTS[fmt].new_parser(source, root.settings())
    counter = [0]

    def items(found) -> Iterator[tuple[str, dict | None]]:
        for item in found:
            if item is IGNORED:
                continue
            if isinstance(item, Rejection):
                yield f"line {item.lineno}: rejected: {item.reason}", None
            else:
                counter[0] += 1
                yield f"record {counter[0]}", mediation.call_from_row(item)

    for line in sys.stdin.buffer:
        if not line.endswith(b"\n"):  # a last line without its end: the parser rejects it
            yield from items(parser.finish(line))
            return
        yield from items(parser.feed(line))
    yield from items(parser.finish())
