"""The one module that owns SQLite: connections, pragmas, schema, migrations, transactions.

Two kinds of file are ours, told apart by ``PRAGMA application_id``:

- ``dataset``: a monthly traffic file, ``YYYY-MM-01.db`` (schema/dataset.sql);
- ``billing``: the main database, ``data/billing.db`` (schema/billing.sql).

``PRAGMA user_version`` is the schema version. A file of an older version is migrated in
place by the SQL files in schema/migrations/; a newer or foreign file is refused before
anything is written to it.
"""

from __future__ import annotations

import contextlib
import os
import time
import urllib.parse
from collections.abc import Iterator
from importlib import resources
from pathlib import Path

import apsw

from .errors import DatasetLockedError, MbgError, NotOurFileError, SchemaTooNewError

APPLICATION_IDS = {"dataset": 0x4D424754, "billing": 0x4D424742}  # 'MBGT', 'MBGB'
SCHEMA_VERSIONS = {"dataset": 1, "billing": 1}

# Long enough to wait out a collector's or a merge's write transaction.
BUSY_TIMEOUT_MS = 30_000

_SQLITE_MAGIC = b"SQLite format 3\x00"


def schema_text(name: str) -> str:
    """The text of a file in schema/, installed as the package data mbg/schema."""
    try:
        return resources.files("mbg.schema").joinpath(name).read_text(encoding="utf-8")
    except ModuleNotFoundError:  # running from a source tree that is not installed
        return (Path(__file__).resolve().parent.parent / "schema" / name).read_text("utf-8")


def _migration_text(kind: str, version: int) -> str | None:
    try:
        return schema_text(f"migrations/{version:04d}-{kind}.sql")
    except FileNotFoundError:
        return None


def _header(path: Path) -> bytes:
    with open(path, "rb") as f:
        return f.read(100)


def _check_header(path: Path, kind: str) -> bool:
    """True if the file is new (empty). Raise NotOurFileError for anything not SQLite."""
    head = _header(path)
    if not head:
        return True
    if not head.startswith(_SQLITE_MAGIC):
        raise NotOurFileError(f"{path}: not an mbg {kind} file (not an SQLite database)")
    return False


def _identity(conn: apsw.Connection) -> tuple[int, int, int]:
    """(application_id, user_version, number of schema objects)."""
    try:
        app = conn.execute("PRAGMA application_id").fetchall()[0][0]
        version = conn.execute("PRAGMA user_version").fetchall()[0][0]
        objects = conn.execute("SELECT count(*) FROM sqlite_master").fetchall()[0][0]
    except (apsw.NotADBError, apsw.CorruptError) as e:
        raise NotOurFileError(f"{conn.filename}: not an mbg file ({e})") from None
    return app, version, objects


def _verify(path: Path, kind: str, app: int, version: int, objects: int) -> bool:
    """True if the file is empty and may be created; raise if it is not ours or too new."""
    if app == 0 and version == 0 and objects == 0:
        return True
    if app != APPLICATION_IDS[kind]:
        other = [k for k, v in APPLICATION_IDS.items() if v == app]
        what = f"an mbg {other[0]} file" if other else "not an mbg file"
        raise NotOurFileError(f"{path}: {what}, expected an mbg {kind} file")
    if version > SCHEMA_VERSIONS[kind]:
        raise SchemaTooNewError(
            f"{path}: schema version {version} is newer than this mbg knows "
            f"({SCHEMA_VERSIONS[kind]}); upgrade mbg"
        )
    return False


# The index of new calls as schema/dataset.sql makes it; rating.force_month drops and makes
# it again (tests check the two are the same).
NEW_CALLS_INDEX = "CREATE INDEX telephony_log_new ON telephony_log (calldate, id) WHERE is_new = 1"


def set_busy_timeout(conn: apsw.Connection, timeout_ms: int) -> None:
    """Wait up to ``timeout_ms`` for a lock, trying again every 2 ms.

    SQLite's own busy timeout sleeps longer and longer, up to 100 ms between tries: a
    writer waiting for a rating run could miss the short gaps between its batches again
    and again. Trying every 2 ms, it gets the lock as soon as it is free.
    """
    deadline = 0.0

    def wait(tries: int) -> bool:
        nonlocal deadline
        now = time.monotonic()
        if tries == 0:
            deadline = now + timeout_ms / 1000
        if now >= deadline:
            return False
        time.sleep(0.002)
        return True

    conn.setbusyhandler(wait)


def _configure(conn: apsw.Connection, busy_timeout_ms: int) -> None:
    set_busy_timeout(conn, busy_timeout_ms)
    # FULL: a commit is on disk before a collector truncates its spool.
    conn.execute("PRAGMA synchronous=FULL")


def connect(
    path: str | os.PathLike,
    kind: str,
    *,
    create: bool = False,
    readonly: bool = False,
    busy_timeout_ms: int = BUSY_TIMEOUT_MS,
) -> apsw.Connection:
    """Open one of our files, creating or migrating it as needed.

    ``create``: make the file (schema, WAL, application_id) if it does not exist or is
    empty. ``readonly``: open without any write (no creation, no migration).
    A foreign or newer file raises before anything in it changes.
    """
    path = Path(path)
    if not path.exists():
        if not create or readonly:
            raise NotOurFileError(f"{path}: no such {kind} file")
    elif path.is_dir():
        raise NotOurFileError(f"{path}: is a folder, expected an mbg {kind} file")
    else:
        _check_header(path, kind)

    if readonly:
        conn = _open(path, apsw.SQLITE_OPEN_READONLY | apsw.SQLITE_OPEN_URI, readonly=True)
        try:
            set_busy_timeout(conn, busy_timeout_ms)
            if _verify(path, kind, *_identity(conn)):
                raise NotOurFileError(f"{path}: not an mbg {kind} file (empty database)")
        except BaseException:
            conn.close()
            raise
        return conn

    conn = _open(path, apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE | apsw.SQLITE_OPEN_URI)
    try:
        set_busy_timeout(conn, busy_timeout_ms)
        is_new = _verify(path, kind, *_identity(conn))
        if is_new and not create:
            raise NotOurFileError(f"{path}: not an mbg {kind} file (empty database)")
        if is_new:
            # Outside any transaction; persistent in the file from now on.
            conn.execute("PRAGMA journal_mode=WAL")
        _configure(conn, busy_timeout_ms)
        _create_or_migrate(conn, path, kind)
    except BaseException:
        conn.close()
        raise
    return conn


def _open(path: Path, flags: int, readonly: bool = False) -> apsw.Connection:
    # Always a URI, so that ATTACH on this connection takes URIs too (merge uses mode=ro).
    name = file_uri(path, readonly)
    try:
        # NOMUTEX: a connection is only ever used by one thread at a time (apsw raises
        # ThreadingViolationError otherwise), so SQLite's own lock around every call on it
        # is pure cost: 3% of a rating run.
        return apsw.Connection(name, flags=flags | apsw.SQLITE_OPEN_NOMUTEX)
    except apsw.CantOpenError as e:
        raise NotOurFileError(f"{path}: cannot open ({e})") from None


def file_uri(path: str | os.PathLike, readonly: bool = False) -> str:
    """An SQLite URI for a path; ``mode=ro`` when read-only."""
    uri = "file:" + urllib.parse.quote(str(Path(path).resolve()), safe="/")
    return uri + "?mode=ro" if readonly else uri


def _create_or_migrate(conn: apsw.Connection, path: Path, kind: str) -> None:
    """Bring the file to the current schema, in one transaction (two creators may race)."""
    target = SCHEMA_VERSIONS[kind]
    with write_transaction(conn):
        app, version, objects = _identity(conn)
        if _verify(path, kind, app, version, objects):
            conn.execute(schema_text(f"{kind}.sql"))
            conn.execute(f"PRAGMA application_id={APPLICATION_IDS[kind]:d}")
        else:
            for step in range(version + 1, target + 1):
                script = _migration_text(kind, step)
                if script is None:
                    raise MbgError(f"{path}: no migration of the {kind} schema to version {step}")
                conn.execute(script)
        if version != target:
            conn.execute(f"PRAGMA user_version={target:d}")


@contextlib.contextmanager
def write_transaction(conn: apsw.Connection) -> Iterator[apsw.Connection]:
    """BEGIN IMMEDIATE ... COMMIT, or ROLLBACK on any exception.

    IMMEDIATE takes the write lock up front, so the busy timeout applies; a deferred
    transaction that upgrades to a write can fail at once under WAL contention.
    """
    try:
        conn.execute("BEGIN IMMEDIATE")
    except apsw.BusyError:
        raise DatasetLockedError(f"{conn.filename}: database is locked by another process") from None
    try:
        yield conn
    except BaseException:
        if not conn.getautocommit():
            conn.execute("ROLLBACK")
        raise
    try:
        conn.execute("COMMIT")
    except apsw.BusyError:
        conn.execute("ROLLBACK")
        raise DatasetLockedError(f"{conn.filename}: database is locked by another process") from None


@contextlib.contextmanager
def read_transaction(conn: apsw.Connection) -> Iterator[apsw.Connection]:
    """One consistent snapshot for several reads."""
    conn.execute("BEGIN")
    try:
        yield conn
    finally:
        if not conn.getautocommit():
            conn.execute("COMMIT")
