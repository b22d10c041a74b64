"""Storing parsed records into the monthly dataset files, and the reject files.

- ``store_records(dataset_dir, records) -> StoreResult(stored, duplicates)``: records are
  the tuples of mbg.formats (LOG_COLUMNS order). They are grouped by the month of their
  ``calldate`` (already in the billing zone): the monthly rotation. Each month file is
  created on first use (db.connect(create=True)) and written in ONE transaction per call
  (executemany). A duplicate (same content key) is ignored by the table and counted.
  If a store raises (locked, read-only, disk full), the months committed before the
  failing one stay committed: ``StoreError.done`` says which, so a caller that keeps its
  records (the daemon) can drop exactly those and retry the rest.
  A record whose own values SQLite refuses (an integer past 64 bits, a value of the wrong
  type, a NULL in a NOT NULL column) never poisons its batch: the month is stored again
  row by row in a fresh transaction, and such records come back in
  ``StoreResult.rejected`` as (reason, record) for the caller's reject log
  (``record_line`` gives the line to keep). The parsers already refuse such values; this
  is the defence in depth that keeps a collector from retrying a bad batch forever.
- ``MonthFiles(dataset_dir)``: the same ``store(records)`` for a stream of batches (pipe
  mode), the month files' connections kept open between batches; ``close()``.
- ``RejectLog(dataset_dir, agent, on_lost=None)``: appends ``reason TAB escaped-line`` to
  ``<dataset>/reject/<agent>-YYYY-MM-DD.txt``, the day being the day the line is written
  (local time). ``escape_line`` writes every byte that is not printable UTF-8 (and the
  backslash itself, so that the file reads back unambiguously) as ``\\xNN``. A line
  that cannot be written there goes to ``on_lost`` (stderr by default) instead.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path

import apsw

from . import db
from .dataset import LOG_COLUMNS
from .errors import MbgError
from .formats.base import MAX_LINE, strip_terminator
from .root import make_dirs

INSERT_LOG = (
    f"INSERT INTO telephony_log ({', '.join(LOG_COLUMNS)}) "
    f"VALUES ({', '.join('?' for _ in LOG_COLUMNS)})"
)


# Errors raised by one row's values, never by the file, the lock or the disk (those are
# apsw.BusyError, ReadOnlyError, FullError, IOError...: the whole store fails and is retried).
ROW_ERRORS = (OverflowError, TypeError, ValueError, apsw.MismatchError, apsw.TooBigError,
              apsw.BindingsError, apsw.ConstraintError)


@dataclass(frozen=True)
class StoreResult:
    stored: int = 0
    duplicates: int = 0
    rejected: tuple[tuple[str, tuple], ...] = ()  # (reason, record) SQLite refused

    def __add__(self, other: "StoreResult") -> "StoreResult":
        return StoreResult(self.stored + other.stored, self.duplicates + other.duplicates,
                           self.rejected + other.rejected)


class StoreError(MbgError):
    """A store failed part way: ``done`` holds the months ('YYYY-MM') already committed
    and ``result`` their counts; every other record is not stored."""

    def __init__(self, message: str, done: set[str], result: StoreResult) -> None:
        super().__init__(message)
        self.done = done
        self.result = result


def month_file(dataset_dir: Path, month: str) -> Path:
    """The file of a month 'YYYY-MM' (calldate[:7])."""
    return Path(dataset_dir) / f"{month}-01.db"


def group_by_month(records: Iterable[tuple]) -> dict[str, list[tuple]]:
    if not isinstance(records, list):
        records = list(records)
    if not records:
        return {}
    # Usually one month: the least and the greatest calldate ('YYYY-MM-DD HH:MM:SS') share
    # their month, so every calldate between them does too (C-level iteration).
    month = min(map(itemgetter(1), records))[:7]
    if max(map(itemgetter(1), records))[:7] == month:
        return {month: records}
    groups: dict[str, list[tuple]] = {}
    for record in records:
        month = record[1][:7]
        group = groups.get(month)
        if group is None:
            groups[month] = [record]
        else:
            group.append(record)
    return groups


def store_records(dataset_dir: str | os.PathLike, records: Iterable[tuple],
                  busy_timeout_ms: int = db.BUSY_TIMEOUT_MS) -> StoreResult:
    """Store records into their month files; one transaction per month file.

    ``busy_timeout_ms``: how long to wait for another writer's lock (the daemon waits
    briefly and tries again at its next interval instead).
    """
    with MonthFiles(dataset_dir, busy_timeout_ms) as files:
        return files.store(records)


class MonthFiles:
    """``store_records`` for a stream of batches (pipe mode): the connection of each month
    file stays open from one batch to the next, so that a batch does not open the file
    again nor make a new WAL file (the last connection to close deletes it). No lock is
    held between batches. At most ``KEEP`` files stay open (the ones used last);
    ``close()`` closes them.

    As when each batch opened and closed its file: after a batch, the month file itself
    holds every row (a checkpoint, so a copy or a move of the file alone is complete), and
    a file removed or moved away between batches is made again at its path (the open
    connection is for the file it opened: its device and inode are compared each batch).
    """

    KEEP = 4

    def __init__(self, dataset_dir: str | os.PathLike,
                 busy_timeout_ms: int = db.BUSY_TIMEOUT_MS) -> None:
        self.dataset_dir = Path(dataset_dir)
        self.busy_timeout_ms = busy_timeout_ms
        # month -> (connection, _identity of its file), last used last
        self._open: dict[str, tuple] = {}

    def store(self, records: Iterable[tuple]) -> StoreResult:
        """Store records into their month files; one transaction per month file."""
        groups = group_by_month(records)
        if not groups:
            return StoreResult()
        make_dirs(self.dataset_dir)
        total = StoreResult()
        done: set[str] = set()
        for month in sorted(groups):
            rows = groups[month]
            path = month_file(self.dataset_dir, month)
            try:
                conn = self._connection(month, path)
                stored, bad = _store_month(conn, rows)
                # Passive: never waits for readers; what it cannot copy now, the next does.
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
            except MbgError as e:
                self._drop(month)
                raise StoreError(str(e), done, total) from None
            except Exception as e:  # apsw errors: full disk, read-only file, I/O errors
                self._drop(month)
                raise StoreError(f"{path}: {e}", done, total) from None
            done.add(month)
            total = total + StoreResult(stored, len(rows) - stored - len(bad), tuple(bad))
        return total

    def _connection(self, month: str, path: Path) -> apsw.Connection:
        conn, identity = self._open.pop(month, (None, None))
        if conn is not None and identity != _identity(path):
            conn.close()  # removed or moved away since the last batch: make it again
            conn = None
        if conn is None:
            conn = db.connect(path, "dataset", create=True, busy_timeout_ms=self.busy_timeout_ms)
            identity = _identity(path)
            while len(self._open) >= self.KEEP:
                self._drop(next(iter(self._open)))
        self._open[month] = conn, identity  # the last used, last
        return conn

    def _drop(self, month: str) -> None:
        conn, _ = self._open.pop(month, (None, None))
        if conn is not None:
            conn.close()

    def close(self) -> None:
        while self._open:
            self._drop(next(iter(self._open)))

    def __enter__(self) -> "MonthFiles":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of a file, None if there is none at ``path``."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


def _store_month(conn: apsw.Connection, rows: list[tuple]) -> tuple[int, list[tuple[str, tuple]]]:
    """(rows stored, [(reason, row) refused for its values]), all in one transaction."""
    try:
        with db.write_transaction(conn):
            before = conn.totalchanges()
            conn.executemany(INSERT_LOG, rows)
            return conn.totalchanges() - before, []
    except ROW_ERRORS:
        pass  # rolled back: find the bad rows below
    # Rare: row by row, so that a bad row costs itself only (a failed INSERT leaves
    # the transaction and the rows before it intact).
    bad = []
    with db.write_transaction(conn):
        before = conn.totalchanges()
        for row in rows:
            try:
                conn.execute(INSERT_LOG, row)
            except ROW_ERRORS as e:
                name = type(e).__name__
                text = str(e).removeprefix(f"{name}: ")  # older apsw repeats the name
                bad.append((f"record not storable ({name}: {text})", row))
        return conn.totalchanges() - before, bad


def record_line(record: tuple) -> bytes:
    """A record refused at store time, as the line kept in the reject file (JSON: the
    input line itself is no longer known there)."""
    try:
        text = json.dumps(list(record), ensure_ascii=False, default=repr)
        return text.encode("utf-8", "surrogateescape")
    except (TypeError, ValueError):
        return repr(record).encode()


# Characters that are never printable: C0/C1 controls, the backslash (escaped so that
# the file reads back unambiguously) and the surrogates that stand for non-UTF-8 bytes.
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\\\\\udc80-\udcff]")


def _escape_char(char: str) -> str:
    return "".join(f"\\x{b:02x}" for b in char.encode("utf-8", errors="surrogateescape"))


def escape_line(line: bytes) -> str:
    """The line as one printable line: other bytes, and '\\', as \\xNN."""
    text = line.decode("utf-8", errors="surrogateescape")
    if text.isprintable() and "\\" not in text:
        return text
    text = _UNSAFE.sub(lambda m: _escape_char(m.group()), text)
    if text.isprintable():
        return text
    # Rare: other non-printable characters (line separators, format characters).
    return "".join(c if c.isprintable() else _escape_char(c) for c in text)


def _to_stderr(text: str) -> None:
    sys.stderr.write(text + "\n")
    sys.stderr.flush()


class RejectLog:
    """Appends rejected lines to ``<dataset>/reject/<agent>-YYYY-MM-DD.txt``.

    A rejected line must never vanish: when the file cannot be written (``reject`` is a
    file, no permission, disk full), ``write`` hands the line with the reason it could not
    be kept to ``on_lost`` as one line instead (default: stderr; the daemon: its log) and
    the caller carries on. The file is tried again at the next rejected line.
    """

    def __init__(self, dataset_dir: str | os.PathLike, agent: str,
                 on_lost: Callable[[str], None] | None = None) -> None:
        self.folder = Path(dataset_dir) / "reject"
        self.agent = agent
        self.count = 0  # lines written to the file
        self.on_lost = on_lost or _to_stderr
        self._file = None
        self._day: dt.date | None = None

    def path(self, day: dt.date | None = None) -> Path:
        day = day or dt.date.today()
        return self.folder / f"{self.agent}-{day.isoformat()}.txt"

    def write(self, reason: str, line: bytes) -> bool:
        """Append the line; False when it went to ``on_lost`` instead."""
        reason = " ".join(reason.split())  # one line, no TAB
        # A line over 64 KiB keeps its head: enough to find it in the log.
        text = f"{reason}\t{escape_line(strip_terminator(line[: MAX_LINE + 2]))}"
        today = dt.date.today()
        try:
            if self._file is None or today != self._day:
                self.close()
                make_dirs(self.folder)
                fd = os.open(self.path(today), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
                self._file = open(fd, "a", encoding="utf-8")
                self._day = today
            self._file.write(text + "\n")
        except OSError as e:
            self._lose(e, text)
            return False
        self.count += 1
        return True

    def _lose(self, error: OSError, text: str) -> None:
        self._drop_file()
        self.on_lost(f"reject file {self.path()} not written ({error.strerror or error}); "
                     f"rejected line: {text}")

    def _drop_file(self) -> None:
        if self._file is not None:
            try:
                self._file.close()
            except OSError:
                pass
            self._file = None

    def flush(self) -> None:
        if self._file is not None:
            try:
                self._file.flush()
            except OSError as e:  # the lines were counted as kept: say they may not be
                self._drop_file()
                self.on_lost(f"reject file {self.path()}: recent rejected lines may be "
                             f"missing ({e.strerror or e})")

    def close(self) -> None:
        self.flush()
        self._drop_file()

    def __enter__(self) -> "RejectLog":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
