"""Run the benchmarks: python -m tests.bench [all | NAME ...] [--n N] [--json FILE].

With no name (or ``all``) every benchmark of SPEC section 12 runs, each figure printed
as it comes beside the raw ceiling measured in the same run; at the end a table repeats
the figures that have a SPEC target, with the ratio to the ceiling and whether the target
is met. ``--json FILE`` writes every figure, the targets table and the machine. Data is
generated with fixed seeds, so two runs measure the same work.

``scaling`` (minutes: up to 5,000,000 calls) is not part of ``all``; run it by name.
Each benchmark module has ``run(n, workdir) -> list[Figure]``; register it below.
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
    "scaling": ("scaling", 5_000_000),
}
NOT_IN_ALL = {"scaling"}  # long; run by name


def targets_table(results: list[dict]) -> str:
    """The figures that have a SPEC target, one line each, as a Markdown table."""
    lines = ["| figure | value | ceiling (same run) | ratio | target | met |",
             "|---|---:|---:|---:|---|---|"]
    for r in results:
        if not r["target"]:
            continue
        ceiling = f"{r['ceiling']:,.0f} {r['unit']}" if r["ceiling"] else ""
        ratio = f"{r['ratio']:.2f}" if r["ratio"] else ""
        met = "" if r["ok"] is None else ("yes" if r["ok"] else "NO")
        lines.append(f"| {r['name']} | {r['value']:,.1f} {r['unit']} | {ceiling} | {ratio} | "
                     f"{r['target']} | {met} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*",
                        help=f"benchmarks to run: all (default) or some of {', '.join(BENCHMARKS)}")
    parser.add_argument("--n", type=int, default=None, help="size of the generated data")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where to put data (default: a temp folder)")
    args = parser.parse_args(argv)
    names = [n for n in args.names if n != "all"]
    if not names:
        names = [n for n in BENCHMARKS if n not in NOT_IN_ALL]
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(unknown)}")
    results = []
    started = time.perf_counter()
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
    table = targets_table(results)
    print("\n# SPEC section 12 targets (ratio = figure / ceiling of this run)")
    print(table)
    if args.json:
        args.json.write_text(json.dumps({
            "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "machine": platform.platform(),
            "python": sys.version.split()[0],
            "command": " ".join(["python -m tests.bench",
                                 *(argv if argv is not None else sys.argv[1:])]),
            "seconds": round(time.perf_counter() - started, 1),
            "figures": results,
            "targets_met": all(r["ok"] for r in results if r["ok"] is not None),
        }, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
