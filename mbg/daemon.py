"""Daemon mode of the collectors (SPEC 6.2): read TCP ports, store every N seconds, never lose a call.

The shape, kept simple on purpose:

- one thread per port (mbg.netclient.PortReader) connects, reads lines and feeds them to
  the port's line parser; the records go, encoded, to the port's buffer, which appends
  them at once to its spool file (mbg.spool);
- the main thread wakes every ``interval`` seconds, seals each port's buffer into a batch
  and stores the batches (mbg.ingest's month grouping, one transaction per month file).
  A store that fails (locked, read-only, disk full, file or folder removed) is logged
  once and tried again at the next interval with every batch kept, for as long as it
  takes; the port threads go on reading meanwhile;
- at start, spool segments left by an earlier run are stored before any connection;
- SIGTERM and SIGINT: stop reading, store what is buffered (if that fails, make sure it is
  all in the spool), exit 0. SIGKILL loses nothing already written to the spool, which is
  everything received but the read in progress and a record a parser holds back for a
  possible continuation line (let go after a quiet second).

Logs go to stderr, one line each with a timestamp; expected faults never print tracebacks.
"""

from __future__ import annotations

import logging
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .errors import InputError
from .formats import IGNORED, AgentSpec, Port, Rejection
from .ingest import RejectLog, record_line, store_records
from .netclient import PortReader
from .root import dataset_dirs
from .settings import Settings
from .spool import Batch, PortBuffer, decode_lines, decode_record, encode_record, remove_segment
from .spool import spool_stem

# A store must not wait long for a lock: the next interval tries again anyway, and a
# stop signal should not wait 30 s.
STORE_BUSY_TIMEOUT_MS = 1500
# Records decoded and stored per transaction: bounds the memory of a long-failed store.
STORE_SLICE = 50_000
# At most this many rejected lines are logged per hour and port (the reject file has all).
REJECTS_LOGGED_PER_HOUR = 20
STATS_EVERY = 3600.0
# The spool is written at once (a killed process loses nothing received) and fsynced
# this often (a power cut loses at most this much).
SYNC_EVERY = 1.0
# Longer than a connection attempt (netclient.CONNECT_TIMEOUT): readers end cleanly.
JOIN_TIMEOUT = 6.0


def run_daemon(
    spec: AgentSpec,
    *,
    host: str,
    interval: float,
    ports: str | list[Port],
    dataset_dir: str | Path,
    settings: Settings,
) -> int:
    """Collect from ``host``'s ports until SIGTERM or SIGINT; return the exit code (0).

    Raises InputError (exit 2) before anything starts for bad options, or when another
    collector already runs for one of these ports into this dataset.
    """
    if not host:
        raise InputError("-host is required in daemon mode (-demon 1)")
    if not interval or interval <= 0:
        raise InputError(f"bad -interval {interval!r}: expected a number of seconds above 0")
    if isinstance(ports, str):
        ports = spec.parse_ports(ports)
    if not ports:
        raise InputError("-demon 1 needs -ports")
    for port in ports:
        if port.port == "stdin":
            raise InputError('-ports "stdin ..." is for pipe mode (-demon 0), not daemon mode')
    daemon = Daemon(spec, host, float(interval), list(ports), Path(dataset_dir), settings)
    return daemon.run()


def agent_logger(spec: AgentSpec) -> logging.Logger:
    """The daemon's log: stderr, one timestamped line per event (inittab redirects it)."""
    log = logging.getLogger(f"mbg.daemon.{spec.name}")
    if not log.handlers:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter(
            f"%(asctime)s telephony-agent-{spec.name}[%(process)d]: %(message)s",
            datefmt="%Y-%m-%d %H:%M:%S",
        ))
        log.addHandler(handler)
        log.propagate = False
    log.setLevel(logging.INFO)
    return log


@dataclass
class Counters:
    received: int = 0  # records parsed from the network (or replayed from the spool)
    ignored: int = 0
    rejected: int = 0
    stored: int = 0
    duplicates: int = 0

    def line(self) -> str:
        return (f"received {self.received}, stored {self.stored}, duplicates {self.duplicates}, "
                f"ignored {self.ignored}, rejected {self.rejected}")


@dataclass
class PortState:
    """One port: its line parser and buffer, shared by its reader thread and the main thread."""

    number: int
    source: str | None
    label: str
    parser: object
    buffer: PortBuffer
    lock: threading.Lock = field(default_factory=threading.Lock)
    pending: list[Batch] = field(default_factory=list)  # sealed, not yet committed
    rejects_logged: int = 0
    fed_at: float | None = None  # when lines were last fed and not finished since


class Daemon:
    def __init__(self, spec: AgentSpec, host: str, interval: float, ports: list[Port],
                 dataset_dir: Path, settings: Settings) -> None:
        self.spec, self.host, self.interval = spec, host, interval
        self.dataset_dir = dataset_dir
        self.log = agent_logger(spec)
        self.stop = threading.Event()  # tells the reader threads to end
        self.stopping = False  # set by the signal handlers (a plain flag: safe in a handler)
        self.rejects = RejectLog(dataset_dir, spec.name, on_lost=self.log.warning)
        self.rejects_lock = threading.Lock()
        self.counters = Counters()
        self.counters_lock = threading.Lock()
        self.store_fault: str | None = None  # why the last store failed; None when fine
        self.failed_stores = 0
        spool_dir = dataset_dir / "spool"
        self.ports = [
            PortState(
                number=p.port,
                source=p.source,
                label=f"{host}:{p.port}" + (f" ({p.source})" if p.source else ""),
                parser=spec.new_parser(p.source, settings),
                buffer=PortBuffer(spool_dir, spool_stem(spec.name, host, str(p.port))),
            )
            for p in ports
        ]

    # --- the main loop ---

    def run(self) -> int:
        locked = []
        try:
            try:
                dataset_dirs(self.dataset_dir)
                for port in self.ports:
                    port.buffer.lock()
                    locked.append(port)
            except OSError as e:
                raise InputError(f"{self.dataset_dir}: cannot use the dataset folder: "
                                 f"{e.strerror or e}") from None
            return self._run()
        finally:
            for port in locked:
                port.buffer.unlock()
            self.rejects.close()

    def _run(self) -> int:
        previous = {s: signal.signal(s, self._on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            self.log.info("started: host %s, ports %s, every %g s, dataset %s",
                          self.host, " ".join(str(p.number) for p in self.ports),
                          self.interval, self.dataset_dir)
            self._replay()
            readers = [
                PortReader(self.host, port.number, port.label,
                           lambda lines, port=port: self._take_lines(port, lines),
                           lambda tail, port=port: self._take_tail(port, tail),
                           self.stop, self.log)
                for port in self.ports
            ]
            for reader in readers:
                reader.start()
            next_store = time.monotonic() + self.interval
            next_stats = time.monotonic() + STATS_EVERY
            next_sync = time.monotonic() + SYNC_EVERY
            while not self.stopping:
                time.sleep(min(0.2, self.interval))
                now = time.monotonic()
                if now >= next_sync:
                    for port in self.ports:
                        self._release_held(port, now)
                        port.buffer.sync()
                    next_sync = now + SYNC_EVERY
                if now >= next_store:
                    self._seal_all()
                    self._store_pending()
                    next_store = max(next_store + self.interval, time.monotonic())
                if now >= next_stats:
                    self._log_stats("since start")
                    for port in self.ports:
                        port.rejects_logged = 0
                    next_stats = now + STATS_EVERY
            self.log.info("stopping: storing what is buffered")
            self.stop.set()
            for reader in readers:
                reader.join(JOIN_TIMEOUT)
            self._seal_all(finish=True)
            self._store_pending()
            self._shutdown_spool()
            self._log_stats("since start")
            self.log.info("stopped")
            return 0
        finally:
            self.stop.set()
            for sig, handler in previous.items():
                signal.signal(sig, handler)

    def _on_signal(self, signum, frame) -> None:
        self.stopping = True

    def _log_stats(self, period: str) -> None:
        with self.counters_lock:
            counters = Counters(**vars(self.counters))
        waiting = sum(b.count for p in self.ports for b in p.pending)
        self.log.info("%s: %s; waiting to be stored %d", period, counters.line(), waiting)

    # --- records arriving (reader threads) ---

    def _take_lines(self, port: PortState, lines: list[bytes]) -> None:
        with port.lock:
            items = []
            for line in lines:
                try:
                    items.extend(port.parser.feed(line))
                except Exception as e:  # a parser bug must cost one line, kept, not the rest
                    items.append(Rejection(f"parser error: {type(e).__name__}: {e}", line,
                                           getattr(port.parser, "lineno", 0)))
            self._keep(port, items)
            port.fed_at = time.monotonic()

    def _release_held(self, port: PortState, now: float) -> None:
        """A record the parser holds back (tacacs: waiting for a possible continuation
        line) goes to the spool once its port has been quiet a second: tac_plus writes a
        record in one go, and a SIGKILL must not lose more than the last second."""
        if port.fed_at is not None and now - port.fed_at >= SYNC_EVERY:
            with port.lock:
                self._keep(port, port.parser.finish())
                port.fed_at = None

    def _take_tail(self, port: PortState, tail: bytes) -> None:
        with port.lock:
            self._keep(port, port.parser.finish(tail))

    def _keep(self, port: PortState, items: list) -> None:
        """Buffer and spool the records; reject or count the rest. Caller holds port.lock."""
        encoded = []
        ignored = 0
        for item in items:
            if type(item) is tuple:
                encoded.append(encode_record(item))
            elif item is IGNORED:
                ignored += 1
            elif isinstance(item, Rejection):
                self._reject(port, item.reason, item.line, item.lineno)
        if encoded:
            spool_error = port.buffer.spool_error
            port.buffer.append(b"".join(encoded), len(encoded))
            if port.buffer.spool_error != spool_error:
                if port.buffer.spool_error:
                    self.log.warning("%s: cannot write the spool (%s); records kept in memory",
                                     port.label, port.buffer.spool_error)
                else:
                    self.log.info("%s: spool written again", port.label)
        with self.counters_lock:
            self.counters.received += len(encoded)
            self.counters.ignored += ignored

    def _reject(self, port: PortState, reason: str, line: bytes, lineno: int) -> None:
        with self.counters_lock:
            self.counters.rejected += 1
        with self.rejects_lock:  # a line the file cannot take goes to the log instead
            kept = self.rejects.write(reason, line)
            self.rejects.flush()
        if not kept:
            return  # already logged, with the line
        where = f"kept in reject/{self.rejects.path().name}"
        if port.rejects_logged < REJECTS_LOGGED_PER_HOUR:
            port.rejects_logged += 1
            self.log.warning("%s: line %d rejected: %s (%s)", port.label, lineno, reason, where)

    # --- storing (main thread) ---

    def _seal_all(self, finish: bool = False) -> None:
        for port in self.ports:
            with port.lock:
                if finish:  # stopping: a record held back for a continuation line too
                    self._keep(port, port.parser.finish())
                batch = port.buffer.seal()
            if batch is not None:
                port.pending.append(batch)

    def _replay(self) -> None:
        """Store at once what an earlier run left in the spool, before connecting."""
        total = 0
        for port in self.ports:
            batches = port.buffer.replay_batches()
            port.pending.extend(batches)
            total += sum(b.count for b in batches)
        if total:
            self.log.info("spool: %d records left by an earlier run; storing them", total)
            with self.counters_lock:
                self.counters.received += total
            self._store_pending()
        self._replay_orphans()

    def _replay_orphans(self) -> None:
        """Store the spool of this agent's ports that are no longer configured (-ports
        changed, another -host) unless their collector is running: no call is left behind."""
        spool_dir = self.dataset_dir / "spool"
        mine = {port.buffer.stem for port in self.ports}
        stems = {path.name.rsplit(".", 2)[0] for path in spool_dir.glob(f"{self.spec.name}-*.spool")}
        for stem in sorted(stems - mine):
            orphan = PortState(0, None, f"spool {stem}", None, PortBuffer(spool_dir, stem))
            try:
                orphan.buffer.lock()
            except InputError:
                continue  # its own collector is running and stores it
            try:
                batches = orphan.buffer.replay_batches()
                self.log.info("spool: %d records of %s (not in -ports); storing them",
                              sum(b.count for b in batches), stem)
                for batch in batches:
                    self._store_batch(orphan, batch)
                    remove_segment(batch.segment)
            except Exception as e:  # the files stay for the next start
                self.log.warning("spool: cannot store %s now (%s); kept for the next start",
                                 stem, str(e) or type(e).__name__)
            finally:
                orphan.buffer.unlock()

    def _store_pending(self) -> bool:
        """Store every pending batch, oldest first; False (all kept) at the first failure."""
        stored_before = self.counters.stored
        for port in self.ports:
            while port.pending:
                batch = port.pending[0]
                try:
                    self._store_batch(port, batch)
                except Exception as e:  # locked, read-only, disk full, removed: all alike
                    self._store_failed(e)
                    return False
                remove_segment(batch.segment)
                port.pending.pop(0)
        if self.store_fault is not None:
            self.log.info("storing again after %d failed attempts (%d records stored)",
                          self.failed_stores, self.counters.stored - stored_before)
            self.store_fault, self.failed_stores = None, 0
        return True

    def _store_failed(self, error: Exception) -> None:
        self.failed_stores += 1
        reason = str(error) or type(error).__name__
        if reason != self.store_fault:
            waiting = sum(b.count for p in self.ports for b in p.pending)
            self.log.warning("cannot store: %s; %d records kept, retrying every %g s",
                             reason, waiting, self.interval)
            self.store_fault = reason

    def _store_batch(self, port: PortState, batch: Batch) -> None:
        """Store a batch slice by slice; ``batch.done`` moves past each committed slice."""
        while batch.done < len(batch.data):
            records, damaged = [], []
            end = batch.done
            for end, line in decode_lines(batch.data, batch.done, STORE_SLICE):
                try:
                    records.append(decode_record(line))
                except ValueError as e:  # a segment cut short by a crash: keep the line
                    damaged.append((str(e), line))
            # A short lock wait: a locked store is retried at the next interval. The months
            # committed before a failure stay committed; storing them again only finds
            # duplicates (the content key), which are ignored.
            result = store_records(self.dataset_dir, records, STORE_BUSY_TIMEOUT_MS)
            batch.done = end
            for reason, line in damaged:  # once, after the commit: a retry decodes again
                self._reject(port, f"spool: {reason}", line, 0)
            for reason, record in result.rejected:  # values SQLite refused: kept, not retried
                self._reject(port, reason, record_line(record), 0)
            with self.counters_lock:
                self.counters.stored += result.stored
                self.counters.duplicates += result.duplicates

    def _shutdown_spool(self) -> None:
        """After a failed last store: every record kept must be in the spool for next time."""
        waiting = 0
        for port in self.ports:
            for batch in port.pending:
                waiting += batch.count
                if not batch.spooled and not port.buffer.respool(batch):
                    self.log.error("%s: %d records could not be stored nor spooled: LOST",
                                   port.label, batch.count)
        if waiting:
            self.log.warning("%d records left in the spool %s; they are stored at the next start",
                             waiting, self.dataset_dir / "spool")

