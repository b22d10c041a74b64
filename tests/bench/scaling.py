"""Scaling (issue 10): how time and peak memory grow with the size of a month.

    python -m tests.bench scaling [--n 5000000]

At n/50, n/5 and n calls (by default 100,000, 1,000,000 and 5,000,000), two jobs run
as the operator runs them, each in its own process:

- ingest: ``telephony-agent-callbuilder -ports "stdin pbx1"`` reading a file of n
  callbuilder lines (fixed seed) into an empty dataset;
- force re-rating: ``mbg rate --force 2009-10`` over a month of n calls (the rating
  benchmark's data: 20,000 prefixes, 3 tariffs per call, buckets).

For each: the wall time, the time per 1,000,000 calls (flat when the growth is linear)
and the peak resident memory of that process (``os.wait4`` returns its ``ru_maxrss``).
Last, the ratio of the time per call at n to that at n/5: 1.0 is perfectly linear
(at n/50 the start-up of the process, about a second, is a large part).
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from pathlib import Path

from mbg.root import Root, init_root

from .common import Figure
from .ingest import MBG_TOML, _collector
from .rate import make_billing, make_month


def write_callbuilder_lines(path: Path, n: int, seed: int = 21) -> None:
    """n callbuilder lines of October 2009 in time order, written in chunks (bounded memory)."""
    rng = random.Random(seed)
    with open(path, "w", newline="") as out:
        chunk = []
        for i in range(n):
            day, sec = 1 + i * 31 // n, i * 86400 * 31 // n % 86400
            seiz = rng.randrange(5, 900)
            chunk.append(
                f"A{2000 + i % 5000} {2000 + i % 5000} 8495{rng.randrange(10**7):07d} "
                f"C{rng.randrange(10**7):07d} {2000 + i % 5000} 495{rng.randrange(10**7):07d} "
                f"{day:02d}-10-09 {sec // 3600:02d}:{sec // 60 % 60:02d}:{sec % 60:02d} "
                f"{seiz} {rng.randrange(0, seiz)} 16\r\n")
            if len(chunk) == 100_000:
                out.write("".join(chunk))
                chunk.clear()
        out.write("".join(chunk))


def run_measured(command: list[str], stdin_path: Path | None = None) -> tuple[float, float]:
    """(seconds, peak resident MiB) of one child process, which must succeed."""
    stdin = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL
    try:
        start = time.perf_counter()
        child = subprocess.Popen(command, stdin=stdin, stdout=subprocess.DEVNULL,
                                 stderr=subprocess.PIPE)
        stderr = child.stderr.read()
        _, status, usage = os.wait4(child.pid, 0)
        seconds = time.perf_counter() - start
    finally:
        if stdin_path:
            stdin.close()
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise RuntimeError(f"{command[0]} failed: {stderr.decode(errors='replace')[-2000:]}")
    return seconds, usage.ru_maxrss / 1024  # ru_maxrss is in KiB on Linux


def run(n: int, workdir: Path) -> list[Figure]:
    sizes = [n // 50, n // 5, n]
    figures: list[Figure] = []
    per_call: dict[str, list[float]] = {"ingest": [], "rate": []}
    for size in sizes:
        root = Root(workdir / f"root-{size}")
        init_root(root)
        root.settings_file.write_text(MBG_TOML)
        make_billing(root.billing_db)

        lines = workdir / f"cdr_log_{size}.log"
        write_callbuilder_lines(lines, size)
        seconds, mib = run_measured(
            [_collector("telephony-agent-callbuilder"), "-ports", "stdin pbx1",
             "-dataset", str(workdir / f"ingest-{size}"), "--root", str(root.path)], lines)
        lines.unlink()
        per_call["ingest"].append(seconds / size)
        figures += [Figure(f"ingest callbuilder {size:,} lines", seconds, "s"),
                    Figure(f"  per 1,000,000 lines ({size:,})", seconds * 1e6 / size, "s"),
                    Figure(f"  peak memory, collector ({size:,})", mib, "MiB")]

        make_month(root.dataset_dir / "2009-10-01.db", size)
        seconds, mib = run_measured(
            [sys.executable, "-m", "mbg", "rate", "--force", "2009-10", "--root", str(root.path)])
        per_call["rate"].append(seconds / size)
        figures += [Figure(f"force re-rating {size:,} calls", seconds, "s"),
                    Figure(f"  per 1,000,000 calls ({size:,})", seconds * 1e6 / size, "s"),
                    Figure(f"  peak memory, rating ({size:,})", mib, "MiB")]
        for path in (root.dataset_dir.glob("*.db*")):
            path.unlink()
    # Start-up (imports, reference data) dominates the smallest size: compare the two largest.
    for job, times in per_call.items():
        growth = times[-1] / times[-2]
        figures.append(Figure(f"{job}: time per call at {sizes[-1]:,} / at {sizes[-2]:,}",
                              growth, "x", None, "about 1 (linear)", growth < 1.25))
    return figures
