"""Pipe mode (SPEC 6.2): read a byte stream to its end, parse, store in large batches.

``open_input(stream)`` reads gzip when the stream starts with the gzip magic bytes.
``ingest_stream(stream, parser, dataset_dir, rejects)`` reads lines (each at most
``MAX_LINE + 2`` bytes held in memory), feeds the line parser (a block of lines at a time
when it has ``parse_block`` or ``feed_block``), stores the records every
``BATCH`` records or so (checked after each chunk read; one transaction per month file:
mbg.ingest.MonthFiles) and writes rejected lines to the reject log as they come.
Memory stays bounded for a stream of any size. A corrupt or truncated gzip stream is one
rejection, which keeps what was read of the line it cut short; what was read before it
is stored. Used by the agents' pipe mode and by the batch imports (mbg.imports).
"""

from __future__ import annotations

import gc
import gzip
import io
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .formats.base import IGNORED, MAX_LINE, Item, LineParser, Rejection
from .ingest import MonthFiles, RejectLog, record_line

GZIP_MAGIC = b"\x1f\x8b"
# Records per store: large transactions for speed, memory bounded. Measured (300,000
# lines): 100,000 a batch runs the same instructions as 50,000 (one fsync'd commit and
# checkpoint fewer each 100,000 records: ~0.6% less on lines out of time order) but the
# tacacs collector then peaks at 168 MB (111 MB at 50,000; callbuilder 69 MB).
BATCH = 50_000


@dataclass
class Counts:
    lines: int = 0
    stored: int = 0
    duplicates: int = 0
    ignored: int = 0
    rejected: int = 0

    def add(self, other: "Counts") -> None:
        self.lines += other.lines
        self.stored += other.stored
        self.duplicates += other.duplicates
        self.ignored += other.ignored
        self.rejected += other.rejected

    def summary(self) -> str:
        return (
            f"read {self.lines} lines: stored {self.stored}, duplicates {self.duplicates}, "
            f"ignored {self.ignored}, rejected {self.rejected}"
        )


def open_input(stream: BinaryIO) -> BinaryIO:
    """``stream``, or a gzip reader over it when it starts with the gzip magic bytes."""
    if not hasattr(stream, "peek"):
        stream = io.BufferedReader(stream)
    head = stream.peek(2)[:2]
    if len(head) == 1:
        # A pipe may deliver the first byte alone: read until two bytes or the end, and
        # put them back in front of the stream.
        head = stream.read(2)
        stream = io.BufferedReader(_Prefixed(head, stream))
    if head == GZIP_MAGIC:
        return gzip.GzipFile(fileobj=stream, mode="rb")
    return stream


class _Prefixed(io.RawIOBase):
    """``head``, then the rest of ``stream``."""

    def __init__(self, head: bytes, stream: BinaryIO) -> None:
        self.head = head
        self.stream = stream
        self._read = getattr(stream, "read1", stream.read)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self.head[: len(buffer)]
        if data:
            self.head = self.head[len(data) :]
        else:
            data = self._read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


OnReject = Callable[[Rejection], None]
OnBatch = Callable[[Counts], None]


def ingest_stream(
    stream: BinaryIO,
    parser: LineParser,
    dataset_dir: Path,
    rejects: RejectLog,
    *,
    on_reject: OnReject | None = None,
    on_batch: OnBatch | None = None,
    batch: int = BATCH,
) -> Counts:
    """Read ``stream`` to its end through ``parser`` and store the records."""
    # The cyclic garbage collector is off meanwhile: records are tuples of strings and
    # ints (no cycles to find), and its runs would walk every young record again and again.
    collecting = gc.isenabled()
    gc.disable()
    try:
        # The month files stay open from one batch to the next (mbg.ingest.MonthFiles).
        with MonthFiles(dataset_dir) as files:
            return _ingest(stream, parser, files, rejects, on_reject, on_batch, batch)
    finally:
        if collecting:
            gc.enable()


def _ingest(stream: BinaryIO, parser: LineParser, files: MonthFiles, rejects: RejectLog,
            on_reject: OnReject | None, on_batch: OnBatch | None, batch: int) -> Counts:
    counts = Counts()
    records: list[tuple] = []

    def take(items: list[Item]) -> None:
        for item in items:
            if type(item) is tuple:
                records.append(item)
            elif item is IGNORED:
                counts.ignored += 1
            else:
                counts.rejected += 1
                rejects.write(item.reason, item.line)
                if on_reject is not None:
                    on_reject(item)

    def store() -> None:
        result = files.store(records)
        counts.stored += result.stored
        counts.duplicates += result.duplicates
        records.clear()
        if result.rejected:  # values SQLite refused (the parsers should have)
            take([Rejection(reason, record_line(record), 0) for reason, record in result.rejected])
        rejects.flush()
        if on_batch is not None:
            on_batch(counts)

    feed = parser.feed
    # One record per line (SimpleLineParser): parse whole blocks, number lines here.
    parse_block = getattr(parser, "parse_block", None)
    # Records held back across lines (tacacs): blocks of lines, numbered by the parser.
    feed_block = getattr(parser, "feed_block", None)
    append = records.append
    lineno = 0
    tail = b""
    blocks = _line_blocks(stream)
    while True:
        try:
            block, complete = next(blocks, (None, True))
        except CorruptInput as e:
            if e.partial:  # the start of a line cut short by the corruption: kept
                lineno += 1
                take([Rejection(f"corrupt input after line {lineno - 1}: {e.error}", e.partial,
                                lineno)])
            else:
                take([Rejection(f"corrupt input after line {lineno}: {e.error}", b"",
                                lineno + 1)])
            break
        if block is None:
            break
        if not complete:  # the input ended without an end of line
            tail = block
            lineno += 1
            break
        if parse_block is not None:
            # Each line gives one item: a record, or one of the others.
            records_before = len(records)
            others = parse_block(block, records)
            for index, item in others:
                if type(item) is Rejection:
                    item.lineno = lineno + index + 1
                take((item,))
            lineno += len(records) - records_before + len(others)
        elif feed_block is not None:
            items = feed_block(block, records)
            if items:
                take(items)
            lineno = parser.lineno
        else:
            for line in block.split(b"\n"):
                lineno += 1
                items = feed(line)
                if items:
                    if len(items) == 1 and type(items[0]) is tuple:  # the common case
                        append(items[0])
                    else:
                        take(items)
        if len(records) >= batch:
            counts.lines = lineno
            store()
    counts.lines = lineno
    if parse_block is not None:
        parser.lineno = lineno - (1 if tail else 0)
    take(parser.finish(tail))
    store()
    return counts


# Bytes read at a time (at most): lines are split in C.
CHUNK = 1 << 20


class CorruptInput(Exception):
    """The stream failed (a corrupt or truncated gzip): ``partial`` is what was read of
    the line in progress."""

    def __init__(self, error: Exception, partial: bytes) -> None:
        super().__init__(str(error))
        self.error = error
        self.partial = partial


def _line_blocks(stream: BinaryIO):
    """Yields (block, True): the complete lines of each chunk read, joined by \\n, without
    the last \\n; at the end (tail, False): the bytes after the last newline, if any (a
    truncated last line). A line longer than MAX_LINE + 2 bytes comes out as a block of its
    first MAX_LINE + 2 bytes (the parser rejects it) and the rest of it is skipped, so
    memory stays bounded."""
    limit = MAX_LINE + 2
    carry = b""
    skipping = False
    # read1: one raw read at a time, so that a corrupt gzip stream loses nothing that
    # was decompressed before the error.
    read = getattr(stream, "read1", stream.read)
    while True:
        try:
            chunk = read(CHUNK)
        except (EOFError, OSError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
            raise CorruptInput(e, carry) from e
        if not chunk:
            break
        if skipping:
            end = chunk.find(b"\n")
            if end < 0:
                continue
            chunk = chunk[end + 1 :]
            skipping = False
        end = chunk.rfind(b"\n")
        if end < 0:
            carry += chunk
        else:
            # One copy of the chunk (a slice, then adding it to the carry, makes two).
            yield (b"".join((carry, memoryview(chunk)[:end])) if carry else chunk[:end]), True
            carry = chunk[end + 1 :]
        if len(carry) > limit:
            yield carry[:limit], True
            carry = b""
            skipping = True
    if carry:
        yield carry, False
