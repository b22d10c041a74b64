"""Pipe mode (SPEC 6.2): read a byte stream to its end, parse, store in large batches.

``open_input(stream)`` reads gzip when the stream starts with the gzip magic bytes.
``ingest_stream(stream, parser, dataset_dir, rejects)`` reads lines (each at most
``MAX_LINE + 2`` bytes held in memory), feeds the line parser, stores the records every
``BATCH`` records (one transaction per month file: mbg.ingest.store_records) and writes
rejected lines to the reject log as they come. Memory stays bounded for a stream of any
size. A corrupt or truncated gzip stream is one rejection; what was read before it is
stored. Used by the agents' pipe mode and by the batch imports (mbg.imports).
"""

from __future__ import annotations

import gzip
import io
import os
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from .formats.base import IGNORED, MAX_LINE, Item, LineParser, Rejection
from .ingest import RejectLog, store_records

GZIP_MAGIC = b"\x1f\x8b"
# Records per store: large transactions for speed, a few MB of memory.
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
    if stream.peek(2)[:2] == GZIP_MAGIC:
        return gzip.GzipFile(fileobj=stream, mode="rb")
    return stream


def open_path(path: str | os.PathLike) -> BinaryIO:
    """A file, plain or gzip (by its magic bytes, whatever its name)."""
    return open_input(open(Path(path), "rb"))


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
        result = store_records(dataset_dir, records)
        counts.stored += result.stored
        counts.duplicates += result.duplicates
        records.clear()
        rejects.flush()
        if on_batch is not None:
            on_batch(counts)

    readline = stream.readline
    feed = parser.feed
    # One record per line (SimpleLineParser): call the bare parser, number lines here.
    parse_one = getattr(parser, "parse_one", None)
    append = records.append
    limit = MAX_LINE + 2
    tail = b""
    while True:
        try:
            line = readline(limit)
            if line and line[-1:] != b"\n" and len(line) == limit:
                _skip_to_end_of_line(stream)
        except (EOFError, OSError, zlib.error) as e:  # gzip.BadGzipFile is an OSError
            reason = f"corrupt input after line {counts.lines}: {e}"
            take([Rejection(reason, b"", counts.lines + 1)])
            break
        if not line:
            break
        counts.lines += 1
        if line[-1:] != b"\n" and len(line) < limit:  # the input ends without an end of line
            tail = line
            break
        if parse_one is None:
            items = feed(line)
            # The common case inline: one record per line.
            if len(items) == 1 and type(items[0]) is tuple:
                append(items[0])
            else:
                take(items)
        else:
            item = parse_one(line)
            if type(item) is tuple:
                append(item)
            else:
                if type(item) is Rejection:
                    item.lineno = counts.lines
                take((item,))
        if len(records) >= batch:
            store()
    if parse_one is not None:
        parser.lineno = counts.lines - (1 if tail else 0)
    take(parser.finish(tail))
    store()
    return counts


def _skip_to_end_of_line(stream: BinaryIO) -> None:
    while True:
        chunk = stream.readline(MAX_LINE)
        if not chunk or chunk[-1:] == b"\n":
            return
