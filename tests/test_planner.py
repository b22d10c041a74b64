"""billing-planner-daily on a real billing.db: start, stop, switch, catch-up, failures."""

from __future__ import annotations

import subprocess

import pytest

from .charges_helpers import insert, make_root, mbg, schedule, subscriptions
from .conftest import command, run_env


@pytest.fixture
def root(tmp_path):
    root = make_root(tmp_path / "root")
    insert(root, "accounts", [("a1", "One"), ("a2", "Two"), ("a3", "Three")])
    insert(root, "services", [
        ("basic", "", 29999, None, "t-basic"),
        ("premium", "", 100000, None, "t-premium"),
        ("tv", "", None, 1000, None),
    ])
    return root


def entry(date, account, action, service, new_service=None):
    return (date, account, action, service, new_service, "pending", "")


def test_start_stop_and_switch(root):
    insert(root, "subscriptions", [("a2", "basic", "2009-10-01", None), ("a3", "tv", "2009-10-01", None)])
    insert(root, "schedule", [
        entry("2009-11-10", "a1", "start", "basic"),
        entry("2009-11-10", "a2", "switch", "basic", "premium"),
        entry("2009-11-10", "a3", "stop", "tv"),
    ])
    result = mbg(root, "planner", "2009-11-10")
    assert result.exit_code == 0, result.output
    assert subscriptions(root) == [
        ("a1", "basic", "2009-11-10", None),
        ("a2", "basic", "2009-10-01", "2009-11-10"),
        ("a2", "premium", "2009-11-10", None),
        ("a3", "tv", "2009-10-01", "2009-11-10"),
    ]
    assert [row[5:] for row in schedule(root)] == [("done", "")] * 3
    assert result.stdout.splitlines() == [
        "2009-11-10 a1 start basic: open a1 basic from 2009-11-10",
        "2009-11-10 a2 switch basic -> premium: close a2 basic (from 2009-10-01) at 2009-11-10; "
        "open a2 premium from 2009-11-10",
        "2009-11-10 a3 stop tv: close a3 tv (from 2009-10-01) at 2009-11-10",
    ]
    assert result.stderr.strip() == "planner 2009-11-10: done 3, failed 0"


def test_catches_up_missed_days_in_date_order_and_leaves_the_future(root):
    # Inserted newest first: only date order makes every entry succeed.
    insert(root, "schedule", [
        entry("2009-12-01", "a1", "stop", "premium"),
        entry("2009-11-20", "a1", "stop", "premium"),
        entry("2009-11-10", "a1", "switch", "basic", "premium"),
        entry("2009-11-01", "a1", "start", "basic"),
    ])
    result = mbg(root, "planner", "2009-11-22")
    assert result.exit_code == 0, result.output
    assert subscriptions(root) == [
        ("a1", "basic", "2009-11-01", "2009-11-10"),
        ("a1", "premium", "2009-11-10", "2009-11-20"),
    ]
    states = {(row[0], row[2]): row[5] for row in schedule(root)}
    assert states == {("2009-11-01", "start"): "done", ("2009-11-10", "switch"): "done",
                      ("2009-11-20", "stop"): "done", ("2009-12-01", "stop"): "pending"}
    assert [line.split(":")[0] for line in result.stdout.splitlines()] == [
        "2009-11-01 a1 start basic", "2009-11-10 a1 switch basic -> premium", "2009-11-20 a1 stop premium"]


def test_a_second_run_changes_nothing(root):
    insert(root, "schedule", [entry("2009-11-01", "a1", "start", "basic"),
                              entry("2009-11-15", "a1", "switch", "basic", "premium")])
    assert mbg(root, "planner", "2009-11-30").exit_code == 0
    subs, sched = subscriptions(root), schedule(root)
    again = mbg(root, "planner", "2009-11-30")
    assert again.exit_code == 0
    assert again.stdout == "" and "done 0, failed 0" in again.stderr
    assert (subscriptions(root), schedule(root)) == (subs, sched)


def test_a_failing_entry_does_not_block_the_others_and_is_retried(root):
    insert(root, "subscriptions", [("a2", "basic", "2009-10-01", None)])
    insert(root, "schedule", [
        entry("2009-11-05", "a1", "start", "gold"),                 # unknown service
        entry("2009-11-05", "a2", "start", "basic"),                # already subscribed
        entry("2009-11-06", "a3", "stop", "basic"),                 # nothing to stop
        entry("2009-11-07", "nobody", "start", "basic"),            # unknown account
        entry("2009-11-08", "a2", "switch", "basic", "gold"),       # second half fails
        entry("2009-11-09", "a3", "start", "tv"),                   # fine
    ])
    result = mbg(root, "planner", "2009-11-10")
    assert result.exit_code == 3
    reasons = {(row[0], row[1]): (row[5], row[6]) for row in schedule(root)}
    assert reasons == {
        ("2009-11-05", "a1"): ("failed", "unknown service gold"),
        ("2009-11-05", "a2"): ("failed", "already subscribed to basic from 2009-10-01"),
        ("2009-11-06", "a3"): ("failed", "no open subscription of basic on 2009-11-06"),
        ("2009-11-07", "nobody"): ("failed", "unknown account nobody"),
        ("2009-11-08", "a2"): ("failed", "unknown service gold"),
        ("2009-11-09", "a3"): ("done", ""),
    }
    # The failed switch left basic open: nothing of a failed entry stays.
    assert subscriptions(root) == [("a2", "basic", "2009-10-01", None), ("a3", "tv", "2009-11-09", None)]
    assert "2009-11-05 a1 start gold: failed: unknown service gold" in result.stdout
    assert "done 1, failed 5" in result.stderr

    # The operator adds the missing service: the next run applies what now can be.
    insert(root, "services", [("gold", "", 500000, None, None)])
    retry = mbg(root, "planner", "2009-11-10")
    assert retry.exit_code == 3
    assert "done 2, failed 3" in retry.stderr
    assert subscriptions(root) == [
        ("a1", "gold", "2009-11-05", None),
        ("a2", "basic", "2009-10-01", "2009-11-08"),
        ("a2", "gold", "2009-11-08", None),
        ("a3", "tv", "2009-11-09", None),
    ]


def test_switch_needs_a_new_service(root):
    insert(root, "subscriptions", [("a1", "basic", "2009-10-01", None)])
    insert(root, "schedule", [entry("2009-11-05", "a1", "switch", "basic", None),
                              entry("2009-11-06", "a1", "switch", "basic", "basic")])
    assert mbg(root, "planner", "2009-11-30").exit_code == 3
    assert [row[6] for row in schedule(root)] == ["switch without new_service",
                                                  "switch from basic to itself"]
    assert subscriptions(root) == [("a1", "basic", "2009-10-01", None)]


def test_stop_and_start_on_one_date_resubscribes(root):
    insert(root, "subscriptions", [("a1", "basic", "2009-10-01", None)])
    insert(root, "schedule", [entry("2009-11-05", "a1", "start", "basic"),
                              entry("2009-11-05", "a1", "stop", "basic")])
    assert mbg(root, "planner", "2009-11-05").exit_code == 0
    assert subscriptions(root) == [("a1", "basic", "2009-10-01", "2009-11-05"),
                                   ("a1", "basic", "2009-11-05", None)]


def test_stop_ends_a_subscription_with_a_later_stop(root):
    insert(root, "subscriptions", [("a1", "basic", "2009-10-01", "2010-01-01")])
    insert(root, "schedule", [entry("2009-11-05", "a1", "stop", "basic")])
    assert mbg(root, "planner", "2009-11-05").exit_code == 0
    assert subscriptions(root) == [("a1", "basic", "2009-10-01", "2009-11-05")]


def test_dry_run_prints_what_would_change_and_changes_nothing(root):
    insert(root, "subscriptions", [("a2", "basic", "2009-10-01", None)])
    insert(root, "schedule", [entry("2009-11-01", "a1", "start", "basic"),
                              entry("2009-11-10", "a1", "switch", "basic", "premium"),
                              entry("2009-11-10", "a3", "stop", "tv")])
    subs, sched = subscriptions(root), schedule(root)
    result = mbg(root, "planner", "--dry-run", "2009-11-30")
    assert result.exit_code == 3  # one entry would fail
    assert result.stdout.splitlines() == [
        "2009-11-01 a1 start basic: would open a1 basic from 2009-11-01",
        "2009-11-10 a1 switch basic -> premium: would close a1 basic (from 2009-11-01) at 2009-11-10; "
        "open a1 premium from 2009-11-10",
        "2009-11-10 a3 stop tv: would fail: no open subscription of tv on 2009-11-10",
    ]
    assert "dry run, nothing changed" in result.stderr
    assert (subscriptions(root), schedule(root)) == (subs, sched)
    # The real run does what the dry run said.
    real = mbg(root, "planner", "2009-11-30")
    assert real.stdout.replace("would ", "").replace("would fail", "failed") == \
        result.stdout.replace("would ", "").replace("fail:", "failed:")


@pytest.mark.parametrize("bad", ["2009-11-31", "11/22/2009", "2009-11", ""])
def test_a_bad_day_exits_2_and_changes_nothing(root, bad):
    insert(root, "schedule", [entry("2009-11-01", "a1", "start", "basic")])
    result = mbg(root, "planner", bad)
    assert result.exit_code == 2 and "bad day" in result.stderr
    assert schedule(root)[0][5] == "pending" and subscriptions(root) == []


def test_installed_script_exit_codes(root):
    env = run_env(MBGROOT=str(root.path))
    insert(root, "schedule", [entry("2009-11-01", "a1", "start", "basic")])
    out = subprocess.run([command("billing-planner-daily"), "2009-11-22"], capture_output=True,
                         text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert subscriptions(root) == [("a1", "basic", "2009-11-01", None)]
    insert(root, "schedule", [entry("2009-11-02", "a1", "start", "basic")])
    out = subprocess.run([command("billing_planner_daily"), "-root", str(root.path), "2009-11-22"],
                         capture_output=True, text=True)
    assert out.returncode == 3
    assert "already subscribed to basic from 2009-11-01" in out.stdout


def test_an_entry_already_in_the_data_is_done_without_change(root):
    # The operator loaded the subscriptions as the schedule will make them.
    insert(root, "subscriptions", [("a1", "basic", "2009-10-01", "2009-11-15"),
                                   ("a1", "premium", "2009-11-15", None)])
    insert(root, "schedule", [entry("2009-11-15", "a1", "switch", "basic", "premium")])
    subs = subscriptions(root)
    result = mbg(root, "planner", "2009-11-15")
    assert result.exit_code == 0, result.output
    assert result.stdout == ("2009-11-15 a1 switch basic -> premium: a1 basic already closed at "
                             "2009-11-15; a1 premium already open from 2009-11-15\n")
    assert subscriptions(root) == subs and schedule(root)[0][5] == "done"


def test_a_switch_on_the_start_day_leaves_a_dump_that_loads_again(root, tmp_path):
    """Closed on its first day, a subscription was never active: it is removed, so that
    `mbg dump subscriptions` stays loadable (mbg load refuses stop <= start)."""
    insert(root, "subscriptions", [("a1", "basic", "2009-11-10", None)])
    insert(root, "schedule", [entry("2009-11-10", "a1", "switch", "basic", "premium")])
    result = mbg(root, "planner", "2009-11-10")
    assert result.exit_code == 0, result.output
    assert subscriptions(root) == [("a1", "premium", "2009-11-10", None)]
    assert "cancel a1 basic (from 2009-11-10, never active)" in result.stdout
    dump = mbg(root, "dump", "subscriptions")
    assert dump.exit_code == 0
    csv_file = tmp_path / "subscriptions.csv"
    csv_file.write_text(dump.stdout)
    again = mbg(root, "load", "subscriptions", str(csv_file))
    assert again.exit_code == 0, again.output
    assert subscriptions(root) == [("a1", "premium", "2009-11-10", None)]
