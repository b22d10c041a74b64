"""The safe expression language of the mediation rules: what it computes, what it refuses."""

from __future__ import annotations

import ast

import pytest

from mbg.expressions import Compiler, ExpressionError, rewrite_locals

CALL = {
    "source": "gw1", "calldate": "2009-10-01 10:00:00", "src": "2345", "dst": "84951234567",
    "channel": "A2345", "dstchannel": "C0100517", "duration": 130, "billsec": 107,
    "cause": "16", "callid": "x1", "extra": {"h323-call-origin": "answer", "cgpn_out": "2345"},
}
CONSTANTS = {"city": "7495", "n": 11, "prefixes": ("81", "82"), "flag": True}


def ev(text, call=None, local=None, constants=CONSTANTS):
    fn = Compiler(constants).compile(text).fn
    return fn(dict(CALL, **(call or {})), dict(local or {}))


@pytest.mark.parametrize(
    "text, expected",
    [
        ("dst", "84951234567"),
        ("billsec", 107),
        ("len(dst) == n", True),
        ("len(dst) != 11", False),
        ("billsec > 100 and duration >= 130", True),
        ("billsec < 100 or duration <= 129", False),
        ("not billsec", False),
        ("not not billsec", True),
        ("not matches(dst, '^8')", False),
        ("not matches(dst, '^7')", True),
        ("not len(dst) == 11", False),
        ("not len(dst) < 11", True),
        ("not billsec >= 107", False),
        ("not billsec > 107", True),
        ("not dst[0:2] in prefixes", True),
        ("not source in ('gw1',)", False),
        ("not source not in ('gw1',)", True),
        ("not dst != '84951234567'", True),
        ("1 < billsec <= 107", True),
        ("1 < billsec < 107", False),
        ("dst[0]", "8"),
        ("dst[-1]", "7"),
        ("dst[-2]", "6"),
        ("dst[1:4]", "495"),
        ("dst[:1] + '-' + dst[1:]", "8-4951234567"),
        ("dst[::-1][0:2]", "76"),
        ("dst[0:2] in prefixes", False),
        ("'81' in prefixes", True),
        ("dst[0:2] not in ('81', '82')", True),
        ("'495' in dst", True),
        ("dst.startswith('8495')", True),
        ("dst.startswith(('7', '8'))", True),
        ("dst.endswith('567')", True),
        ("dstchannel[0:6].upper()", "C01005"),
        ("channel.lower()", "a2345"),
        ("matches(dst, '^8[0-9]{10}$')", True),
        ("matches(dst, '^7')", False),
        ("matches(dstchannel, 'C01')", True),  # search: not anchored unless asked
        ("city + dst[1:]", "74954951234567"),
        ("billsec - duration", -23),
        ("-billsec", -107),
        ("duration - 30 + 1", 101),
        ('extra["h323-call-origin"]', "answer"),
        ('extra["h323-call-origin"] == "answer"', True),
        ('extra["missing"]', ""),
        ('"cgpn_out" in extra', True),
        ('"missing" not in extra', True),
        ("flag", True),
        ("True and dst", "84951234567"),
        ("None", None),
        ("'$notalocal'", "$notalocal"),
        ('"a\\"$b"', 'a"$b'),
        ("'''x $y'''", "x $y"),
    ],
)
def test_values(text, expected):
    assert ev(text) == expected


def test_out_of_range_index_reads_empty_text():
    assert ev("dst[0]", {"dst": ""}) == ""
    assert ev("dst[0] == '8'", {"dst": ""}) is False
    assert ev("dst[20]") == ""
    assert ev("dst[$i]", local={"i": 3}) == "5"
    assert ev("dst[$i]", local={"i": 30}) == ""


def test_extra_absent_reads_empty():
    assert ev('extra["x"]', {"extra": None}) == ""
    assert ev('"x" in extra', {"extra": None}) is False
    assert ev('extra["x"] == ""', {"extra": {}}) is True


def test_locals():
    assert ev("$trunk", local={"trunk": "C01"}) == "C01"
    assert ev("$trunk") == ""  # unset: empty text
    assert ev("$trunk + dst[0]", local={"trunk": "C"}) == "C8"
    assert ev("$a == $b", local={"a": "x", "b": "x"}) is True


def test_rewrite_locals_leaves_strings_alone():
    assert rewrite_locals("$a + '$b' + \"$c\" + $d") == "_local_a + '$b' + \"$c\" + _local_d"
    assert rewrite_locals("'it\\'s $x' + $y") == "'it\\'s $x' + _local_y"


def test_compiled_once_into_closures_not_code():
    """The compiled expression is a closure; evaluating it parses nothing."""
    compiled = Compiler(CONSTANTS).compile("len(dst) == n and dst.startswith('8')")
    original_parse = ast.parse
    try:
        ast.parse = None  # any parse at run time would fail now
        for _ in range(3):
            assert compiled.fn(dict(CALL), {}) is True
    finally:
        ast.parse = original_parse
    assert compiled.fn.__code__.co_filename.endswith("expressions.py")


def test_regex_compiled_once_per_file():
    compiler = Compiler({"re8": "^8"})
    compiler.compile("matches(dst, '^8')")
    compiler.compile("matches(src, re8)")
    assert list(compiler.regexes) == ["^8"]


@pytest.mark.parametrize(
    "text, message",
    [
        ("__import__('os').system('echo hacked')", "names beginning with _"),
        ("dst.__class__", "names beginning with _"),
        ("dst.__class__.__mro__", "names beginning with _"),
        ("().__class__.__bases__[0].__subclasses__()", "names beginning with _"),
        ("_local_x", "names beginning with _"),
        ("$_x", "local variable name"),
        ("lambda: 1", "lambda"),
        ("(lambda x: x)(dst)", "lambda"),
        ("[x for x in dst]", "comprehension"),
        ("{x for x in dst}", "comprehension"),
        ("{x: 1 for x in dst}", "comprehension"),
        ("len(x for x in dst)", "generator"),
        ("open('/etc/passwd')", "unknown function 'open'"),
        ("eval('1')", "unknown function 'eval'"),
        ("print(dst)", "unknown function 'print'"),
        ("exec", "unknown name 'exec'"),
        ("os", "unknown name 'os'"),
        ("undefined_name == 1", "unknown name"),
        ("dst.replace('8', '7')", "method .replace() is not allowed"),
        ("dst.format", "attribute .format"),
        ("dst.upper", "attribute .upper"),
        ("len", "must be called"),
        ("len(dst, 2)", "one argument"),
        ("len(s=dst)", "keyword"),
        ("len(*dst)", "*"),
        ("f'{dst}'", "f-string"),
        ("dst if billsec else src", "x if c else y"),
        ("(x := 1)", ":="),
        ("dst * 1000", "Mult"),
        ("2 ** 1000", "Pow"),
        ("billsec // 60", "FloorDiv"),
        ("~billsec", "Invert"),
        ("1.5", "literal 1.5"),
        ("b'x'", "literal b'x'"),
        ("...", "literal Ellipsis"),
        ("{'a': 1}", "dict"),
        ("{1, 2}", "set"),
        ("(dst, [src])", "only literals"),
        ("dst + 1", "cannot add str and int"),
        ("billsec + '1'", "cannot add int and str"),
        ("dst - 1", "cannot subtract str"),
        ("billsec == '0'", "compares int with str"),
        ("dst < 5", "compares str with int"),
        ("len(billsec)", "len() of int"),
        ("billsec[0]", "cannot index int"),
        ("dst['a']", "index must be an integer"),
        ("dst[0:'a']", "slice bound"),
        ("dst[::0]", "step cannot be zero"),
        ("billsec.upper()", ".upper() of int"),
        ("extra", 'extra["name"]'),
        ("extra[dst]", "string literal key"),
        ("extra.get('x')", "method .get()"),
        ("matches(dst, $re)", "literal or constant"),
        ("matches(dst, '(')", "bad regex"),
        ("matches(dst)", "two arguments"),
        ("ｌｅｎ(dst)", "outside a string"),
        ("１", "outside a string"),
        ("dst ==", "syntax error"),
        ("import os", "syntax error"),
        ("dst; src", "syntax error"),
        ("", "empty expression"),
        ("(" * 300 + ")" * 300, ""),
        ("x" * 5000, "longer than"),
        ("not " * 100 + "dst", "nested deeper"),
        ("-" * 100 + "billsec", "nested deeper"),
        (" + ".join(["dst"] * 200), "nested deeper"),
        ("1 in billsec", "needs text or a tuple"),
    ],
)
def test_refused(text, message):
    with pytest.raises(ExpressionError) as e:
        Compiler(CONSTANTS).compile(text)
    assert message in str(e.value)


def test_refused_expression_runs_nothing(tmp_path):
    marker = tmp_path / "hacked"
    for text in (
        f"__import__('os').system('touch {marker}')",
        f"open('{marker}', 'w')",
        f"[open('{marker}', 'w') for x in dst]",
        f"(lambda: open('{marker}', 'w'))()",
    ):
        with pytest.raises(ExpressionError):
            Compiler({}).compile(text)
    assert not marker.exists()


def test_runtime_type_errors_surface_for_unknown_types():
    """Locals have no static type: a mismatch is a Python error the chain turns into invalid."""
    with pytest.raises(TypeError):
        ev("$x + dst", local={"x": 5})
    with pytest.raises(TypeError):
        ev("len($x)", local={"x": 5})
