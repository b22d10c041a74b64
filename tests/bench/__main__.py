"""Run the benchmarks: python -m tests.bench [NAME ...] [--n N] [--json FILE].

Each benchmark module has ``run(n, workdir) -> list[Figure]``; register it below.
Data is generated with fixed seeds, so two runs measure the same work.
"""

from __future__ import annotations

import argparse
import importlib
import json
import platform
import sys
import tempfile
import time
from pathlib import Path

# name -> (module in tests.bench, default N)
BENCHMARKS: dict[str, tuple[str, int]] = {
    "ingest": ("ingest", 300_000),
    "merge": ("merge", 1_000_000),
    "daemon_buffer": ("daemon_buffer", 1_000_000),
    "rate": ("rate", 1_000_000),
    "charges": ("charges", 20_000),
    "mediate": ("mediate", 200_000),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__)
    parser.add_argument("names", nargs="*", help=f"benchmarks to run (default all: {', '.join(BENCHMARKS)})")
    parser.add_argument("--n", type=int, default=None, help="size of the generated data")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--workdir", type=Path, default=None, help="where to put data (default: a temp folder)")
    args = parser.parse_args(argv)
    names = args.names or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    results = []
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        for name in names:
            module_name, default_n = BENCHMARKS[name]
            module = importlib.import_module(f"tests.bench.{module_name}")
            n = args.n or default_n
            workdir = Path(tmp) / name
            workdir.mkdir()
            print(f"# {name} (n={n:,})", flush=True)
            for figure in module.run(n, workdir):
                print(figure.line(), flush=True)
                results.append({"benchmark": name, "n": n, **figure.as_dict()})
    if args.json:
        args.json.write_text(json.dumps({
            "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "machine": platform.platform(),
            "python": sys.version.split()[0],
            "figures": results,
        }, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
