"""The collectors: telephony-agent-tacacs, -callbuilder, -asterisk (mbg agent NAME).

Pipe mode (``-demon 0``, the default) reads stdin to its end (plain or gzip) and stores
the calls: mbg.pipe. Daemon mode (``-demon 1``) calls
``mbg.daemon.run_daemon(spec, host=, interval=, ports=, dataset_dir=, settings=)`` with
the AgentSpec of mbg.formats, the -ports text (parsed and checked there), the
dataset folder and the Settings (``--timezone`` applied); it returns the exit code.

Settings: from $MBGROOT/etc/mbg.toml when --root or MBGROOT is given, else the defaults
(the system zone); ``--timezone`` overrides the billing zone.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from pathlib import Path

import click

from ..errors import InputError
from ..formats import AGENTS, AgentSpec, Rejection
from ..ingest import RejectLog
from ..pipe import Counts, ingest_stream, open_input
from ..root import resolve_root
from ..settings import Settings, default_settings, parse_timezone
from . import options
from .options import handle_errors, summary

# Reject lines echoed on stderr before only a count is given (the reject file has all).
STDERR_REJECTS = 20


def agent_settings(root: Path | None, timezone: str | None) -> Settings:
    """mbg.toml of --root or $MBGROOT if either is given, else defaults; --timezone wins."""
    if root is not None or os.environ.get("MBGROOT"):
        settings = resolve_root(root).settings()
    else:
        settings = default_settings()
    if timezone:
        zone = parse_timezone(timezone, "--timezone")
        settings = dataclasses.replace(settings, timezone=zone, timezone_name=timezone)
    return settings


class RejectEcho:
    """Rejected lines on stderr: the first few with their line numbers, then a count."""

    def __init__(self, reject_file: Path, limit: int = STDERR_REJECTS, prefix: str = "") -> None:
        self.reject_file = reject_file
        self.limit = limit
        self.prefix = prefix
        self.count = 0

    def __call__(self, rejection: Rejection) -> None:
        self.count += 1
        if self.count <= self.limit:
            # lineno 0: a record SQLite refused when the batch was stored, whose line is
            # no longer known (the reject file keeps the record itself)
            where = f"line {rejection.lineno}" if rejection.lineno else "when storing"
            click.echo(f"{self.prefix}{where}: rejected: {rejection.reason}", err=True)

    def close(self) -> None:
        if self.count > self.limit:
            click.echo(
                f"... {self.count - self.limit} more rejected lines, all in {self.reject_file}",
                err=True,
            )


def host_name() -> str:
    """This host's name, the source when none is given."""
    import socket  # here: pipe mode with a source name does not pay for the import

    return socket.gethostname()


def run_pipe(spec: AgentSpec, source: str | None, settings: Settings, dataset_dir: Path,
             year: int | None = None) -> Counts:
    stream = open_input(sys.stdin.buffer)
    parser = spec.new_parser(source, settings, year)
    with RejectLog(dataset_dir, spec.name) as rejects:
        echo = RejectEcho(rejects.path())
        try:
            return ingest_stream(stream, parser, dataset_dir, rejects, on_reject=echo)
        finally:
            echo.close()


def _daemon(spec: AgentSpec, host: str, interval: int, ports: str | None,
            dataset_dir: Path, settings: Settings) -> None:
    """-demon 1: mbg.daemon checks the options and runs until SIGTERM; exit with its code."""
    from ..daemon import run_daemon  # imported here: pipe mode does not pay for it

    sys.exit(run_daemon(spec, host=host, interval=interval, ports=ports or [],
                        dataset_dir=dataset_dir, settings=settings))


def _common_options(func):
    options = [
        click.option("--demon", "-demon", "demon", type=click.Choice(["0", "1"]), default="0",
                     show_default=True, help="0: pipe mode, read stdin; 1: daemon mode."),
        click.option("--host", "-host", "host", default="localhost", show_default=True,
                     help="Daemon mode: the host to connect to."),
        click.option("--interval", "-interval", "interval", type=click.IntRange(1), default=30,
                     show_default=True, help="Daemon mode: seconds between stores."),
        click.option("--dataset", "-dataset", "dataset",
                     type=click.Path(file_okay=False, path_type=Path), default=None,
                     help="Folder of the monthly dataset files "
                          "(default: $MBGROOT/dataset/telephony)."),
        click.option("--root", "-root", "root", type=click.Path(file_okay=False, path_type=Path),
                     default=None, help="The MBGROOT tree, for mbg.toml (default: $MBGROOT)."),
        click.option("--timezone", "-timezone", "timezone", default=None,
                     help="Billing time zone (default: timezone in mbg.toml, else the system's)."),
        click.option("--strict", "-strict", is_flag=True,
                     help="Exit 3 when any line was rejected."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _finish(spec: AgentSpec, counts: Counts, strict: bool) -> None:
    summary(f"{spec.name}: {counts.summary()}")
    if strict and counts.rejected:
        sys.exit(3)


@click.command("tacacs")
@_common_options
@click.option("--ports", "-ports", "ports", default=None,
              help='Daemon mode: TCP ports, e.g. "1881 1882".')
@click.option("--year", "-year", "year", type=click.IntRange(1970, 2200), default=None,
              help="Year of year-less timestamps (default: the latest that is not in the future).")
@handle_errors
def tacacs_command(demon, host, interval, dataset, root, timezone, strict, ports, year) -> None:
    """Collector for Cisco voice gateways: the tac_plus accounting log.

    Pipe mode: zcat tacacs.log.3.gz | telephony-agent-tacacs -dataset DIR
    """
    spec = AGENTS["tacacs"]
    settings = agent_settings(root, timezone)
    dataset_dir = options.dataset_dir(resolve_root(root), dataset)
    if demon == "1":
        _daemon(spec, host, interval, ports, dataset_dir, settings)
    if ports:
        spec.parse_ports(ports)  # checked, though pipe mode reads only stdin
    _finish(spec, run_pipe(spec, None, settings, dataset_dir, year), strict)


@click.command("callbuilder")
@_common_options
@click.option("--ports", "-ports", "ports", default=None,
              help='Port and PBX name pairs: "10211 vk-pbx-1 10221 nati-txe-1"; '
                   'pipe mode: "stdin vk-pbx-1".')
@handle_errors
def callbuilder_command(demon, host, interval, dataset, root, timezone, strict, ports) -> None:
    """Collector for M-200 PBXes: callbuilder CDR format 10.

    Pipe mode: telephony-agent-callbuilder -ports "stdin vk-pbx-1" -dataset DIR < cdr_log.log
    (without -ports, the PBX name is this host's name).
    """
    spec = AGENTS["callbuilder"]
    settings = agent_settings(root, timezone)
    dataset_dir = options.dataset_dir(resolve_root(root), dataset)
    if demon == "1":
        _daemon(spec, host, interval, ports, dataset_dir, settings)
    if ports:
        parsed = spec.parse_ports(ports)
        if len(parsed) != 1 or parsed[0].port != "stdin":
            raise InputError(f'pipe mode reads stdin: -ports "stdin NAME", not {ports!r}')
        source = parsed[0].source
    else:
        # Like asterisk's -source: the host name, said out loud.
        source = host_name()
        click.echo(f'no PBX name given (-ports "stdin NAME"): calls are stored with '
                   f"source {source}", err=True)
    _finish(spec, run_pipe(spec, source, settings, dataset_dir), strict)


@click.command("asterisk")
@_common_options
@click.option("--ports", "-ports", "ports", default=None,
              help='Daemon mode: port and source name pairs: "5000 pbx-a 5001 pbx-b".')
@click.option("--source", "-source", "source", default=None,
              help="Pipe mode: the source name of the calls (default: this host's name).")
@handle_errors
def asterisk_command(demon, host, interval, dataset, root, timezone, strict, ports, source) -> None:
    """Collector for Asterisk: cdr_csv Master.csv.

    Pipe mode: telephony-agent-asterisk -source pbx-a -dataset DIR < Master.csv
    """
    spec = AGENTS["asterisk"]
    settings = agent_settings(root, timezone)
    dataset_dir = options.dataset_dir(resolve_root(root), dataset)
    if demon == "1":
        _daemon(spec, host, interval, ports, dataset_dir, settings)
    if source is not None and not source.strip():
        raise InputError("-source is empty")
    name = source or host_name()
    _finish(spec, run_pipe(spec, name, settings, dataset_dir), strict)


@click.group("agent")
def agent_group() -> None:
    """Collectors: tacacs, callbuilder, asterisk (pipe or daemon mode)."""


agent_group.add_command(tacacs_command)
agent_group.add_command(callbuilder_command)
agent_group.add_command(asterisk_command)
