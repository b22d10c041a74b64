"""Monthly traffic datasets: naming, creation and merging (SPEC section 4).

A dataset folder holds one file per month, ``YYYY-MM-01.db``, named by the month of the
call's start in the billing time zone.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import apsw

from . import db
from .errors import InputError
from .root import make_dirs

MONTH_FILE = re.compile(r"\d{4}-\d{2}-01\.db")

# telephony_log's columns that a merge copies: everything but id (local) and is_new.
LOG_COLUMNS = (
    "source", "calldate", "src", "dst", "channel", "dstchannel",
    "duration", "billsec", "cause", "callid", "extra",
)

# Rows copied per statement: small enough to report progress, all in one transaction.
MERGE_CHUNK = 250_000
# SQLite attaches at most ten databases to one connection.
MAX_SOURCES_PER_TRANSACTION = 9

ProgressCallback = Callable[[int], None]


def dataset_path(dataset_dir: str | os.PathLike, month: dt.date) -> Path:
    """The file of ``month`` in a dataset folder."""
    return Path(dataset_dir) / f"{month:%Y-%m}-01.db"


def init_dataset(path: str | os.PathLike) -> bool:
    """Create an empty dataset file (and its folder). False if it already existed.

    An existing file is checked (ours, not newer) and migrated if older.
    """
    path = Path(path)
    make_dirs(path.parent)
    existed = path.exists() and path.stat().st_size > 0
    db.connect(path, "dataset", create=True).close()
    return not existed


def month_files(folder: str | os.PathLike) -> list[Path]:
    """The monthly files of a dataset folder, in month order."""
    folder = Path(folder)
    return sorted(p for p in folder.iterdir() if p.is_file() and MONTH_FILE.fullmatch(p.name))


@dataclass(frozen=True)
class MergeResult:
    target: Path
    read: int
    stored: int

    @property
    def duplicates(self) -> int:
        return self.read - self.stored


def check_sources(sources: Iterable[Path]) -> int:
    """Open every source read-only and check it is ours; return their total row count."""
    total = 0
    for source in sources:
        conn = db.connect(source, "dataset", readonly=True)
        try:
            total += conn.execute("SELECT count(*) FROM telephony_log").fetchall()[0][0]
        finally:
            conn.close()
    return total


def merge_files(
    sources: list[Path], target: Path, on_progress: ProgressCallback | None = None
) -> MergeResult:
    """Copy the calls of ``sources`` into ``target`` without duplicates.

    Only telephony_log rows are copied, with new ids and ``is_new=1``; a row whose content
    key is already in the target is ignored (the table's ON CONFLICT IGNORE). Sources are
    opened read-only. All sources go in one transaction on the target (per group of
    nine: SQLite attaches at most ten files at once).
    """
    sources = [Path(s) for s in sources]
    target = Path(target)
    if not sources:
        raise InputError("nothing to merge: no source given")
    for source in sources:
        if target.exists() and source.exists() and os.path.samefile(source, target):
            raise InputError(f"{source}: is the target itself")
    read = check_sources(sources)
    make_dirs(target.parent)
    conn = db.connect(target, "dataset", create=True)
    stored = 0
    try:
        for first in range(0, len(sources), MAX_SOURCES_PER_TRANSACTION):
            group = sources[first : first + MAX_SOURCES_PER_TRANSACTION]
            stored += _merge_group(conn, group, on_progress)
    finally:
        conn.close()
    return MergeResult(target, read, stored)


def _merge_group(
    conn: apsw.Connection, sources: list[Path], on_progress: ProgressCallback | None
) -> int:
    aliases = [f"src{i}" for i in range(len(sources))]  # generated names, never data
    for alias, source in zip(aliases, sources):
        conn.execute(f"ATTACH DATABASE ? AS {alias}", (db.file_uri(source, readonly=True),))
    columns = ", ".join(LOG_COLUMNS)
    stored = 0
    try:
        with db.write_transaction(conn):
            for alias in aliases:
                low, high = conn.execute(
                    f"SELECT min(id), max(id) FROM {alias}.telephony_log"
                ).fetchall()[0]
                if low is None:
                    continue
                for start in range(low, high + 1, MERGE_CHUNK):
                    before = conn.totalchanges()
                    conn.execute(
                        f"INSERT INTO main.telephony_log ({columns}, is_new) "
                        f"SELECT {columns}, 1 FROM {alias}.telephony_log "
                        "WHERE id >= ? AND id < ? ORDER BY id",
                        (start, start + MERGE_CHUNK),
                    )
                    stored += conn.totalchanges() - before
                    if on_progress:
                        rows = conn.execute(
                            f"SELECT count(*) FROM {alias}.telephony_log WHERE id >= ? AND id < ?",
                            (start, start + MERGE_CHUNK),
                        ).fetchall()[0][0]
                        on_progress(rows)
    finally:
        for alias in aliases:
            conn.execute(f"DETACH DATABASE {alias}")
    return stored


def merge_plan(sources: list[Path], target: Path) -> list[tuple[list[Path], Path]]:
    """What ``telephony-dataset-merge SRC... DST`` does: (sources, target file) pairs.

    Files: every source into the one target file. Folders (one source folder and a
    target folder): each month file into the target's file of the same name.
    """
    if len(sources) == 1 and sources[0].is_dir():
        if target.exists() and not target.is_dir():
            raise InputError(f"{target}: a source folder merges into a folder, not a file")
        return [([f], target / f.name) for f in month_files(sources[0])]
    for source in sources:
        if source.is_dir():
            raise InputError(f"{source}: a folder merges only as SRC_DIR DST_DIR")
        if not source.exists():
            raise InputError(f"{source}: no such file")
    if target.is_dir():
        raise InputError(f"{target}: source files merge into a file, not a folder")
    return [(sources, target)]
