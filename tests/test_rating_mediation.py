"""Rating with mediation rules (SPEC 7.1): skipped and invalid calls are unrated with the
rule's words, the others are rated on the normalized numbers. Uses med's real rules."""

from __future__ import annotations

import sqlite3

from mbg import db
from mbg.mediation import load_rules
from mbg.rating import force_month, rate_month
from mbg.tariffs import load_reference

from .rating_helpers import add_calls, call, costs, mbg, query, results, setup_root, unrated

RULES = """
chain = ["skip_service", "dst_8_to_7", "local_dst"]

[constants]
city = "7495"

[rules.skip_service]
kind = "skip"
when = "dst.startswith('0')"

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


def test_rules_normalize_skip_and_invalidate(tmp_path):
    root = setup_root(tmp_path / "r", accounts="A1,x", numbers="111,A1,2009-01-01,",
                      tariffs="T,,,0.60,1,1,,,\nT,7495,,1.20,1,1,,,",
                      services="phone,,,,T", subscriptions="A1,phone,2009-01-01,")
    (root / "etc" / "mediation.toml").write_text(RULES)
    rules = load_rules(root / "etc" / "mediation.toml")
    path = add_calls(root, [
        call("2009-10-01 10:00:00", "111", "84951234567", 60, "long"),    # -> 74951234567
        call("2009-10-01 10:00:01", "111", "1234567", 60, "local"),       # -> 74951234567
        call("2009-10-01 10:00:02", "111", "01", 60, "service"),          # skipped
        call("2009-10-01 10:00:03", "111", "12345", 60, "short"),         # invalid length
        call("2009-10-01 10:00:04", "111", "12345", 0, "unanswered"),     # not through rules
    ])
    billing = db.connect(root / "data" / "billing.db", "billing", readonly=True)
    ref = load_reference(billing, 2, "half-up")
    billing.close()
    conn = db.connect(path, "dataset")
    result = rate_month(conn, ref, rules=rules)
    conn.close()
    assert (result.calls, result.unanswered, result.costs) == (5, 1, 2)
    assert costs(path) == {"long": [("T", "A1", "7495", "74951234567", 60, 0, 120)],
                           "local": [("T", "A1", "7495", "74951234567", 60, 0, 120)]}
    got = unrated(path)
    assert got["service"] == [("", "skipped: skip_service")]
    assert got["short"][0][0] == "" and got["short"][0][1].startswith("invalid: dst")
    assert "unanswered" not in got
    assert query(path, "SELECT sum(is_new) FROM telephony_log") == [(0,)]
    incremental = results(path)
    conn = db.connect(path, "dataset")
    force_month(conn, ref, rules=rules)
    conn.close()
    assert results(path) == incremental


def _rules_setup(tmp_path):
    root = setup_root(tmp_path / "r", accounts="A1,x", numbers="111,A1,2009-01-01,",
                      tariffs="T,,,0.60,1,1,,,\nT,7495,,1.20,1,1,,,",
                      services="phone,,,,T", subscriptions="A1,phone,2009-01-01,")
    path = add_calls(root, [
        call("2009-10-01 10:00:00", "111", "84951234567", 60, "long"),
        call("2009-10-01 10:00:01", "111", "1234567", 60, "local"),
        call("2009-10-01 10:00:02", "111", "01", 60, "service"),
    ])
    return root, path


def test_commands_apply_etc_mediation_toml_and_a_force_run_follows_edits(tmp_path):
    root, path = _rules_setup(tmp_path)
    rules_file = root / "etc" / "mediation.toml"
    rules_file.write_text(RULES)
    assert mbg("rate", "2009-10", "--root", root).exit_code == 0
    assert costs(path)["local"] == [("T", "A1", "7495", "74951234567", 60, 0, 120)]
    assert unrated(path)["service"] == [("", "skipped: skip_service")]

    # The operator edits the rules: local numbers now belong to another city.
    rules_file.write_text(RULES.replace('city = "7495"', 'city = "7812"'))
    assert mbg("rate", "2009-10", "--root", root).exit_code == 0
    assert costs(path)["local"][0][3] == "74951234567"  # rated calls are never touched again
    result = mbg("rate", "--force", "2009-10", "--root", root)
    assert result.exit_code == 0, result.output
    assert costs(path)["local"] == [("T", "A1", "", "78121234567", 60, 0, 60)]
    assert costs(path)["long"] == [("T", "A1", "7495", "74951234567", 60, 0, 120)]

    call_id = query(path, "SELECT id FROM telephony_log WHERE callid = 'local'")[0][0]
    explained = mbg("explain", "2009-10", call_id, "--root", root)
    assert explained.exit_code == 0, explained.output
    assert "local_dst" in explained.output and "78121234567" in explained.output
    assert "   local_dst: prepend dst value city when len(dst) == 7" in explained.output


def test_rules_option_overrides_and_a_bad_rules_file_changes_nothing(tmp_path):
    root, path = _rules_setup(tmp_path)
    # No etc/mediation.toml: calls are rated on the numbers as received.
    assert mbg("rate", "2009-10", "--root", root).exit_code == 0
    assert costs(path)["long"][0][3] == "84951234567"
    before = results(path)
    bad = tmp_path / "bad.toml"
    bad.write_text(RULES.replace('value = "city"', 'value = "__import__(\'os\')"'))
    result = mbg("rate", "--force", "2009-10", "--rules", bad, "--root", root)
    assert result.exit_code == 2
    assert "local_dst" in result.output
    assert results(path) == before
    good = tmp_path / "good.toml"
    good.write_text(RULES)
    assert mbg("rate", "--force", "2009-10", "--rules", good, "--root", root).exit_code == 0
    assert costs(path)["long"][0][3] == "74951234567"


def test_extra_that_is_not_a_json_object_is_no_extra_to_the_rules(tmp_path):
    """A hand-edited extra (not JSON, or JSON but not an object) reads as no extra, as in
    `mbg mediate` (mediation.call_from_row); it does not stop the rating run. Rules that
    never read extra rate the calls the same, without parsing it."""
    root = setup_root(tmp_path / "r", accounts="A1,x", numbers="111,A1,2009-01-01,",
                      tariffs="T,,,0.60,1,1,,,", services="phone,,,,T",
                      subscriptions="A1,phone,2009-01-01,")
    reads_extra = root / "extra.toml"
    reads_extra.write_text('chain = ["answer"]\n[rules.answer]\nkind = "skip"\n'
                           'when = "extra[\'origin\'] == \'answer\'"\n')
    plain = root / "plain.toml"
    plain.write_text('chain = ["short"]\n[rules.short]\nkind = "skip"\nwhen = "len(dst) < 3"\n')
    path = add_calls(root, [call("2009-10-01 10:00:00", "111", "1234", 60, "json"),
                            call("2009-10-01 10:00:01", "111", "1234", 60, "not json"),
                            call("2009-10-01 10:00:02", "111", "1234", 60, "a list"),
                            call("2009-10-01 10:00:03", "111", "1234", 60, "none")])
    with sqlite3.connect(path) as con:
        for callid, extra in (("json", '{"origin": "answer"}'), ("not json", "{origin"),
                              ("a list", '["answer"]'), ("none", None)):
            con.execute("UPDATE telephony_log SET extra = ? WHERE callid = ?", (extra, callid))
    con.close()
    billing = db.connect(root / "data" / "billing.db", "billing", readonly=True)
    ref = load_reference(billing, 2, "half-up")
    billing.close()
    conn = db.connect(path, "dataset")
    assert force_month(conn, ref, rules=load_rules(reads_extra)).calls == 4
    assert sorted(costs(path)) == ["a list", "none", "not json"]
    assert unrated(path) == {"json": [("", "skipped: answer")]}
    assert force_month(conn, ref, rules=load_rules(plain)).calls == 4
    conn.close()
    assert sorted(costs(path)) == ["a list", "json", "none", "not json"]
