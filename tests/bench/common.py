"""What every benchmark shares: the raw ceiling of this machine and the figure format.

The machine is shared and noisy, so a figure means little alone: each one is printed
beside the ceiling measured in the same run (SPEC section 12), the same rows bulk-inserted
by apsw executemany in one transaction into the same schema, and the ratio to it.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

from mbg import db

INSERT_LOG = (
    "INSERT INTO telephony_log (source, calldate, src, dst, channel, dstchannel, duration, "
    "billsec, cause, callid, extra) VALUES (?,?,?,?,?,?,?,?,?,?,?)"
)


@dataclass
class Figure:
    name: str                   # what was measured, e.g. "ingest callbuilder"
    value: float                # the measurement
    unit: str                   # "rows/s", "s", "bytes/call"
    ceiling: float | None = None  # the raw ceiling of the same run, same unit
    target: str = ""            # the SPEC target in words, e.g. ">= 0.5 of ceiling"
    ok: bool | None = None      # whether the target is met

    @property
    def ratio(self) -> float | None:
        return self.value / self.ceiling if self.ceiling else None

    def as_dict(self) -> dict:
        return {**asdict(self), "ratio": self.ratio}

    def line(self) -> str:
        text = f"{self.name:<38} {self.value:>14,.1f} {self.unit:<10}"
        if self.ceiling:
            text += f" ceiling {self.ceiling:>12,.1f}  ratio {self.ratio:5.2f}"
        if self.target:
            mark = "" if self.ok is None else ("  ok" if self.ok else "  BELOW TARGET")
            text += f"  target {self.target}{mark}"
        return text


def timed(func, *args, **kwargs) -> tuple[float, object]:
    """(seconds, result) of one call, by the monotonic clock."""
    start = time.perf_counter()
    result = func(*args, **kwargs)
    return time.perf_counter() - start, result


def cost_rows_sample(calls: int, accounts: int) -> list[tuple]:
    """Rows for the ceiling of writing rating results: three telephony_cost rows per call
    (two plan tariffs and a route), in the column order of mbg.rating.INSERT_COST."""
    return [(i, t, f"A{i % accounts}", "d", "7495", f"7495{i:07d}", 60, 0, 45, role)
            for i in range(calls)
            for t, role in (("PLAN", "plan"), ("EXTRA", "plan"), ("ROUTE", "route"))]


def ceiling_rows_per_s(rows: list[tuple], workdir: Path | None = None,
                       sql: str = INSERT_LOG, repeat: int = 2) -> float:
    """Rows/s of the raw ceiling: executemany of ``rows`` into a fresh dataset file, one
    transaction, same pragmas as mbg uses. Best of ``repeat`` runs (the least disturbed)."""
    best = 0.0
    for _ in range(repeat):
        folder = Path(tempfile.mkdtemp(dir=workdir))
        try:
            conn = db.connect(folder / "ceiling.db", "dataset", create=True)
            start = time.perf_counter()
            with db.write_transaction(conn):
                conn.executemany(sql, rows)
            elapsed = time.perf_counter() - start
            conn.close()
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        best = max(best, len(rows) / elapsed)
    return best
