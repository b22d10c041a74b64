"""CDR input formats: one pure parser per format, plus the per-input line assemblers.

The public API, shared by pipe mode (mbg.pipe), batch imports (mbg.imports) and daemon
mode (mbg.daemon):

- A **record** is a plain tuple in the order of ``mbg.dataset.LOG_COLUMNS``:
  ``(source, calldate, src, dst, channel, dstchannel, duration, billsec, cause, callid,
  extra_json_or_None)``; a tuple so that ``executemany`` takes it as it is. ``calldate``
  is already in the billing time zone, so ``calldate[:7]`` names the month file.
- A **rejection** is a ``Rejection(reason, line, lineno)``: a line that does not parse.
- ``IGNORED`` marks a line that parsed but is not a call (tacacs start/update records,
  non-voice records, empty lines): counted as ignored, neither stored nor rejected.
- The pure parsers: ``parse_callbuilder_line(line, source)``,
  ``parse_asterisk_line(line, source, ...)`` and ``TacacsParser.parse_record(line)``
  (pure given its settings and year state) take one line of bytes (its ``\\n`` or
  ``\\r\\n`` terminator optional) and return a record, a Rejection or IGNORED.
- A **line parser** (``LineParser``) is the stateful object a runtime feeds, one per
  input (stdin, a file, one TCP connection): ``feed(line) -> list[Item]`` returns the items
  completed by that line (tacacs holds a record back until the next line shows it has no
  continuation); ``finish(tail=b"") -> list[Item]`` flushes what is held back. ``tail`` is
  an incomplete last line (input ended without its newline): it is rejected as truncated.
  The daemon calls ``finish()`` at every store interval so that a last record is not held
  back forever. Line numbers in rejections count the lines fed (1-based).
- Runtimes read at most ``MAX_LINE + 2`` bytes of a line (+2: the ``\\r\\n``) and pass that
  head of a longer line to ``feed``, which rejects it as too long.
- Speed: callbuilder's ``SimpleLineParser`` also has ``parse_block`` (many lines at once,
  mbg.formats.callbuilder.parse_callbuilder_block), which pipe mode uses; ``feed`` gives
  the same items line by line. tacacs takes the ordinary line (its attribute names seen
  before) by a fast path, mbg.formats.tacacs_avs, with the same result as the general one;
  its ``TacacsLineAssembler.feed_block(block, records)`` (pipe mode) takes many lines at
  once, and a block of ordinary lines in one loop (mbg.formats.tacacs_block).
- ``AGENTS`` maps a format name to its ``AgentSpec`` (mbg.formats.agents): how its
  ``-ports`` are read and how its line parser is made.
"""

from __future__ import annotations

from .agents import AGENTS, AgentSpec, Port
from .asterisk import parse_asterisk_line
from .base import (
    IGNORED,
    MAX_LINE,
    Item,
    LineParser,
    Record,
    Rejection,
    SimpleLineParser,
    check_line,
    strip_terminator,
)
from .callbuilder import parse_callbuilder_line
from .tacacs import TacacsParser
from .tacacs_lines import TacacsLineAssembler

__all__ = [
    "AGENTS",
    "IGNORED",
    "MAX_LINE",
    "AgentSpec",
    "Item",
    "LineParser",
    "Port",
    "Record",
    "Rejection",
    "SimpleLineParser",
    "TacacsLineAssembler",
    "TacacsParser",
    "check_line",
    "parse_asterisk_line",
    "parse_callbuilder_line",
    "strip_terminator",
]
