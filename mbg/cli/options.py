"""Shared pieces of the command line: options as decorators, errors, summaries, progress.

Every option has a --long form; the classic utilities also take the single-dash
spellings of the original tools (-dataset DIR, -host H), which click accepts as
declared option names.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import apsw
import click

from ..errors import MbgError
from ..root import Root, resolve_root


class CommandError(click.ClickException):
    """A library error shown as one line on stderr, with its exit code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def handle_errors(func: Callable) -> Callable:
    """Turn library errors into one-line messages and the exit codes of SPEC section 2."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except MbgError as e:
            raise CommandError(str(e), e.exit_code) from None
        except (apsw.FullError, apsw.IOError) as e:
            # a full disk (also the temporary files of a sort) or a failing one: the
            # transaction running was rolled back; what was committed before stays
            message = str(e).removeprefix(f"{type(e).__name__}: ")  # apsw 3.40 names it
            raise CommandError(f"{message}; the running transaction was rolled back", 1) from None

    return wrapper


def root_option(func: Callable) -> Callable:
    """--root DIR (default $MBGROOT), passed to the command as ``root: Root``."""

    @click.option(
        "--root",
        "-root",
        "root",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="The MBGROOT tree (default: $MBGROOT, else /var/lib/mbg as root, "
        "else ~/.local/share/mbg).",
    )
    @functools.wraps(func)
    def wrapper(*args, root: Path | None, **kwargs):
        return func(*args, root=resolve_root(root), **kwargs)

    return wrapper


def dataset_option(func: Callable) -> Callable:
    """--dataset DIR (classic -dataset): the folder of monthly files."""
    return click.option(
        "--dataset",
        "-dataset",
        "dataset",
        type=click.Path(file_okay=False, path_type=Path),
        default=None,
        help="Folder of the monthly dataset files (default: $MBGROOT/dataset/telephony).",
    )(func)


def dataset_dir(root: Root, dataset: Path | None) -> Path:
    return dataset if dataset is not None else root.dataset_dir


def summary(text: str) -> None:
    """The one-line summary every data-changing run ends with, on stderr."""
    click.echo(text, err=True)


class _Progress:
    def __init__(self, bar, task) -> None:
        self._bar, self._task = bar, task

    def advance(self, n: int = 1) -> None:
        if self._bar is not None:
            self._bar.advance(self._task, n)


@contextlib.contextmanager
def progress(description: str, total: int | None) -> Iterator[_Progress]:
    """A rich progress bar on stderr when it is a terminal; silent otherwise."""
    if not sys.stderr.isatty():
        yield _Progress(None, None)
        return
    from rich.console import Console
    from rich.progress import Progress

    with Progress(console=Console(stderr=True), transient=True) as bar:
        yield _Progress(bar, bar.add_task(description, total=total))
