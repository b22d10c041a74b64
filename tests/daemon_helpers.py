"""Helpers of the daemon-mode tests: a real TCP line server, a real agent process, waiting."""

from __future__ import annotations

import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import apsw

from tests.conftest import command


def callbuilder_line(i: int, day: str = "30-08-12", hour: int = 14) -> bytes:
    """A distinct callbuilder format-10 line (CRLF) for each ``i`` (0 <= i < 3600)."""
    return (f"A2345 2345 8495{i:07d} C0100517 2345 4951234567 {day} "
            f"{hour:02d}:{i // 60 % 60:02d}:{i % 60:02d} 130 107 16\r\n").encode()


def free_port() -> int:
    """A port on 127.0.0.1 with nothing listening (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LineServer:
    """A TCP server on 127.0.0.1 that the agent connects to; the test sends lines through it.

    ``close()`` stops listening and drops the client (connections are then refused);
    ``open()`` listens again on the same port.
    """

    def __init__(self, port: int = 0) -> None:
        self.port = port
        self.listener: socket.socket | None = None
        self.client: socket.socket | None = None
        self.connections = 0
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self.open()

    def open(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(4)
        self.port = listener.getsockname()[1]
        self.listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            with self._lock:
                if self.client is not None:
                    self.client.close()
                self.client = client
                self.connections += 1
            self._connected.set()

    def wait_client(self, timeout: float = 10.0) -> None:
        assert self._connected.wait(timeout), f"no agent connected to port {self.port}"

    def send(self, data: bytes) -> None:
        self.wait_client()
        with self._lock:
            self.client.sendall(data)

    def drop(self) -> None:
        """Close the client connection (the agent sees the peer close it)."""
        with self._lock:
            self._connected.clear()
            if self.client is not None:
                self.client.close()
                self.client = None

    def close(self) -> None:
        self.drop()
        if self.listener is not None:
            try:  # wakes the thread blocked in accept(): close() alone would not
                self.listener.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            self.listener.close()
            self.listener = None


class Agent:
    """A real collector process in daemon mode, its log in a file."""

    def __init__(self, tmp: Path, ports: str, agent: str = "callbuilder", interval: int = 1,
                 dataset: Path | None = None, extra: tuple[str, ...] = ()) -> None:
        self.dataset = dataset or tmp / "dataset"
        self.log_path = tmp / f"agent-{time.monotonic_ns()}.log"
        self.args = [command(f"telephony-agent-{agent}"), "-demon", "1", "-host", "127.0.0.1",
                     "-interval", str(interval), "-ports", ports, "-dataset", str(self.dataset),
                     "--timezone", "Europe/Moscow", *extra]
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(self.args, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=self._log)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 15.0) -> int:
        if self.alive():
            self.proc.send_signal(sig)
        try:
            return self.proc.wait(timeout)
        finally:
            self._log.close()

    def kill(self) -> int:
        return self.stop(signal.SIGKILL)

    def wait_log(self, text: str, timeout: float = 10.0) -> str:
        wait_for(lambda: text in self.log(), timeout, f"{text!r} in the agent's log:\n{self.log()}")
        return self.log()


def wait_for(predicate, timeout: float = 10.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def count_rows(path: Path) -> int:
    """Rows in a dataset file; 0 if it does not exist yet or is busy being created."""
    if not path.exists():
        return 0
    try:
        conn = apsw.Connection(str(path), flags=apsw.SQLITE_OPEN_READONLY)
        conn.setbusytimeout(2000)
        try:
            return conn.execute("SELECT count(*) FROM telephony_log").fetchall()[0][0]
        finally:
            conn.close()
    except apsw.Error:
        return 0


def wait_rows(path: Path, n: int, timeout: float = 15.0) -> None:
    wait_for(lambda: count_rows(path) >= n, timeout, f"{n} rows in {path} (have {count_rows(path)})")


def spool_files(dataset: Path) -> list[Path]:
    return sorted((dataset / "spool").glob("*.spool"))


HOLD_LOCK = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
conn.execute("COMMIT")
"""


def release(holder: subprocess.Popen) -> None:
    """End the lock of hold_exclusive now (the process dies, its transaction with it): the
    tests release it when they are ready, not after a time a loaded machine may overrun."""
    holder.terminate()
    holder.wait(10)


def hold_exclusive(path: Path, seconds: float) -> subprocess.Popen:
    """Another process holding ``path`` under BEGIN EXCLUSIVE for ``seconds``; returns when held."""
    import sys

    proc = subprocess.Popen([sys.executable, "-c", HOLD_LOCK, str(path), str(seconds)],
                            stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "locked"
    return proc
