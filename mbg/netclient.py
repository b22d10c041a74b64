"""Daemon mode's TCP clients: one thread per port reads lines, reconnecting forever.

A ``PortReader`` connects to ``host:port``, cuts what it receives into lines
(``LineSplitter``: partial lines are completed by later reads, CRLF is left for the
parser, an overlong line is cut to its head) and hands them to its sink. A dropped or
refused connection is retried after a capped exponential backoff; the log gets one
line per change of state (connected, closed, cannot connect: reason), not one per try.
"""

from __future__ import annotations

import logging
import socket
import threading
import time
from collections.abc import Callable

from .formats import MAX_LINE

# Reconnection delays: 0.5 s, 1, 2, 4 ... up to 30 s. The delay is reset only when a
# connection stayed up that long, so a peer that accepts and drops at once is not
# hammered (nor the log flooded).
BACKOFF_FIRST = 0.5
BACKOFF_CAP = 30.0
CONNECT_TIMEOUT = 5.0
# How often a blocked read looks at the stop flag.
POLL = 0.25
RECV_BYTES = 65536
# A line is passed on whole up to this size (its CRLF included); beyond, only its head.
LINE_LIMIT = MAX_LINE + 2


class LineSplitter:
    """Bytes in, complete lines out (each with its ``\\n``); the rest is kept for later."""

    def __init__(self, limit: int = LINE_LIMIT) -> None:
        self.limit = limit
        self._partial = bytearray()
        self._skipping = False  # inside an overlong line whose head was passed on

    def feed(self, data: bytes) -> list[bytes]:
        lines = []
        start = 0
        while True:
            end = data.find(b"\n", start)
            if end < 0:
                break
            if self._skipping:
                self._skipping = False
            elif self._partial:
                self._partial += data[start : end + 1]
                lines.append(self._head(bytes(self._partial)))
                self._partial.clear()
            else:
                lines.append(self._head(data[start : end + 1]))
            start = end + 1
        if not self._skipping and start < len(data):
            self._partial += data[start:]
            if len(self._partial) > self.limit:
                lines.append(bytes(self._partial[: self.limit]))
                self._partial.clear()
                self._skipping = True
        return lines

    def _head(self, line: bytes) -> bytes:
        # The head of an overlong line has no terminator: the parser rejects it as too long.
        return line if len(line) <= self.limit else line[: self.limit]

    def tail(self) -> bytes:
        """The incomplete last line (the connection closed in its middle), and forget it."""
        tail = b"" if self._skipping else bytes(self._partial)
        self._partial.clear()
        self._skipping = False
        return tail


class Backoff:
    """Capped exponential delays between connection attempts."""

    def __init__(self, first: float = BACKOFF_FIRST, cap: float = BACKOFF_CAP) -> None:
        self.first, self.cap = first, cap
        self.delay = first

    def next(self) -> float:
        delay = self.delay
        self.delay = min(self.delay * 2, self.cap)
        return delay

    def reset(self) -> None:
        self.delay = self.first


def _keepalive(sock: socket.socket) -> None:
    """Notice a peer that vanished without closing (a PBX rebooted, a NAT forgot us)."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
    for name, value in (("TCP_KEEPIDLE", 60), ("TCP_KEEPINTVL", 10), ("TCP_KEEPCNT", 6)):
        if hasattr(socket, name):
            sock.setsockopt(socket.IPPROTO_TCP, getattr(socket, name), value)


class PortReader(threading.Thread):
    """Reads one port until ``stop`` is set: ``on_lines(lines)`` for each read,
    ``on_close(tail)`` when a connection ends (``tail``: a line cut in its middle)."""

    def __init__(
        self,
        host: str,
        port: int,
        label: str,
        on_lines: Callable[[list[bytes]], None],
        on_close: Callable[[bytes], None],
        stop: threading.Event,
        log: logging.Logger,
    ) -> None:
        super().__init__(name=f"port-{port}", daemon=True)
        self.host, self.port, self.label = host, port, label
        self.on_lines, self.on_close = on_lines, on_close
        self.stop = stop
        self.log = log
        self.state = "starting"
        self.backoff = Backoff()

    def _set_state(self, state: str, message: str) -> None:
        if state != self.state:
            self.state = state
            self.log.info("%s: %s", self.label, message)

    def run(self) -> None:
        while not self.stop.is_set():
            try:
                sock = socket.create_connection((self.host, self.port), timeout=CONNECT_TIMEOUT)
            except OSError as e:
                reason = _reason(e)
                self._set_state(
                    f"down: {reason}",
                    f"cannot connect ({reason}); retrying, at most every {BACKOFF_CAP:g} s",
                )
                self.stop.wait(self.backoff.next())
                continue
            try:
                self._read(sock)
            except Exception:  # a bug, not a network fault: keep collecting all the same
                self.log.exception("%s: unexpected error; reconnecting", self.label)
            finally:
                sock.close()
            if not self.stop.is_set():
                self.stop.wait(self.backoff.next())

    def _read(self, sock: socket.socket) -> None:
        _keepalive(sock)
        sock.settimeout(POLL)
        self._set_state("up", "connected")
        since = time.monotonic()
        splitter = LineSplitter()
        reason = "stopping"
        try:
            while not self.stop.is_set():
                try:
                    data = sock.recv(RECV_BYTES)
                except TimeoutError:
                    continue
                except OSError as e:
                    reason = _reason(e)
                    break
                if not data:
                    reason = "closed by the peer"
                    break
                lines = splitter.feed(data)
                if lines:
                    self.on_lines(lines)
        finally:
            self.on_close(splitter.tail())
        if time.monotonic() - since >= self.backoff.cap:
            self.backoff.reset()
        if not self.stop.is_set():
            self._set_state("closed", f"connection {reason}; reconnecting")


def _reason(error: OSError) -> str:
    if isinstance(error, TimeoutError):
        return "timed out"
    if isinstance(error, socket.gaierror):
        return f"unknown host: {error.strerror or error}"
    return error.strerror or str(error) or type(error).__name__
