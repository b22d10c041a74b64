"""Daemon buffer: memory per buffered call (SPEC 12: at most 150 bytes).

N callbuilder lines (fixed seed) go through the daemon's real read path (the port's line
parser, the record encoding, the port buffer and its spool file), in 64 KiB reads as a
socket gives them, with nothing stored: as when the dataset is locked for hours. The
memory the buffer holds afterwards is measured by tracemalloc (every Python allocation
still alive), divided by N; the parser's bounded caches are filled beforehand and shown
apart. The throughput of that path is printed too.
"""

from __future__ import annotations

import random
import time
import tracemalloc
from pathlib import Path

from mbg.daemon import Daemon
from mbg.formats import AGENTS, Port
from mbg.netclient import LineSplitter
from mbg.settings import default_settings

from .common import Figure

TARGET_BYTES = 150


def callbuilder_lines(n: int, seed: int = 4) -> bytes:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        day, sec = 1 + i % 28, (i * 7919) % 86400
        out.append(
            f"A{rng.randrange(1000, 9999)} {rng.randrange(1000, 9999)} 8495{rng.randrange(10**7):07d} "
            f"C0{rng.randrange(100000, 999999)} {rng.randrange(1000, 9999)} "
            f"495{rng.randrange(10**7):07d} {day:02d}-08-12 "
            f"{sec // 3600:02d}:{sec // 60 % 60:02d}:{sec % 60:02d} "
            f"{rng.randrange(600)} {rng.randrange(500)} 16\r\n"
        )
    return "".join(out).encode()


def run(n: int, workdir: Path) -> list[Figure]:
    data = callbuilder_lines(n)
    daemon = Daemon(AGENTS["callbuilder"], "pbx", 30.0, [Port(10211, "vk-pbx-1")],
                    workdir / "dataset", default_settings())
    port = daemon.ports[0]
    splitter = LineSplitter()

    # The parser keeps bounded caches (valid times of day, dates): fill them first and
    # count them apart, so that the figure is what each further buffered call costs.
    tracemalloc.start()
    warm = AGENTS["callbuilder"].new_parser("vk-pbx-1", default_settings())
    for line in data.splitlines(keepends=True):
        warm.feed(line)
    del warm, line
    caches = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()

    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    for offset in range(0, len(data), 65536):
        daemon._take_lines(port, splitter.feed(data[offset : offset + 65536]))
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()

    assert port.buffer.count == n, (port.buffer.count, n)
    spooled = sum(f.stat().st_size for f in (workdir / "dataset" / "spool").glob("*.spool"))
    per_call = held / n
    del daemon, port

    # The same again untraced, into a second dataset: the speed of the read path.
    daemon = Daemon(AGENTS["callbuilder"], "pbx", 30.0, [Port(10211, "vk-pbx-1")],
                    workdir / "dataset2", default_settings())
    splitter = LineSplitter()
    start = time.perf_counter()
    for offset in range(0, len(data), 65536):
        daemon._take_lines(daemon.ports[0], splitter.feed(data[offset : offset + 65536]))
    elapsed = time.perf_counter() - start
    return [
        Figure("daemon buffer, callbuilder", per_call, "bytes/call",
               target=f"<= {TARGET_BYTES} bytes/call", ok=per_call <= TARGET_BYTES),
        Figure("daemon spool, callbuilder", spooled / n, "bytes/call"),
        Figure("parser caches (bounded, not per call)", caches / 1024, "KiB"),
        Figure("daemon read path: parse, encode, spool", n / elapsed, "lines/s"),
    ]
