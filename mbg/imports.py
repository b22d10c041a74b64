"""Batch imports of log folders (SPEC 6.3): telephony-import-tacacs, -callbuilder.

- tacacs: every regular file of the folder (hidden files excepted), in name order, plain
  or gzip (told by the magic bytes, whatever the name). The year of year-less timestamps
  comes from ``year`` if given, else from the file's modification date (the file ends
  at that date: the first record takes the latest year that is not after it).
- callbuilder: ``DIR/*/cdr_log_mon*MM*_*YYYY*.log`` and ``.log.gz``, the PBX name being the
  file's folder name; ``MM`` and ``YYYY`` are the month and year in callbuilder's name
  (``cdr_log_mon08_2012.log``), both optional masks. Files in name order (PBX, then name).
- Each file is read like stdin in pipe mode (mbg.pipe), so re-importing adds nothing
  (every record is a duplicate) and a bad line is rejected, never fatal.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError
from .formats import AgentSpec
from .ingest import RejectLog
from .pipe import Counts, OnReject, ingest_stream, open_input
from .settings import Settings

_CALLBUILDER_NAME = re.compile(r"cdr_log_mon.*?(\d{1,2}).*?_.*?(\d{4}).*\.log(?:\.gz)?")


@dataclass(frozen=True)
class ImportFile:
    path: Path
    source: str | None  # the PBX name (callbuilder); None: from the records (tacacs)

    @property
    def size(self) -> int:
        return self.path.stat().st_size


def _check_folder(logs: Path) -> None:
    if not logs.is_dir():
        raise InputError(f"{logs}: no such folder")


def tacacs_files(logs: Path) -> list[ImportFile]:
    _check_folder(logs)
    return [
        ImportFile(p, None)
        for p in sorted(logs.iterdir())
        if p.is_file() and not p.name.startswith(".")
    ]


def parse_masks(month: str | None, year: str | None) -> tuple[int | None, int | None]:
    """The MM and YYYY masks of telephony-import-callbuilder, checked."""
    mm = yyyy = None
    if month is not None:
        if not (month.isdigit() and month.isascii() and 1 <= int(month) <= 12):
            raise InputError(f"bad month {month!r}: expected MM, 01 to 12")
        mm = int(month)
    if year is not None:
        if not (year.isdigit() and year.isascii() and len(year) == 4):
            raise InputError(f"bad year {year!r}: expected YYYY")
        yyyy = int(year)
    return mm, yyyy


def callbuilder_files(logs: Path, month: int | None = None, year: int | None = None) -> list[ImportFile]:
    _check_folder(logs)
    found = []
    for folder in sorted(p for p in logs.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for path in sorted(folder.iterdir()):
            m = _CALLBUILDER_NAME.fullmatch(path.name)
            if not m or not path.is_file():
                continue
            if month is not None and int(m.group(1)) != month:
                continue
            if year is not None and int(m.group(2)) != year:
                continue
            found.append(ImportFile(path, folder.name))
    return found


def import_file(
    spec: AgentSpec,
    item: ImportFile,
    settings: Settings,
    dataset_dir: Path,
    rejects: RejectLog,
    *,
    year: int | None = None,
    on_reject: OnReject | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> Counts:
    """Import one file. ``on_progress(bytes)`` gets the bytes of the file read so far."""
    reference = dt.date.fromtimestamp(os.stat(item.path).st_mtime)
    parser = spec.new_parser(item.source, settings, year, reference)
    with open(item.path, "rb") as raw:
        stream = open_input(raw)

        def progress(_counts: Counts) -> None:
            if on_progress is not None:
                on_progress(raw.tell())

        counts = ingest_stream(stream, parser, dataset_dir, rejects,
                               on_reject=on_reject, on_batch=progress)
    if on_progress is not None:
        on_progress(item.size)
    return counts
