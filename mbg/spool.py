"""The daemon's buffer of records not yet stored, and its durable copy on disk (SPEC 6.2).

One ``PortBuffer`` per TCP port of a collector. Records arrive as tuples (the order of
``mbg.dataset.LOG_COLUMNS``) and are kept **encoded**, one text line each, in a few
large bytes chunks: about 120 bytes per callbuilder call instead of the ~500 bytes a
tuple of Python strings costs (SPEC 12: at most 150). The same encoded lines are
appended at once (one ``write`` per batch of lines received) to the port's spool file
under ``<dataset>/spool/``, so a killed collector loses nothing already received, and
the file is fsynced about every second (``sync``), so a power cut loses at most that.

The encoding of one record: its 11 fields joined by TAB, ending with a newline; ``\\N``
is None; a backslash, TAB or newline inside a field is written ``\\\\``, ``\\t``, ``\\n``.

Spool files are segments: ``<agent>-<host>-<port>.<seq>.spool``. At every store interval
the current segment is sealed (with its in-memory copy) into a ``Batch``; a batch's
segment is deleted only after its records are committed. A collector killed between the
commit and the deletion stores the segment again when it restarts: harmless, because
telephony_log ignores a row whose content key is already there (SPEC 4).
A ``<agent>-<host>-<port>.lock`` file (flock) keeps two collectors off one spool.
"""

from __future__ import annotations

import fcntl
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .errors import InputError
from .root import make_dirs

FIELDS = 11
INTEGER_FIELDS = (6, 7)  # duration, billsec
# A chunk of the in-memory buffer is frozen to exact-size bytes at this size (a growing
# bytearray over-allocates by up to 1/8).
CHUNK_BYTES = 1 << 20

_ESCAPES = {"\\": "\\\\", "\t": "\\t", "\n": "\\n"}
_UNESCAPES = {"\\": "\\", "t": "\t", "n": "\n"}
_ESCAPED = re.compile(r"\\(.)")
_NAME_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def _escape(text: str) -> str:
    return "".join(_ESCAPES.get(c, c) for c in text)


def _unescape(text: str) -> str:
    return _ESCAPED.sub(lambda m: _UNESCAPES.get(m.group(1), m.group(1)), text)


def encode_record(record: tuple) -> bytes:
    """One record as one spool line (bytes, ending with a newline)."""
    parts = []
    for value in record:
        if value is None:
            parts.append("\\N")
        elif isinstance(value, str):
            if "\\" in value or "\t" in value or "\n" in value:
                value = _escape(value)
            parts.append(value)
        else:
            parts.append(str(value))
    return ("\t".join(parts) + "\n").encode("utf-8", "surrogateescape")


def decode_record(line: bytes) -> tuple:
    """The record of one spool line (without its newline). ValueError if it is damaged."""
    fields = line.decode("utf-8", "surrogateescape").split("\t")
    if len(fields) != FIELDS:
        raise ValueError(f"damaged spool record ({len(fields)} fields, expected {FIELDS})")
    for i, value in enumerate(fields):
        if "\\" in value:
            fields[i] = None if value == "\\N" else _unescape(value)
    for i in INTEGER_FIELDS:
        fields[i] = int(fields[i])
    return tuple(fields)


def decode_lines(data: bytes, start: int = 0, limit: int | None = None
                 ) -> Iterator[tuple[int, bytes]]:
    """(offset after the line, line) for each complete line of ``data`` from ``start``.

    At most ``limit`` lines. A last line without its newline is yielded too (a segment cut
    short by a crash): decoding it tells whether it is whole.
    """
    n = 0
    end = len(data)
    while start < end and (limit is None or n < limit):
        stop = data.find(b"\n", start)
        if stop < 0:
            yield end, data[start:]
            return
        yield stop + 1, data[start:stop]
        start = stop + 1
        n += 1


def spool_stem(agent: str, host: str, port: str) -> str:
    """The spool files' name for one agent and port: two agents on a host never collide."""
    return _NAME_UNSAFE.sub("_", f"{agent}-{host}-{port}")


@dataclass
class Batch:
    """Records sealed together: stored in one go, then their segment file is deleted."""

    data: bytes
    count: int
    segment: Path | None  # the spool file holding the same records, if any
    spooled: bool  # every record of ``data`` reached ``segment``
    done: int = 0  # bytes of ``data`` already committed (a store may stop half-way)


class PortBuffer:
    """The records of one port not yet stored: in memory and in its spool segments.

    Not thread-safe by itself: the daemon holds ``lock`` around ``append`` and ``seal``.
    """

    def __init__(self, spool_dir: Path, stem: str) -> None:
        self.spool_dir = spool_dir
        self.stem = stem
        self.chunks: list[bytes] = []
        self.tail = bytearray()
        self.count = 0
        self._segment: Path | None = None
        self._fd: int | None = None
        self._size = 0
        self._spooled = True
        self._seq = 0
        self._lock_fd: int | None = None
        self.spool_error: str | None = None  # the last spool write error, None when fine
        self.dirty = False  # written since the last sync

    # --- the lock and the segments left by an earlier run ---

    def lock(self) -> None:
        """Take this port's spool lock; InputError if another collector holds it."""
        make_dirs(self.spool_dir)
        path = self.spool_dir / f"{self.stem}.lock"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise InputError(
                f"{path}: another collector is already running for this port and dataset"
            ) from None
        self._lock_fd = fd

    def unlock(self) -> None:
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None

    def old_segments(self) -> list[Path]:
        """Spool segments left by an earlier run, oldest first."""
        found = []
        for path in self.spool_dir.glob(f"{self.stem}.*.spool"):
            seq = path.name[len(self.stem) + 1 : -len(".spool")]
            if seq.isdigit():
                found.append((int(seq), path))
        found.sort()
        if found:
            self._seq = max(self._seq, found[-1][0])
        return [path for _, path in found]

    def replay_batches(self) -> list[Batch]:
        """The old segments as batches to store (their records were never known committed)."""
        batches = []
        for path in self.old_segments():
            data = path.read_bytes()
            batches.append(Batch(data, data.count(b"\n"), path, True))
        return batches

    # --- records arriving ---

    def append(self, encoded: bytes, count: int) -> None:
        """Keep ``count`` encoded records and write them to the spool at once.

        A failed spool write (disk full, folder removed) does not lose them: they stay in
        memory, and ``spool_error`` says why the spool is behind.
        """
        self.tail += encoded
        self.count += count
        if len(self.tail) >= CHUNK_BYTES:
            self.chunks.append(bytes(self.tail))
            self.tail = bytearray()
        self._write(encoded)

    def _write(self, data: bytes) -> None:
        try:
            if self._fd is None:
                make_dirs(self.spool_dir)  # it may have been removed while we ran
                self._seq += 1
                self._segment = self.spool_dir / f"{self.stem}.{self._seq:06d}.spool"
                self._fd = os.open(self._segment, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
                self._size = 0
            self.dirty = True
            view = memoryview(data)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
            self._size += len(data)
            self.spool_error = None
        except OSError as e:
            self._spooled = False
            self.spool_error = f"{e.strerror or e}"
            if self._fd is not None:
                try:  # no half record left in the file: later appends stay readable
                    os.ftruncate(self._fd, self._size)
                except OSError:
                    pass

    def sync(self) -> None:
        """fsync the current segment if it was written to: the daemon calls it every second
        or so, so that even a power cut loses at most the last second.

        Called from the thread that seals (the only one that closes the file), so the
        descriptor cannot be closed under it; a write racing with it sets ``dirty`` again.
        """
        fd = self._fd
        if fd is None or not self.dirty:
            return
        self.dirty = False
        try:
            os.fsync(fd)
        except OSError as e:
            self._spooled = False
            self.spool_error = f"{e.strerror or e}"

    # --- store intervals ---

    def seal(self) -> Batch | None:
        """The records since the last seal as a batch; the next record opens a new segment."""
        if not self.count and self._fd is None:
            return None
        data = b"".join(self.chunks) + bytes(self.tail)
        self.sync()  # a sealed segment may wait days for its commit
        batch = Batch(data, self.count, self._segment, self._spooled and self._fd is not None)
        if self._fd is not None:
            try:
                os.close(self._fd)
            except OSError:  # a late write error: the records are in memory all the same
                batch.spooled = False
        self.chunks, self.tail, self.count = [], bytearray(), 0
        self._fd, self._segment, self._size, self._spooled = None, None, 0, True
        if not batch.count:  # an empty segment (every write failed): nothing to keep
            remove_segment(batch.segment)
            return None
        return batch

    def respool(self, batch: Batch) -> bool:
        """Write a batch whose spool copy is incomplete to a new segment (at shutdown)."""
        self._seq += 1
        path = self.spool_dir / f"{self.stem}.{self._seq:06d}.spool"
        try:
            make_dirs(self.spool_dir)
            with open(path, "wb") as f:
                f.write(batch.data[batch.done:])
                f.flush()
                os.fsync(f.fileno())
        except OSError:
            return False
        remove_segment(batch.segment)
        batch.segment, batch.spooled = path, True
        return True



def remove_segment(path: Path | None) -> None:
    """Delete a committed segment; a segment already gone is fine."""
    if path is None:
        return
    try:
        path.unlink()
    except FileNotFoundError:
        pass
