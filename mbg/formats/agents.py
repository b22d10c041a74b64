"""What differs between the three collectors, for the pipe and daemon runtimes.

``AGENTS[name]`` is an ``AgentSpec``:
- ``name``: 'tacacs', 'callbuilder' or 'asterisk'; reject files are
  ``<dataset>/reject/<name>-YYYY-MM-DD.txt``;
- ``parse_ports(text) -> list[Port]``: the ``-ports`` option. tacacs: ``"1881 1882"``
  (the source comes from each record); callbuilder and asterisk: pairs of a port and the
  source name, ``"10211 vk-pbx-1 10221 nati-txe-1"``. A port is an int, or ``"stdin"``
  for pipe mode (``-ports "stdin vk-pbx-1"``). Bad text raises InputError;
- ``make_parser(source, settings, year=None, reference=None) -> LineParser``: a fresh
  line parser for one input (stdin, a file, one connection). ``source`` is the port's
  name (None for tacacs: from the records); ``year`` and ``reference`` (a date: the
  imported file's date) only matter to tacacs year-less timestamps.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple

from ..errors import InputError
from ..settings import Settings
from .asterisk import parse_asterisk_line
from .base import LineParser, SimpleLineParser
from .callbuilder import parse_callbuilder_block, parse_callbuilder_line
from .tacacs_lines import TacacsLineAssembler


class Port(NamedTuple):
    port: int | str  # a TCP port, or "stdin"
    source: str | None  # the source name given with it; None: from the records


def _port_number(text: str, allow_stdin: bool) -> int | str:
    if allow_stdin and text == "stdin":
        return "stdin"
    if not (text.isdigit() and text.isascii()) or not 0 < int(text) < 65536:
        raise InputError(f"bad port {text!r} in -ports: expected a number from 1 to 65535")
    return int(text)


def parse_single_ports(text: str) -> list[Port]:
    """tacacs: ``"1881 1882"``."""
    words = text.split()
    if not words:
        raise InputError("-ports is empty: expected port numbers, e.g. \"1881 1882\"")
    ports = [Port(_port_number(w, allow_stdin=True), None) for w in words]
    _check_unique(ports)
    return ports


def parse_port_pairs(text: str) -> list[Port]:
    """callbuilder, asterisk: ``"10211 vk-pbx-1 10221 nati-txe-1"`` (port, name pairs)."""
    words = text.split()
    if not words or len(words) % 2:
        raise InputError(
            f"bad -ports {text!r}: expected pairs of a port and a name, "
            "e.g. \"10211 vk-pbx-1 10221 nati-txe-1\" (or \"stdin vk-pbx-1\")"
        )
    ports = [
        Port(_port_number(words[i], allow_stdin=True), words[i + 1])
        for i in range(0, len(words), 2)
    ]
    _check_unique(ports)
    return ports


def _check_unique(ports: list[Port]) -> None:
    seen = set()
    for port in ports:
        if port.port in seen:
            raise InputError(f"port {port.port} given twice in -ports")
        seen.add(port.port)


def _tacacs_parser(source, settings, year=None, reference=None) -> LineParser:
    return TacacsLineAssembler(settings, source, year=year, reference=reference)


def _callbuilder_parser(source, settings, year=None, reference=None) -> LineParser:
    return SimpleLineParser(parse_callbuilder_line, source, parse_callbuilder_block)


def _asterisk_parser(source, settings, year=None, reference=None) -> LineParser:
    return SimpleLineParser(parse_asterisk_line, source)


@dataclass(frozen=True)
class AgentSpec:
    name: str
    parse_ports: Callable[[str], list[Port]]
    make_parser: Callable[..., LineParser]

    def new_parser(
        self,
        source: str | None,
        settings: Settings,
        year: int | None = None,
        reference: dt.date | None = None,
    ) -> LineParser:
        return self.make_parser(source, settings, year, reference)


AGENTS: dict[str, AgentSpec] = {
    "tacacs": AgentSpec("tacacs", parse_single_ports, _tacacs_parser),
    "callbuilder": AgentSpec("callbuilder", parse_port_pairs, _callbuilder_parser),
    "asterisk": AgentSpec("asterisk", parse_port_pairs, _asterisk_parser),
}
