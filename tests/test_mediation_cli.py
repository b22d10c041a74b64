"""mbg mediate on real files, and the rules in rating (a real dataset re-rated by force)."""

from __future__ import annotations

import subprocess
from importlib import resources

from click.testing import CliRunner

from mbg import db, rating
from mbg.cli import main
from mbg.mediation import load_optional_rules, load_rules
from mbg.tariffs import load_reference

from .conftest import command, make_dataset
from .rating_helpers import call, query, setup_root

RULES = """
chain = ["skip_unanswered", "skip_internal", "dst_8_to_7", "local_dst"]

[constants]
city = "7495"

[rules.skip_unanswered]
kind = "skip"
when = "billsec == 0"

[rules.skip_internal]
kind = "skip"
when = "len(dst) <= 4"

[rules.dst_8_to_7]
kind = "replace"
field = "dst"
when = "len(dst) == 11"
map = [["^8", "7"]]

[rules.local_dst]
kind = "prepend"
field = "dst"
when = "len(dst) == 7"
value = "city"

[validate.dst]
length = [11, 15]
"""


def mbg(*args, input=None):
    try:
        runner = CliRunner(mix_stderr=False)  # click 8.1 (Debian 12) mixes stderr otherwise
    except TypeError:
        runner = CliRunner()  # click >= 8.2: stderr always apart
    return runner.invoke(main, [str(a) for a in args], input=input)


def month_root(tmp_path, rules_text=RULES):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    if rules_text is not None:
        (root / "etc" / "mediation.toml").write_text(rules_text)
    make_dataset(root / "dataset" / "telephony" / "2009-10-01.db", [
        call("2009-10-01 10:00:00", "2345", "84951234567", 60, "long"),
        call("2009-10-01 10:01:00", "2345", "1234567", 60, "local"),
        call("2009-10-01 10:02:00", "2345", "2346", 60, "internal"),
        call("2009-10-01 10:03:00", "2345", "74951234567", 60, "plain"),
        call("2009-10-01 10:04:00", "2345", "12345", 60, "short"),
        call("2009-10-01 10:05:00", "2345", "84951234567", 0, "unanswered"),
    ])
    return root


def blocks(output: str) -> list[str]:
    out, current = [], []
    for line in output.splitlines():
        if not line.startswith(" ") and current:
            out.append("\n".join(current))
            current = []
        current.append(line)
    if current:
        out.append("\n".join(current))
    return out


def test_mediate_month(tmp_path):
    root = month_root(tmp_path)
    result = mbg("mediate", "2009-10", "--root", root)
    assert result.exit_code == 0, result.output
    b = blocks(result.stdout)
    assert len(b) == 6
    assert b[0] == ("call 1  2009-10-01 10:00:00  pbx  2345 -> 84951234567\n"
                    "    dst: 84951234567 -> 74951234567\n"
                    "    fired: dst_8_to_7\n"
                    "    result: ok")
    assert "dst: 1234567 -> 74951234567" in b[1] and "fired: local_dst" in b[1]
    assert b[2].endswith("fired: skip_internal\n    result: skipped: skip_internal")
    assert "dst:" not in b[3] and b[3].endswith("fired: -\n    result: ok")
    assert b[4].endswith("result: invalid: dst length")
    assert b[5].endswith("result: skipped: skip_unanswered")
    assert "mediate: 6 calls, 2 changed, 2 skipped, 1 invalid" in result.stderr


def test_mediate_month_changed_and_limit(tmp_path):
    root = month_root(tmp_path)
    result = mbg("mediate", "2009-10-01", "--root", root, "--changed")
    assert [x.split("  ")[0] for x in blocks(result.stdout)] == ["call 1", "call 2", "call 3", "call 5", "call 6"]
    result = mbg("mediate", "2009-10", "--root", root, "--limit", "2")
    assert len(blocks(result.stdout)) == 2


def test_rules_option_overrides_the_root_file(tmp_path):
    root = month_root(tmp_path)
    other = tmp_path / "other.toml"
    other.write_text('chain = ["all"]\n[rules.all]\nkind = "skip"\n')
    result = mbg("mediate", "2009-10", "--root", root, "--rules", other)
    assert result.exit_code == 0
    assert result.stdout.count("result: skipped: all") == 6


def test_mediate_stdin_callbuilder(tmp_path):
    root = month_root(tmp_path)
    lines = (
        b"A2345 2345 84951234567 C0100517 2345 4951234567 30-08-12 14:29:21 130 107 16\r\n"
        b"not a cdr\r\n"
        b"A2345 2345 1234567 C0100517 2345 4951234567 30-08-12 14:30:00 30 20 16\r\n"
    )
    result = mbg("mediate", "-", "--format", "callbuilder", "--source", "vk-pbx-1", "--root", root,
                 input=lines)
    assert result.exit_code == 0, result.output
    b = blocks(result.stdout)
    assert b[0].startswith("record 1  2012-08-30 14:29:21  vk-pbx-1  2345 -> 84951234567")
    assert "dst: 84951234567 -> 74951234567" in b[0]
    assert b[1].startswith("line 2: rejected:")
    assert "dst: 1234567 -> 74951234567" in b[2]
    assert "2 calls, 2 changed, 0 skipped, 0 invalid, 1 lines rejected" in result.stderr


def test_mediate_stdin_needs_format(tmp_path):
    root = month_root(tmp_path)
    result = mbg("mediate", "-", "--root", root, input=b"")
    assert result.exit_code == 2 and "--format" in result.stderr


def test_example_printed_is_the_installed_file_and_valid(tmp_path):
    result = mbg("mediate", "--example")
    assert result.exit_code == 0
    installed = resources.files("mbg.examples").joinpath("mediation.toml").read_text("utf-8")
    assert result.stdout == installed
    path = tmp_path / "mediation.toml"
    path.write_text(result.stdout)
    check = mbg("mediate", "--check", "--rules", path)
    assert check.exit_code == 0 and check.stdout.endswith(": ok\n")


def test_hostile_rules_file_exit_2_naming_the_rule(tmp_path):
    marker = tmp_path / "executed"
    root = month_root(tmp_path, rules_text=(
        'chain = ["evil"]\n[rules.evil]\nkind = "skip"\n'
        f'when = "__import__(\'os\').system(\'touch {marker}\') == 0"\n'
    ))
    # The installed console script, as an operator runs it.
    proc = subprocess.run([command("mbg"), "mediate", "2009-10", "--root", str(root)],
                          capture_output=True, text=True)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "rule evil: when" in proc.stderr and "mediation.toml" in proc.stderr
    assert not marker.exists()


def test_missing_rules_file(tmp_path):
    root = month_root(tmp_path, rules_text=None)
    result = mbg("mediate", "2009-10", "--root", root)
    assert result.exit_code == 2 and "mbg mediate --example" in result.stderr
    result = mbg("mediate", "2009-10", "--root", root, "--rules", tmp_path / "nope.toml")
    assert result.exit_code == 2 and "no such rules file" in result.stderr


def test_missing_month(tmp_path):
    root = month_root(tmp_path)
    result = mbg("mediate", "2009-11", "--root", root)
    assert result.exit_code == 2 and "no dataset" in result.stderr
    assert mbg("mediate", "2009-13", "--root", root).exit_code == 2


def test_load_optional_rules(tmp_path):
    assert load_optional_rules(tmp_path / "absent.toml") is None
    path = tmp_path / "m.toml"
    path.write_text(RULES)
    assert load_optional_rules(path).chain[0] == "skip_unanswered"
    assert load_optional_rules(tmp_path / "absent.toml", path).chain[0] == "skip_unanswered"


# --- the rules in rating ------------------------------------------------------------------

A1 = "2345"


def force(root, rules):
    billing = db.connect(root / "data" / "billing.db", "billing", readonly=True)
    ref = load_reference(billing, 2, "half-up")
    billing.close()
    conn = db.connect(root / "dataset" / "telephony" / "2009-10-01.db", "dataset")
    try:
        return rating.force_month(conn, ref, rules=rules)
    finally:
        conn.close()


def results(root):
    path = root / "dataset" / "telephony" / "2009-10-01.db"
    cost = query(path, "SELECT l.callid, c.number, c.prefix, c.amount FROM telephony_cost c "
                       "JOIN telephony_log l ON l.id = c.log_id ORDER BY l.callid")
    unrated = query(path, "SELECT l.callid, u.reason FROM telephony_unrated u "
                          "JOIN telephony_log l ON l.id = u.log_id ORDER BY l.callid")
    return cost, unrated


def test_rating_follows_the_rules_after_an_edit_and_a_force_run(tmp_path):
    root = setup_root(
        tmp_path / "r",
        accounts="A1,Alpha",
        numbers=f"{A1},A1,2009-01-01,",
        services="phone,Phone,,,T",
        subscriptions="A1,phone,2009-01-01,",
        tariffs="T,7495,local,0.60,1,1,,,\nT,8,long,1.20,1,1,,,",
    )
    make_dataset(root / "dataset" / "telephony" / "2009-10-01.db", [
        call("2009-10-01 10:00:00", A1, "84951234567", 60, "a-long"),
        call("2009-10-01 10:01:00", A1, "1234567", 60, "b-local"),
        call("2009-10-01 10:02:00", A1, "2346", 60, "c-internal"),
    ])
    rules_path = root / "etc" / "mediation.toml"
    rules_path.write_text(RULES)

    force(root, None)  # without rules: the numbers as received
    cost, unrated = results(root)
    assert cost == [("a-long", "84951234567", "8", 120)]
    assert unrated == [("b-local", "no rate"), ("c-internal", "no rate")]

    force(root, load_rules(rules_path))
    cost, unrated = results(root)
    assert cost == [("a-long", "74951234567", "7495", 60), ("b-local", "74951234567", "7495", 60)]
    assert unrated == [("c-internal", "skipped: skip_internal")]

    # Edit the rules: no more 8 -> 7, internal calls validated instead of skipped.
    rules_path.write_text(RULES.replace('"skip_internal", "dst_8_to_7", ', ""))
    force(root, load_rules(rules_path))
    cost, unrated = results(root)
    assert cost == [("a-long", "84951234567", "8", 120), ("b-local", "74951234567", "7495", 60)]
    assert unrated == [("c-internal", "invalid: dst length")]


TACACS_STOP = "\t".join([
    "Tue Oct  6 10:18:43 2009", "10.20.0.1", "84951234567", "unknown", "4957391100/84951234567",
    "stop", "task_id=101", "service=connection", "protocol=h323", "h323-gw-id=gw-msk-1",
    "h323-conf-id=1A2B3C4D 11D6F08E 8058C840 5D76F8B3", "h323-call-origin={origin}",
    "h323-call-type=VoIP", "h323-setup-time=10:15:33.120 UTC Tue Oct 6 2009",
    "h323-connect-time=10:15:39.120 UTC Tue Oct 6 2009",
    "h323-disconnect-time=10:18:43.490 UTC Tue Oct 6 2009", "h323-disconnect-cause=10",
    "elapsed_time=184",
])


def test_mediate_stdin_tacacs_with_extra(tmp_path):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "mbg.toml").write_text('timezone = "UTC"\n')
    rules = tmp_path / "legs.toml"
    rules.write_text(
        'chain = ["answer_leg", "dst_8_to_7", "nas"]\n'
        '[rules.answer_leg]\nkind = "skip"\nwhen = "\'/answer/\' in callid"\n'
        '[rules.dst_8_to_7]\nkind = "replace"\nfield = "dst"\nmap = [["^8", "7"]]\n'
        '[rules.nas]\nkind = "set"\nfield = "source"\nvalue = \'extra["nas"]\'\n'
        'when = \'extra["protocol"] == "h323"\'\n'
    )
    lines = "".join(TACACS_STOP.format(origin=o) + "\n" for o in ("answer", "originate"))
    result = mbg("mediate", "-", "--format", "tacacs", "--rules", rules, "--root", root,
                 input=lines.encode())
    assert result.exit_code == 0, result.output
    b = blocks(result.stdout)
    assert len(b) == 2
    assert b[0].startswith("record 1  2009-10-06 10:15:33  gw-msk-1  4957391100 -> 84951234567")
    assert b[0].endswith("result: skipped: answer_leg")
    assert b[1].splitlines()[1:] == [
        "    dst: 84951234567 -> 74951234567",
        "    source: gw-msk-1 -> 10.20.0.1",  # from extra, as the tacacs parser stores it
        "    fired: dst_8_to_7, nas",
        "    result: ok",
    ]
