"""mbg demo end to end, as a new user runs it: the installed command in a fresh folder."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from mbg import db

from .conftest import command

MONTH_FILE = "dataset/telephony/2009-10-01.db"


def run(*args: str, cwd: Path, env_root: Path | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "MBGROOT"}
    if env_root is not None:
        env["MBGROOT"] = str(env_root)
    return subprocess.run([command("mbg"), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=120)


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess, float]:
    """One demo run with the default --root, in an empty working folder."""
    cwd = tmp_path_factory.mktemp("fresh")
    started = time.monotonic()
    done = run("demo", cwd=cwd)
    return cwd / "mbg-demo", done, time.monotonic() - started


def query(path: Path, kind: str, sql: str, *params) -> list[tuple]:
    conn = db.connect(path, kind, readonly=True)
    try:
        return conn.execute(sql, params).fetchall()
    finally:
        conn.close()


def test_demo_builds_the_tree_and_prints_the_report(demo_run):
    root, done, seconds = demo_run
    assert done.returncode == 0, done.stderr
    assert seconds < 60  # "seconds": about 1.5 s on a quiet machine
    out = done.stdout
    assert f"Sample MBGROOT: {root}" in out
    for text in ("mbg load accounts", "telephony-agent-callbuilder", "telephony-agent-tacacs",
                 "telephony-agent-asterisk", "telephony-rating-monthly 2009-10-01",
                 "billing-planner-daily 2009-10-31", "Calls and charges, 2009-10",
                 "grand total", "Next, try:", f"export MBGROOT={root};"):
        assert text in out, text
    assert (root / ".mbg-demo").is_file()
    assert (root / "etc/mbg.toml").is_file() and (root / "etc/mediation.toml").is_file()


def test_demo_collected_all_three_formats_and_kept_the_bad_lines(demo_run):
    root, done, _ = demo_run
    sources = dict(query(root / MONTH_FILE, "dataset",
                         "SELECT source, count(*) FROM telephony_log GROUP BY source"))
    assert sources == {"vk-pbx-1": 14, "gw-msk-1": 10, "pbx-ast": 7}
    assert query(root / MONTH_FILE, "dataset",
                 "SELECT count(*) FROM telephony_log WHERE is_new = 1") == [(0,)]
    rejected = [line for f in sorted((root / "dataset/telephony/reject").iterdir())
                for line in f.read_text().splitlines()]
    assert len(rejected) == 5
    assert any(line.startswith("impossible date 32-10-09\t") for line in rejected)
    assert any("6x5" in line for line in rejected)
    assert "rejected 2" in done.stderr and "rejected 1" in done.stderr


def test_demo_report_totals_equal_the_databases(demo_run):
    root, _, _ = demo_run
    done = run("report", "2009-10", "--format", "json", cwd=root.parent, env_root=root)
    assert done.returncode == 0, done.stderr
    data = json.loads(done.stdout)

    billing = root / "data/billing.db"
    routes = [r[0] for r in query(billing, "billing",
                                  "SELECT tariff FROM routes EXCEPT SELECT tariff FROM services "
                                  "WHERE tariff IS NOT NULL")]
    assert sorted(routes) == ["provider-b", "rostelecom"]
    charges = query(billing, "billing", "SELECT sum(amount) FROM charges "
                    "WHERE day >= '2009-10-01' AND day < '2009-11-01'")[0][0]
    (plan, route, calls), = query(
        root / MONTH_FILE, "dataset",
        "SELECT sum(CASE WHEN tariff IN (?, ?) THEN 0 ELSE amount END), "
        "sum(CASE WHEN tariff IN (?, ?) THEN amount ELSE 0 END), "
        "count(DISTINCT CASE WHEN tariff IN (?, ?) THEN NULL ELSE log_id END) FROM telephony_cost",
        *routes, *routes, *routes)
    assert plan > 0 and route > 0 and charges > 0

    def minor(text: str) -> int:
        whole, part = text.split(".")
        return int(whole) * 100 + int(part)

    totals = data["totals"]
    assert minor(totals["calls_amount"]) == plan
    assert minor(totals["charges_amount"]) == charges
    assert minor(totals["total"]) == plan + charges
    assert minor(totals["cost"]) == route
    assert totals["calls"] == calls
    per_account = query(billing, "billing",
                        "SELECT account, sum(amount) FROM charges GROUP BY account ORDER BY account")
    assert [(a["account"], minor(a["charges_amount"])) for a in data["accounts"] if a["charges"]] \
        == per_account
    # Every account of the sample bills something this month.
    assert {a["account"] for a in data["accounts"]} >= {"acme", "globex", "hooli", "initech"}


def test_demo_sample_month_as_designed(demo_run):
    """The stories the sample data tells, read back from the files."""
    root, _, _ = demo_run
    billing = root / "data/billing.db"
    # The schedule ran: globex switched plans on the 15th, hooli added voicemail, acme
    # returned its phone.
    assert query(billing, "billing", "SELECT state, count(*) FROM schedule GROUP BY state") == \
        [("done", 3)]
    assert query(billing, "billing",
                 "SELECT service, start, stop FROM subscriptions WHERE account = 'globex' "
                 "ORDER BY start") == [("basic", "2009-06-01", "2009-10-15"),
                                       ("business", "2009-10-15", None)]
    days = dict(query(billing, "billing",
                      "SELECT account || ' ' || service, count(*) FROM charges GROUP BY 1"))
    assert days == {"acme basic": 31, "acme phone-rent": 19, "globex basic": 14,
                    "globex business": 17, "hooli basic": 27, "hooli voicemail": 22,
                    "initech business": 31}
    # A full month of a monthly fee adds up to the fee exactly.
    assert query(billing, "billing", "SELECT sum(amount) FROM charges "
                 "WHERE account = 'acme' AND service = 'basic'") == [(30000,)]
    # Extension 2347 moved from acme to globex on the 15th, when globex switched to the
    # business plan: its calls follow it.
    moved = query(root / MONTH_FILE, "dataset",
                  "SELECT l.calldate, c.account, c.tariff FROM telephony_cost c JOIN telephony_log l "
                  "ON l.id = c.log_id WHERE l.src = '2347' AND c.tariff != 'rostelecom' ORDER BY 1")
    assert moved == [("2009-10-12 12:00:00", "acme", "basic"),
                     ("2009-10-16 12:00:00", "globex", "business")]
    # Extension 2399 belongs to no customer, yet its call costs the operator its route.
    dataset = root / MONTH_FILE
    assert query(dataset, "dataset",
                 "SELECT u.tariff, u.reason FROM telephony_unrated u JOIN telephony_log l "
                 "ON l.id = u.log_id WHERE l.src = '2399'") == [("", "unknown account")]
    assert query(dataset, "dataset",
                 "SELECT c.tariff, c.account, c.number, c.amount FROM telephony_cost c "
                 "JOIN telephony_log l ON l.id = c.log_id WHERE l.src = '2399'") == \
        [("rostelecom", "", "74951112200", 6)]  # 88 s at 0.04 a minute


def test_demo_rates_through_the_mediation_rules(demo_run):
    """One leg per gateway call, no internal calls, no call without a called number;
    the rest normalized to international form and priced by direction."""
    root, _, _ = demo_run
    dataset = root / MONTH_FILE
    reasons = dict(query(dataset, "dataset",
                         "SELECT reason, count(*) FROM telephony_unrated GROUP BY reason"))
    assert reasons == {"skipped: skip_answer_leg": 4, "skipped: internal": 2,
                       "invalid: dst required": 1, "unknown account": 1, "no tariff": 1}
    numbers = {n for (n,) in query(dataset, "dataset", "SELECT number FROM telephony_cost")}
    assert numbers and all(n.isdigit() and n.startswith(("7", "44")) for n in numbers), numbers
    directions = {d for (d,) in query(dataset, "dataset",
                                      "SELECT direction FROM telephony_cost WHERE tariff = 'basic'")}
    assert directions == {"local", "mobile", "national", "international"}
    # The 10 free city minutes of the basic plan, used up by acme and by hooli.
    assert query(dataset, "dataset", "SELECT account, tariff, bucket, seconds FROM "
                 "telephony_counter ORDER BY account") == [("acme", "basic", "city", 600),
                                                           ("hooli", "basic", "city", 600)]
    # Acme's call 5 finished the bundle: 60 of its 660 billed seconds were free.
    assert query(dataset, "dataset", "SELECT seconds, bucket_seconds, amount FROM telephony_cost "
                 "WHERE log_id = 5 AND tariff = 'basic'") == [(660, 60, 450)]


def test_demo_again_replaces_its_own_tree(demo_run, tmp_path):
    root, first, _ = demo_run
    target = tmp_path / "again"
    for _ in range(2):
        done = run("demo", "--root", str(target), cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    assert query(target / MONTH_FILE, "dataset", "SELECT count(*) FROM telephony_log") == [(31,)]
    # Same sample, same bill.
    report = [line for line in first.stdout.splitlines() if "grand total" in line]
    assert report and report == [line for line in done.stdout.splitlines() if "grand total" in line]


def test_demo_refuses_a_folder_it_did_not_make(tmp_path):
    precious = tmp_path / "precious"
    precious.mkdir()
    (precious / "billing-notes.txt").write_text("do not lose me\n")
    done = run("demo", "--root", str(precious), cwd=tmp_path)
    assert done.returncode == 2
    assert "refusing to overwrite" in done.stderr
    assert sorted(p.name for p in precious.iterdir()) == ["billing-notes.txt"]
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    assert run("demo", "--root", str(a_file), cwd=tmp_path).returncode == 2
    done = run("demo", "--root", str(a_file / "below"), cwd=tmp_path)
    assert done.returncode == 2 and "cannot build the demo tree there" in done.stderr
    assert len(done.stderr.strip().splitlines()) == 1
