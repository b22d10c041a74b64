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

# The content key of a call: the columns of telephony_log's UNIQUE constraint, in order.
LOG_KEY = (
    "source", "calldate", "src", "dst", "channel", "dstchannel", "duration", "billsec", "callid",
)

# SQLite attaches at most ten databases to one connection.
MAX_SOURCES_PER_TRANSACTION = 9

ProgressCallback = Callable[[Path], None]


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


def check_sources(sources: Iterable[Path]) -> None:
    """Open every source read-only: each must be one of our datasets, not newer than we
    know (raises NotOurFileError or SchemaTooNewError otherwise). Cheap: nothing is read
    but the header and the schema."""
    for source in sources:
        db.connect(source, "dataset", readonly=True).close()


def merge_files(
    sources: list[Path], target: Path, on_progress: ProgressCallback | None = None
) -> MergeResult:
    """Copy the calls of ``sources`` into ``target`` without duplicates.

    Only telephony_log rows are copied, with new ids and ``is_new=1``; a row whose content
    key is already in the target is ignored, and a call found in several sources is stored
    once. The new ids follow the content key's order (source, calldate, ...), the order
    the rows are inserted in. Sources are opened read-only. All sources go in one
    transaction on the target (per group of nine: SQLite attaches at most ten files at
    once). ``on_progress(source)`` is called for each source once its group is committed.

    How it is fast: each group is one ``INSERT OR IGNORE ... SELECT`` that reads every
    source in its stored order, sorts the rows by the unique key (SQLite's external sorter,
    in temporary files about the size of the sources: SQLITE_TMPDIR or TMPDIR, else
    /var/tmp) and merges the sorted sources. The target's unique index then grows by
    appends (or by one forward sweep through a target that has rows) instead of one random
    b-tree descent per row that misses the page cache. Reading the sources through their
    own unique index gives the same order but costs one random table lookup per row.
    ``OR IGNORE`` (rather than the table's ON CONFLICT IGNORE alone) means no constraint
    can abort the statement, so SQLite keeps no statement journal of every page the
    statement changes; the only other constraints are NOT NULL, which rows from our own
    schema always satisfy.
    """
    sources = [Path(s) for s in sources]
    target = Path(target)
    if not sources:
        raise InputError("nothing to merge: no source given")
    for source in sources:
        if target.exists() and source.exists() and os.path.samefile(source, target):
            raise InputError(f"{source}: is the target itself")
    check_sources(sources)
    make_dirs(target.parent)
    conn = db.connect(target, "dataset", create=True)
    read = stored = 0
    try:
        for first in range(0, len(sources), MAX_SOURCES_PER_TRANSACTION):
            group = sources[first : first + MAX_SOURCES_PER_TRANSACTION]
            group_read, group_stored = _merge_group(conn, group)
            read += group_read
            stored += group_stored
            if on_progress:
                for source in group:
                    on_progress(source)
    finally:
        conn.close()
    return MergeResult(target, read, stored)


def merge_sql(aliases: list[str]) -> str:
    """The one statement that merges the attached sources ``aliases`` into main.

    Every identifier in it is ours (column names, generated aliases); no data.
    """
    columns = ", ".join(LOG_COLUMNS)
    # NOT INDEXED: scan each table in its stored order and sort, rather than walk the
    # unique index and look every row up in the table (slower: see merge_files).
    union = " UNION ALL ".join(
        f"SELECT {columns} FROM {alias}.telephony_log NOT INDEXED" for alias in aliases
    )
    return (
        f"INSERT OR IGNORE INTO main.telephony_log ({columns}, is_new) "
        f"SELECT {columns}, 1 FROM ({union}) ORDER BY {', '.join(LOG_KEY)}"
    )


def _merge_group(conn: apsw.Connection, sources: list[Path]) -> tuple[int, int]:
    """(rows read, rows stored) of one transaction merging ``sources`` into ``conn``."""
    aliases = [f"src{i}" for i in range(len(sources))]  # generated names, never data
    for alias, source in zip(aliases, sources):
        conn.execute(f"ATTACH DATABASE ? AS {alias}", (db.file_uri(source, readonly=True),))
    try:
        with db.write_transaction(conn):
            # Counted inside the transaction: the same snapshot the insert reads.
            read = sum(
                conn.execute(f"SELECT count(*) FROM {alias}.telephony_log").fetchall()[0][0]
                for alias in aliases
            )
            before = conn.totalchanges()
            conn.execute(merge_sql(aliases))
            stored = conn.totalchanges() - before
    finally:
        for alias in aliases:
            conn.execute(f"DETACH DATABASE {alias}")
    return read, stored


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
