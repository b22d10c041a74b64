"""telephony-import-tacacs and telephony-import-callbuilder (mbg import tacacs|callbuilder).

A rich progress bar per file and in total (bytes of the files) when stderr is a
terminal; otherwise quiet but for rejected lines and the summary.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

import click

from .. import imports
from ..formats import AGENTS, AgentSpec
from ..ingest import RejectLog
from ..pipe import Counts
from ..root import resolve_root
from ..settings import Settings
from .agent import RejectEcho, agent_settings
from .options import dataset_dir, handle_errors, summary


class _Bars:
    """Per-file and total progress; does nothing when stderr is not a terminal."""

    def __init__(self, bar, total_task) -> None:
        self._bar = bar
        self._total = total_task
        self._file = None
        self._base = 0

    def start_file(self, name: str, size: int, done_before: int) -> None:
        if self._bar is None:
            return
        if self._file is not None:
            self._bar.remove_task(self._file)
        self._file = self._bar.add_task(name, total=size)
        self._base = done_before

    def update(self, done: int) -> None:
        if self._bar is None:
            return
        self._bar.update(self._file, completed=done)
        self._bar.update(self._total, completed=self._base + done)


@contextlib.contextmanager
def _progress(total: int) -> Iterator[_Bars]:
    if not sys.stderr.isatty():
        yield _Bars(None, None)
        return
    from rich.console import Console
    from rich.progress import (BarColumn, DownloadColumn, Progress, TextColumn,
                               TimeRemainingColumn)

    columns = (TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
               TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        yield _Bars(bar, bar.add_task("total", total=total))


def run_import(spec: AgentSpec, files: list[imports.ImportFile], settings: Settings,
               dataset_dir: Path, year: int | None, strict: bool) -> None:
    total = Counts()
    sizes = [f.size for f in files]
    with RejectLog(dataset_dir, spec.name) as rejects, _progress(sum(sizes)) as bars:
        done = 0
        for item, size in zip(files, sizes):
            bars.start_file(item.path.name, size, done)
            echo = RejectEcho(rejects.path(), prefix=f"{item.path}: ")
            counts = imports.import_file(spec, item, settings, dataset_dir, rejects, year=year,
                                         on_reject=echo, on_progress=bars.update)
            echo.close()
            total.add(counts)
            done += size
    summary(f"{spec.name} import: {len(files)} files, {total.summary()}")
    if strict and total.rejected:
        sys.exit(3)


_logs_option = click.option(
    "--logs", "-logs", "logs", type=click.Path(file_okay=False, path_type=Path),
    default=Path("."), show_default=True, help="Folder of the logs.")
_dataset_option = click.option(
    "--dataset", "-dataset", "dataset", type=click.Path(file_okay=False, path_type=Path),
    default=None, help="Folder of the monthly dataset files (default: $MBGROOT/dataset/telephony).")
_root_option = click.option(
    "--root", "-root", "root", type=click.Path(file_okay=False, path_type=Path), default=None,
    help="The MBGROOT tree, for mbg.toml (default: $MBGROOT).")
_timezone_option = click.option(
    "--timezone", "-timezone", "timezone", default=None,
    help="Billing time zone (default: timezone in mbg.toml, else the system's).")
_strict_option = click.option("--strict", "-strict", is_flag=True,
                              help="Exit 3 when any line was rejected.")


@click.command("tacacs")
@_logs_option
@_dataset_option
@_root_option
@_timezone_option
@click.option("--year", "-year", "year", type=click.IntRange(1970, 2200), default=None,
              help="Year of year-less timestamps (default: from each file's date).")
@_strict_option
@handle_errors
def import_tacacs_command(logs, dataset, root, timezone, year, strict) -> None:
    """Import every file of a folder of tac_plus accounting logs (plain or .gz), in name order.

    Re-running adds nothing: calls already stored are duplicates.
    """
    settings = agent_settings(root, timezone)
    files = imports.tacacs_files(logs)
    run_import(AGENTS["tacacs"], files, settings, dataset_dir(resolve_root(root), dataset), year, strict)


@click.command("callbuilder")
@click.argument("month", required=False)
@click.argument("year", required=False)
@_logs_option
@_dataset_option
@_root_option
@_timezone_option
@_strict_option
@handle_errors
def import_callbuilder_command(month, year, logs, dataset, root, timezone, strict) -> None:
    """Import callbuilder logs: LOGS/PBX/cdr_log_monMM_YYYY.log (and .log.gz).

    MONTH (MM) and YEAR (YYYY) select the files by their names; the PBX name is the
    folder's name. Re-running adds nothing.
    """
    mm, yyyy = imports.parse_masks(month, year)
    settings = agent_settings(root, timezone)
    files = imports.callbuilder_files(logs, mm, yyyy)
    run_import(AGENTS["callbuilder"], files, settings, dataset_dir(resolve_root(root), dataset), None,
               strict)


@click.group("import")
def import_group() -> None:
    """Batch imports of log folders: tacacs, callbuilder."""


import_group.add_command(import_tacacs_command)
import_group.add_command(import_callbuilder_command)
