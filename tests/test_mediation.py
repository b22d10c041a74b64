"""Mediation rules: the loader, every rule kind, chains, if, validators, hostile files."""

from __future__ import annotations

import textwrap

import pytest

from mbg.errors import InputError
from mbg.mediation import RulesError, example_text, load_rules, parse_rules

CALL = {
    "source": "gw1", "calldate": "2009-10-01 10:00:00", "src": "2345", "dst": "84951234567",
    "channel": "A2345", "dstchannel": "C0100517", "duration": 130, "billsec": 107,
    "cause": "16", "callid": "x1", "extra": {"h323-call-origin": "answer"},
}

SPEC_EXAMPLE = """
chain = ["skip_unanswered", "dst_8_to_7", "local_dst", "by_src_length"]

[constants]
city = "7495"
number_length = 11

[rules.skip_unanswered]
kind = "skip"
when = "billsec == 0"

[rules.dst_8_to_7]
kind = "replace"
field = "dst"
when = "len(dst) == number_length"
map = [["^8", "7"], ["^810", ""]]        # ordered: the first matching regex wins

[rules.local_dst]
kind = "prepend"
field = "dst"
when = "len(dst) == 7"
value = "city"                          # an expression; a literal is "'7499'"

[rules.trunk]
kind = "set"
field = "$trunk"                        # a local variable ($name); or a field
value = "dstchannel[0:6].upper()"

[rules.by_src_length]
kind = "if"
when = "len(src) == 4"
then = ["trunk"]
else = ["dst_8_to_7"]

[validate.dst]
required = true
length = [11, 15]
regex = "^[0-9]+$"
"""


def rules(text: str):
    return parse_rules(textwrap.dedent(text), "test.toml")


def run(text: str, **fields):
    return rules(text).apply(dict(CALL, **fields))


def refused(text: str) -> str:
    with pytest.raises(RulesError) as e:
        rules(text)
    assert isinstance(e.value, InputError) and e.value.exit_code == 2
    assert "\n" not in str(e.value)
    return str(e.value)


# --- the SPEC example -------------------------------------------------------------------


def test_spec_example():
    rs = rules(SPEC_EXAMPLE)
    assert rs.chain == ["skip_unanswered", "dst_8_to_7", "local_dst", "by_src_length"]
    o = rs.apply(dict(CALL, src="2345", dst="1234567"))
    assert o.call["dst"] == "74951234567"
    assert (o.skipped, o.invalid) == (None, None)
    assert o.fired == ["local_dst", "by_src_length", "trunk"]
    o = rs.apply(dict(CALL, src="74950000000", dst="84951234567"))
    assert o.call["dst"] == "74951234567" and o.fired == ["dst_8_to_7"]
    o = rs.apply(dict(CALL, billsec=0))
    assert o.skipped == "skip_unanswered" and o.fired == ["skip_unanswered"]
    assert o.call["dst"] == "84951234567"  # the chain stopped at the skip
    o = rs.apply(dict(CALL, dst="123"))
    assert o.invalid == "invalid: dst length" and o.skipped is None


def test_input_not_mutated_and_new_dict():
    rs = rules(SPEC_EXAMPLE)
    call = dict(CALL, dst="1234567")
    before = dict(call)
    o = rs.apply(call)
    assert call == before
    assert o.call is not call and o.call["dst"] == "74951234567"
    assert {k: v for k, v in o.call.items() if k != "dst"} == {k: v for k, v in call.items() if k != "dst"}


# --- every rule kind --------------------------------------------------------------------


def test_set_field_and_local():
    o = run("""
        chain = ["t", "s", "c"]
        [rules.t]
        kind = "set"
        field = "$trunk"
        value = "dstchannel[0:3]"
        [rules.s]
        kind = "set"
        field = "src"
        value = "$trunk + '-' + src"
        [rules.c]
        kind = "set"
        field = "billsec"
        value = "billsec - 7"
    """)
    assert o.call["src"] == "C01-2345"
    assert o.call["billsec"] == 100
    assert "$trunk" not in o.call and "trunk" not in o.call  # locals stay out of the call
    assert o.fired == ["t", "s", "c"]


def test_set_with_when_false_does_not_fire():
    o = run("""
        chain = ["s"]
        [rules.s]
        kind = "set"
        field = "dst"
        value = "'x'"
        when = "billsec > 1000"
    """)
    assert o.call["dst"] == "84951234567" and o.fired == []


def test_set_literal_from_toml_integer():
    o = run("""
        chain = ["s"]
        [rules.s]
        kind = "set"
        field = "billsec"
        value = 60
    """)
    assert o.call["billsec"] == 60


def test_replace_map_order_first_match_wins():
    text = """
        chain = ["r"]
        [rules.r]
        kind = "replace"
        field = "dst"
        map = [["^810", ""], ["^8", "7"], ["^7", "X"]]
    """
    assert run(text, dst="81044123").call["dst"] == "44123"
    assert run(text, dst="84951234567").call["dst"] == "74951234567"  # not X: one regex only
    assert run(text, dst="7495").call["dst"] == "X495"
    o = run(text, dst="5551234")
    assert o.call["dst"] == "5551234" and o.fired == []
    # The SPEC's own order: "^8" before "^810" means 810 numbers become 710...
    reversed_map = text.replace('[["^810", ""], ["^8", "7"], ["^7", "X"]]', '[["^8", "7"], ["^810", ""]]')
    assert run(reversed_map, dst="81044123").call["dst"] == "71044123"


def test_replace_groups_every_match_and_table_map():
    o = run("""
        chain = ["strip", "swap"]
        [rules.strip]
        kind = "replace"
        field = "dst"
        map = [["[ ()-]", ""]]
        [rules.swap]
        kind = "replace"
        field = "dst"
        map = { "^8(495)(.*)$" = "7\\\\1\\\\2", "^9" = "79" }
    """, dst="8 (495) 123-45-67")
    assert o.call["dst"] == "74951234567"
    assert o.fired == ["strip", "swap"]


def test_replace_on_local():
    o = run("""
        chain = ["t", "r", "s"]
        [rules.t]
        kind = "set"
        field = "$t"
        value = "dstchannel"
        [rules.r]
        kind = "replace"
        field = "$t"
        map = [["^C01", "trunk-"]]
        [rules.s]
        kind = "set"
        field = "dstchannel"
        value = "$t"
    """)
    assert o.call["dstchannel"] == "trunk-00517"


def test_prepend():
    text = """
        chain = ["p", "q"]
        [constants]
        city = "7495"
        [rules.p]
        kind = "prepend"
        field = "dst"
        when = "len(dst) == 7"
        value = "city"
        [rules.q]
        kind = "prepend"
        field = "src"
        value = "'+'"
    """
    o = run(text, dst="1234567")
    assert o.call["dst"] == "74951234567" and o.call["src"] == "+2345"
    assert o.fired == ["p", "q"]
    o = run(text, dst="84951234567")
    assert o.call["dst"] == "84951234567" and o.fired == ["q"]


def test_skip_stops_the_chain():
    text = """
        chain = ["a", "stop", "b"]
        [rules.a]
        kind = "prepend"
        field = "dst"
        value = "'A'"
        [rules.stop]
        kind = "skip"
        when = "matches(dstchannel, '^C01')"
        [rules.b]
        kind = "prepend"
        field = "dst"
        value = "'B'"
    """
    o = run(text)
    assert o.skipped == "stop" and o.invalid is None
    assert o.fired == ["a", "stop"] and o.call["dst"] == "A84951234567"
    o = run(text, dstchannel="E1")
    assert o.skipped is None and o.fired == ["a", "b"] and o.call["dst"] == "BA84951234567"


def test_skip_without_when_skips_every_call():
    o = run('chain = ["all"]\n[rules.all]\nkind = "skip"\n')
    assert o.skipped == "all"


def test_skip_skips_validation():
    o = run("""
        chain = ["s"]
        [rules.s]
        kind = "skip"
        when = "dst == ''"
        [validate.dst]
        required = true
    """, dst="")
    assert o.skipped == "s" and o.invalid is None


def test_nested_if_then_else():
    text = """
        chain = ["outer", "after"]
        [rules.outer]
        kind = "if"
        when = "len(src) == 4"
        then = ["inner"]
        else = ["mark_long"]
        [rules.inner]
        kind = "if"
        when = "src.startswith('2')"
        then = ["mark_2", "stop_5"]
        else = ["mark_other"]
        [rules.mark_2]
        kind = "set"
        field = "cause"
        value = "'two'"
        [rules.mark_other]
        kind = "set"
        field = "cause"
        value = "'other'"
        [rules.mark_long]
        kind = "set"
        field = "cause"
        value = "'long'"
        [rules.stop_5]
        kind = "skip"
        when = "billsec == 5"
        [rules.after]
        kind = "prepend"
        field = "cause"
        value = "'>'"
    """
    o = run(text, src="2345")
    assert (o.call["cause"], o.fired) == (">two", ["outer", "inner", "mark_2", "after"])
    o = run(text, src="3345")
    assert (o.call["cause"], o.fired) == (">other", ["outer", "mark_other", "after"])
    o = run(text, src="74951234567")
    assert (o.call["cause"], o.fired) == (">long", ["mark_long", "after"])
    o = run(text, src="2345", billsec=5)  # a skip deep inside stops everything
    assert o.skipped == "stop_5" and o.fired == ["outer", "inner", "mark_2", "stop_5"]
    assert o.call["cause"] == "two"


def test_if_with_only_else():
    o = run("""
        chain = ["i"]
        [rules.i]
        kind = "if"
        when = "billsec > 1000"
        else = ["s"]
        [rules.s]
        kind = "set"
        field = "dst"
        value = "'short'"
    """)
    assert o.call["dst"] == "short" and o.fired == ["s"]


def test_rule_used_twice_and_extra_in_when():
    o = run("""
        chain = ["once", "once"]
        [rules.once]
        kind = "prepend"
        field = "dst"
        when = 'extra["h323-call-origin"] == "answer"'
        value = "'9'"
    """)
    assert o.call["dst"] == "9984951234567" and o.fired == ["once", "once"]


def test_constants_of_every_type():
    o = run("""
        chain = ["s"]
        [constants]
        names = ["gw1", "gw2"]
        limit = 100
        on = true
        word = "x"
        [rules.s]
        kind = "set"
        field = "cause"
        when = "on and source in names and billsec > limit"
        value = "word"
    """)
    assert o.call["cause"] == "x"


def test_runtime_error_makes_the_call_invalid_naming_the_rule():
    text = """
        chain = ["n", "p"]
        [rules.n]
        kind = "set"
        field = "$n"
        value = "billsec"
        [rules.p]
        kind = "prepend"
        field = "dst"
        value = "$n"
    """
    o = run(text)
    assert o.invalid == "invalid: rule p failed" and o.skipped is None and o.fired == ["n"]
    o = run(text.replace('value = "billsec"', 'value = "src"'))
    assert o.invalid is None and o.call["dst"] == "234584951234567"


def test_set_field_type_checked_at_run_time_for_locals():
    o = run("""
        chain = ["n", "s"]
        [rules.n]
        kind = "set"
        field = "$n"
        value = "dst"
        [rules.s]
        kind = "set"
        field = "billsec"
        value = "$n"
    """)
    assert o.invalid == "invalid: rule s failed"


# --- validators -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "checks, fields, reason",
    [
        ("required = true", {"dst": ""}, "invalid: dst required"),
        ("required = true", {"dst": "1"}, None),
        ("length = [11, 15]", {"dst": "1234567890"}, "invalid: dst length"),
        ("length = [11, 15]", {"dst": "1234567890123456"}, "invalid: dst length"),
        ("length = [11, 15]", {"dst": "12345678901"}, None),
        ("length = [11, 15]", {"dst": "123456789012345"}, None),
        ("length = 4", {"dst": "1234"}, None),
        ("length = 4", {"dst": "12345"}, "invalid: dst length"),
        ("regex = '^[0-9]+$'", {"dst": "12a"}, "invalid: dst regex"),
        ("regex = '^[0-9]+$'", {"dst": "123"}, None),
        ("type = 'digits'", {"dst": "+7"}, "invalid: dst type"),
        ("type = 'digits'", {"dst": "79"}, None),
        ("type = 'integer'", {"dst": "-79"}, None),
        ("type = 'integer'", {"dst": "7a"}, "invalid: dst type"),
        ("type = 'string'", {"dst": "x"}, None),
        ("value = '123'", {"dst": "123"}, None),
        ("value = '123'", {"dst": "124"}, "invalid: dst value"),
        ("value = ['1', '2']", {"dst": "2"}, None),
        ("value = ['1', '2']", {"dst": "3"}, "invalid: dst value"),
        # A string that is a condition (true/false) is one; any other string is the value.
        ("value = 'dst.startswith(\"7\") or src == \"2345\"'", {"dst": "8"}, None),
        ("value = 'dst.startswith(\"7\")'", {"dst": "8"}, "invalid: dst value"),
        ("value = 'gw1'", {"dst": "gw1"}, None),
        ("value = '16'", {"dst": "16"}, None),
        ("value = '16'", {"dst": "17"}, "invalid: dst value"),
        ("value = 'len($x) > 0'", {"dst": "1"}, "invalid: dst value"),  # locals are gone by now
        ("type = 'number'", {"dst": "+7"}, None),
        ("type = 'text'", {"dst": "+7"}, None),
        # Not required: an empty field passes every other check.
        ("length = [11, 15]\nregex = '^7'", {"dst": ""}, None),
        # Checks run in the order required, type, length, regex, value.
        ("required = true\nlength = [3, 3]\nregex = '^7'", {"dst": "8"}, "invalid: dst length"),
        ("regex = '^7'\nlength = [3, 3]", {"dst": "8"}, "invalid: dst length"),
        ("length = [1, 3]\nregex = '^7'\nvalue = ['71']", {"dst": "72"}, "invalid: dst value"),
    ],
)
def test_validate_dst(checks, fields, reason):
    o = run(f"[validate.dst]\n{checks}\n", **fields)
    assert o.invalid == reason


@pytest.mark.parametrize(
    "checks, billsec, reason",
    [
        ("value = {min = 1, max = 7200}", 7200, None),
        ("value = {min = 1, max = 7200}", 7201, "invalid: billsec value"),
        ("value = {min = 10}", 9, "invalid: billsec value"),
        ("value = {max = 10}", 9, None),
        ("value = [1, 2, 3]", 2, None),
        ("value = 'billsec <= 7200'", 7200, None),
        ("value = 'billsec <= 7200'", 7201, "invalid: billsec value"),
        ("value = 'billsec < duration'", 129, None),
        ("value = 'billsec < duration'", 130, "invalid: billsec value"),
        ("type = 'integer'", 5, None),
        ("type = 'int'", 5, None),
        ("type = 'str'", 5, "invalid: billsec type"),
        ("type = 'string'", 5, "invalid: billsec type"),
        ("required = true", 0, None),
    ],
)
def test_validate_integer_field(checks, billsec, reason):
    assert run(f"[validate.billsec]\n{checks}\n", billsec=billsec).invalid == reason


def test_validators_run_after_the_chain_in_file_order():
    text = """
        chain = ["p"]
        [rules.p]
        kind = "prepend"
        field = "dst"
        when = "len(dst) == 7"
        value = "'7495'"
        [validate.src]
        length = [4, 4]
        [validate.dst]
        length = [11, 11]
    """
    assert run(text, dst="1234567").invalid is None  # checked after normalization
    assert run(text, dst="123").invalid == "invalid: dst length"
    assert run(text, dst="123", src="1").invalid == "invalid: src length"  # src first


# --- load errors --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text, fragments",
    [
        ('chain = ["nope"]', ["chain", "'nope'", "not defined"]),
        ('chain = ["i"]\n[rules.i]\nkind = "if"\nwhen = "1"\nthen = ["ghost"]',
         ["rule i", "'ghost'", "not defined"]),
        ('chain = ["a"]\n[rules.a]\nkind = "if"\nwhen = "billsec"\nthen = ["a"]',
         ["rule a", "cycle", "a -> a"]),
        ('chain = ["a"]\n[rules.a]\nkind = "if"\nwhen = "1"\nthen = ["b"]\n'
         '[rules.b]\nkind = "if"\nwhen = "1"\nelse = ["c"]\n'
         '[rules.c]\nkind = "if"\nwhen = "1"\nthen = ["a"]',
         ["cycle", "a -> b -> c -> a"]),
        # A cycle outside the chain is refused too.
        ('[rules.a]\nkind = "if"\nwhen = "1"\nthen = ["b"]\n[rules.b]\nkind = "if"\nwhen = "1"\nthen = ["a"]',
         ["cycle"]),
        ('[constants]\ndst = "1"', ["constant dst", "named like a field"]),
        ('[constants]\nlen = 1', ["constant len"]),
        ('[constants]\n_x = 1', ["constant _x"]),
        ('[constants]\nx = 1.5', ["constant x", "float"]),
        ('[constants]\nx = {a = 1}', ["constant x"]),
        ('[rules.r]\nkind = "delete"', ["rule r", "kind must be one of"]),
        ('[rules.r]\nfield = "dst"', ["rule r", "kind"]),
        ('[rules.r]\nkind = "set"\nvalue = "1"', ["rule r", "needs field"]),
        ('[rules.r]\nkind = "set"\nfield = "dst"', ["rule r", "needs value"]),
        ('[rules.r]\nkind = "replace"\nfield = "dst"', ["rule r", "needs map"]),
        ('[rules.r]\nkind = "replace"\nfield = "dst"\nmap = []', ["rule r", "non-empty"]),
        ('[rules.r]\nkind = "replace"\nfield = "dst"\nmap = [["^8"]]', ["rule r", "pair"]),
        ('[rules.r]\nkind = "replace"\nfield = "dst"\nmap = [["(", ""]]', ["rule r", "bad regex"]),
        ('[rules.r]\nkind = "replace"\nfield = "dst"\nmap = [["^8", "\\\\2"]]', ["rule r", "bad replacement"]),
        ('[rules.r]\nkind = "replace"\nfield = "billsec"\nmap = [["^8", ""]]', ["rule r", "text field"]),
        ('[rules.r]\nkind = "prepend"\nfield = "duration"\nvalue = "1"', ["rule r", "text field"]),
        ('[rules.r]\nkind = "prepend"\nfield = "dst"\nvalue = "billsec"', ["rule r: value", "needs text"]),
        ('[rules.r]\nkind = "set"\nfield = "billsec"\nvalue = "dst"', ["rule r: value", "billsec takes int"]),
        ('[rules.r]\nkind = "set"\nfield = "extra"\nvalue = "1"', ["rule r", "field must be"]),
        ('[rules.r]\nkind = "set"\nfield = "nosuch"\nvalue = "1"', ["rule r", "field must be"]),
        ('[rules.r]\nkind = "set"\nfield = "$"\nvalue = "1"', ["rule r", "field must be"]),
        ('[rules.r]\nkind = "skip"\nfield = "dst"', ["rule r", "unknown key 'field'"]),
        ('[rules.r]\nkind = "if"\nthen = []', ["rule r", "needs when"]),
        ('[rules.r]\nkind = "if"\nwhen = "1"', ["rule r", "then or else"]),
        ('[rules.r]\nkind = "if"\nwhen = "1"\nthen = "s"', ["rule r: then", "list"]),
        ('chain = "r"', ["chain", "list"]),
        ('[rules."bad name"]\nkind = "skip"', ["rule bad name", "rule name"]),
        ('[rules.r]\nkind = "skip"\nwhen = "nosuch == 1"', ["rule r: when", "unknown name 'nosuch'"]),
        ('[rules.r]\nkind = "skip"\nwhen = "$never_set == 1"', ["local $never_set", "no rule sets it"]),
        ('surprise = 1', ["surprise", "unknown"]),
        ('[validate.nosuch]\nrequired = true', ["validate nosuch", "not a field"]),
        ('[validate.dst]\nminimum = 1', ["validate dst", "unknown check 'minimum'"]),
        ('[validate.dst]\nlength = [5, 1]', ["validate dst", "length"]),
        ('[validate.dst]\nregex = "("', ["validate dst", "bad regex"]),
        ('[validate.dst]\ntype = "float"', ["validate dst", "type must be"]),
        ('[validate.dst]\nvalue = [1, 2]', ["validate dst", "field's type"]),
        ('[validate.billsec]\nvalue = "x"', ["validate billsec", "neither a number nor a condition"]),
        ('[validate.billsec]\nvalue = "\'x\'"', ["validate billsec", "field's type"]),
        ('[validate.billsec]\nlength = [1, 2]', ["validate billsec", "text field"]),
        ('[validate.dst]\nrequired = "yes"', ["validate dst", "true or false"]),
        ('chain = [', ["not valid TOML"]),
    ],
)
def test_load_errors_name_the_rule(text, fragments):
    message = refused(text)
    assert message.startswith("test.toml: ")
    for fragment in fragments:
        assert fragment in message, message


HOSTILE = {
    "import": "__import__('os').system('touch {marker}')",
    "dunder": "dst.__class__.__mro__[1].__subclasses__()",
    "dunder_global": "__builtins__",
    "lambda": "(lambda: open('{marker}', 'w'))()",
    "comprehension": "[open('{marker}', 'w') for x in dst]",
    "generator": "len(open('{marker}', 'w') for x in dst)",
    "unknown_function": "open('{marker}', 'w')",
    "eval": "eval(\"open('{marker}', 'w')\")",
    "attribute": "dst.join('x')",
    "fstring": "f\"{{open('{marker}', 'w')}}\"",
}


@pytest.mark.parametrize("where", ["when", "value"])
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_files_refused_with_nothing_executed(tmp_path, name, where):
    marker = tmp_path / "executed"
    expression = HOSTILE[name].format(marker=marker).replace("\\", "\\\\").replace('"', '\\"')
    path = tmp_path / "mediation.toml"
    path.write_text(
        'chain = ["ok", "evil"]\n[rules.ok]\nkind = "skip"\nwhen = "billsec == 0"\n'
        f'[rules.evil]\nkind = "set"\nfield = "dst"\nvalue = "{expression if where == "value" else "dst"}"\n'
        f'when = "{expression if where == "when" else "billsec > 0"}"\n'
    )
    with pytest.raises(RulesError) as e:
        load_rules(path)
    assert f"rule evil: {where}" in str(e.value)
    assert not marker.exists()


def test_hostile_if_cycle_file(tmp_path):
    path = tmp_path / "cycle.toml"
    path.write_text(
        'chain = ["loop"]\n[rules.loop]\nkind = "if"\nwhen = "True"\nthen = ["again"]\n'
        '[rules.again]\nkind = "if"\nwhen = "True"\nelse = ["loop"]\n'
    )
    with pytest.raises(RulesError, match="cycle: loop -> again -> loop"):
        load_rules(path)


def test_load_rules_file_errors(tmp_path):
    with pytest.raises(RulesError, match="no such rules file"):
        load_rules(tmp_path / "missing.toml")
    bad = tmp_path / "latin1.toml"
    bad.write_bytes(b'chain = ["\xe9"]\n')
    with pytest.raises(RulesError, match="not UTF-8"):
        load_rules(bad)


# --- the example file ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "dst, src, billsec, normalized, skipped, invalid",
    [
        ("84951234567", "2345", 60, "74951234567", None, None),
        ("8 (495) 123-45-67", "2345", 60, "74951234567", None, None),
        ("810442079460000", "2345", 60, "442079460000", None, None),
        ("81012125551234", "2345", 60, "12125551234", None, None),
        ("1234567", "2345", 60, "74951234567", None, None),
        ("+79161234567", "2345", 60, "79161234567", None, None),
        ("9161234567", "2345", 60, "79161234567", None, None),
        ("79161234567", "74951112233", 60, "79161234567", None, None),
        ("2346", "2345", 60, "2346", "skip_internal", None),
        ("84951234567", "2345", 0, "84951234567", "skip_unanswered", None),
        ("112", "2345", 60, "112", "skip_emergency", None),
        ("12345", "2345", 60, "12345", None, "invalid: dst length"),
        ("8495123456a", "2345", 60, "7495123456a", None, "invalid: dst type"),
    ],
)
def test_example_rules_russian_numbering(dst, src, billsec, normalized, skipped, invalid):
    rs = parse_rules(example_text(), "example")
    o = rs.apply(dict(CALL, dst=dst, src=src, billsec=billsec))
    assert (o.call["dst"], o.skipped, o.invalid) == (normalized, skipped, invalid)


def test_describe():
    rs = rules(SPEC_EXAMPLE)
    assert rs.describe("local_dst") == "prepend dst value city when len(dst) == 7"
    assert rs.describe("by_src_length").startswith("if when len(src) == 4 then ['trunk']")


def test_uses_extra():
    assert rules(SPEC_EXAMPLE).uses_extra is False
    assert rules('[rules.r]\nkind = "skip"\nwhen = \'extra["x"] == "1"\'').uses_extra is True
    assert rules('[rules.r]\nkind = "skip"\nwhen = \'"x" in extra\'').uses_extra is True


def test_deep_if_nesting_refused_and_just_below_accepted():
    def nested(depth):
        parts = ['chain = ["r0"]']
        for i in range(depth):
            parts.append(f'[rules.r{i}]\nkind = "if"\nwhen = "True"\nthen = ["r{i + 1}"]')
        parts.append(f'[rules.r{depth}]\nkind = "set"\nfield = "cause"\nvalue = "\'x\'"')
        return "\n".join(parts)

    assert "if rules nested deeper than 40" in refused(nested(1000))
    o = rules(nested(39)).apply(dict(CALL))
    assert o.call["cause"] == "x" and len(o.fired) == 40
