"""The benchmark command (python -m tests.bench): figures, the targets table, --json."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from .bench.__main__ import targets_table

ROOT = Path(__file__).resolve().parent.parent


def test_one_benchmark_prints_its_figures_and_writes_json(tmp_path):
    out = tmp_path / "figures.json"
    done = subprocess.run([sys.executable, "-m", "tests.bench", "rate", "--n", "3000",
                           "--json", str(out), "--workdir", str(tmp_path)],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "rating force" in done.stdout and "ceiling" in done.stdout
    assert "# SPEC section 12 targets" in done.stdout
    data = json.loads(out.read_text())
    names = {f["name"]: f for f in data["figures"]}
    force = names["rating force"]
    assert force["benchmark"] == "rate" and force["n"] == 3000 and force["unit"] == "calls/s"
    assert force["ceiling"] > 0 and abs(force["ratio"] - force["value"] / force["ceiling"]) < 1e-9
    assert force["target"] == ">= 100,000 calls/s" and force["ok"] == (force["value"] >= 100_000)
    assert data["targets_met"] == all(f["ok"] for f in data["figures"] if f["ok"] is not None)
    assert data["command"].startswith("python -m tests.bench rate")
    assert list(tmp_path.iterdir()) == [out]  # the generated data is gone


def test_targets_table_lists_only_figures_with_a_target():
    rows = [
        {"name": "a", "value": 120.0, "unit": "x/s", "ceiling": 200.0, "ratio": 0.6,
         "target": ">= 0.5 of ceiling", "ok": True},
        {"name": "b", "value": 3.0, "unit": "s", "ceiling": None, "ratio": None,
         "target": "", "ok": None},
        {"name": "c", "value": 12.5, "unit": "s", "ceiling": None, "ratio": None,
         "target": "<= 10 s", "ok": False},
    ]
    lines = targets_table(rows).splitlines()
    assert lines[2] == "| a | 120.0 x/s | 200 x/s | 0.60 | >= 0.5 of ceiling | yes |"
    assert lines[3] == "| c | 12.5 s |  |  | <= 10 s | NO |"
    assert len(lines) == 4


def test_unknown_benchmark_is_a_usage_error():
    done = subprocess.run([sys.executable, "-m", "tests.bench", "nosuch"], cwd=ROOT,
                          capture_output=True, text=True)
    assert done.returncode == 2 and "unknown benchmark(s): nosuch" in done.stderr
