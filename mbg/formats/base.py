"""Types and checks shared by the format parsers (see mbg.formats for the API)."""

from __future__ import annotations

import functools
from typing import Protocol, Union

# SPEC 6.1: a line longer than 64 KiB (without its terminator) is rejected.
MAX_LINE = 65536
# The longest call duration accepted, in seconds (about 115 days): a larger value is a
# corrupt field, and past 2**63 SQLite could not even store it.
MAX_DURATION = 10_000_000
# Entries at most in each parser cache (valid values only): a collector running for months
# on garbage must not grow without limit. A full cache is cleared, and refills with what
# is in use.
CACHE_LIMIT = 10_000

Record = tuple


class Rejection:
    """A line that could not be parsed: why, the raw bytes, and its line number."""

    __slots__ = ("reason", "line", "lineno")

    def __init__(self, reason: str, line: bytes = b"", lineno: int = 0) -> None:
        self.reason = reason
        self.line = line
        self.lineno = lineno

    def __repr__(self) -> str:
        return f"Rejection({self.reason!r}, {self.line!r}, {self.lineno})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Rejection) and (self.reason, self.line, self.lineno) == (
            other.reason,
            other.line,
            other.lineno,
        )


class _Ignored:
    __slots__ = ()

    def __repr__(self) -> str:
        return "IGNORED"


IGNORED = _Ignored()

Item = Union[Record, Rejection, _Ignored]


class LineParser(Protocol):
    def feed(self, line: bytes) -> list[Item]: ...

    def finish(self, tail: bytes = b"") -> list[Item]: ...


def strip_terminator(line: bytes) -> bytes:
    """The line without its ``\\n``, ``\\r\\n`` or ``\\r`` (runtimes may pass lines
    already split on ``\\n``)."""
    if line[-1:] == b"\n":
        line = line[:-1]
    if line[-1:] == b"\r":
        line = line[:-1]
    return line


def check_line(line: bytes) -> str | Rejection:
    """The common checks of every format: the line decoded, or why it is rejected.

    ``line`` is already without its terminator.
    """
    if len(line) > MAX_LINE:
        return Rejection(f"line longer than {MAX_LINE} bytes", line)
    if b"\x00" in line:
        return Rejection("NUL byte in line", line)
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError as e:
        return Rejection(f"not UTF-8 (byte {e.start + 1})", line)


def duration_error(name: str, value: str) -> str:
    """Why ``value`` is not a duration in seconds (ASCII digits, at most MAX_DURATION);
    '' when it is one."""
    if not (value.isdigit() and value.isascii()):
        return f"bad {name} {value[:40]!r}"
    if int(value) > MAX_DURATION:
        return f"{name} {value[:40]} out of range (over {MAX_DURATION} s)"
    return ""


def truncated(line: bytes, lineno: int) -> Rejection:
    return Rejection("truncated line: input ended without end of line", line, lineno)


class SimpleLineParser:
    """A LineParser for formats with one record per line (callbuilder, asterisk).

    Pipe mode may use ``parse_block(block, records) -> [(index, item)]`` when the format
    has a block parser (``block``: lines joined by ``\\n``; each line gives one item: a
    record appended to ``records``, or another item returned with its 0-based line index
    in the block).
    """

    def __init__(self, parse, source: str, parse_block=None) -> None:
        # parse(line, source=source) without a Python-level wrapper.
        self.parse_one = functools.partial(parse, source=source)
        self.parse_block = (
            functools.partial(parse_block, source=source) if parse_block is not None else None
        )
        self.lineno = 0

    def feed(self, line: bytes) -> list[Item]:
        self.lineno += 1
        item = self.parse_one(line)
        if type(item) is Rejection:
            item.lineno = self.lineno
        return [item]

    def finish(self, tail: bytes = b"") -> list[Item]:
        if not tail:
            return []
        self.lineno += 1
        return [truncated(tail, self.lineno)]
