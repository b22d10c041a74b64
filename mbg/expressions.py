"""The safe expression language of the mediation rules (SPEC section 8).

An expression is parsed with Python's ``ast`` and every node is checked against a short
whitelist, then compiled ONCE into nested closures ``fn(call, local) -> value``: no
eval/exec, no code objects built from rule text. What the language has:

- field names of the call (``src``, ``dst``, ``billsec``, ...) and ``extra["key"]``
  (a missing key, or a call without extra, reads ``""``); ``"key" in extra``;
- constants of the rules file by name; local variables ``$name`` (unset: ``""``);
- literals: strings, integers, True/False/None, and tuples or lists of them;
- ``== != < <= > >= in not in and or not + -`` (unary ``-`` too);
- indexing and slicing of text (an index out of range reads ``""``, like a slice);
- ``len(x)``, ``matches(text, regex)`` (``re.search``: anchor with ``^``/``$``; the regex
  must be a string literal or constant, compiled at load), and the methods
  ``.startswith() .endswith() .upper() .lower()``.

Anything else (other names, attributes, calls, lambdas, comprehensions, f-strings,
names beginning with ``_``) raises ``ExpressionError`` at load.

``$name`` is not Python syntax. Before ``ast.parse`` a small scanner walks the text,
leaves string literals alone, rewrites ``$name`` to the reserved identifier
``_local_name`` and refuses any identifier of the text itself that begins with ``_``
or is not ASCII, so the reserved names can only come from ``$``.

Types are checked at load where they are known (fields, constants, literals): adding
text to a number, comparing text with a number, ``len`` of a number are refused then.
Values of unknown type (locals, ``extra``) are checked by Python at run time: the
caller turns such an error into an invalid call.
"""

from __future__ import annotations

import ast
import keyword
import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

# The call's fields and their types (telephony_log's content columns).
FIELD_TYPES: dict[str, str] = {
    "source": "str", "calldate": "str", "src": "str", "dst": "str",
    "channel": "str", "dstchannel": "str", "duration": "int", "billsec": "int",
    "cause": "str", "callid": "str", "extra": "extra",
}
FUNCTIONS = ("len", "matches")
METHODS = ("startswith", "endswith", "upper", "lower")
LOCAL_PREFIX = "_local_"
MAX_LENGTH = 4000  # characters of one expression: rules are short; refuse nonsense early
MAX_DEPTH = 40  # nesting of one expression

Fn = Callable[[dict, dict], Any]
_NOCONST = object()


class ExpressionError(ValueError):
    """An expression the language refuses; the message says why."""


@dataclass(frozen=True)
class Compiled:
    """A compiled expression: ``fn(call, local)``, its static type, its value if constant."""

    fn: Fn
    type: str  # str, int, bool, tuple, none, any
    const: Any = _NOCONST
    # Set when the expression is just a field, or len() of one: the shapes most rules
    # test, which then get one flat closure instead of nested ones.
    field: str | None = None
    len_of: str | None = None
    negated: Fn | None = None  # ``not`` of it as one closure, where that is free

    @property
    def is_const(self) -> bool:
        return self.const is not _NOCONST


def _const(value: Any) -> Compiled:
    return Compiled(lambda c, l: value, type_of(value), value)


def type_of(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int"
    if isinstance(value, str):
        return "str"
    if isinstance(value, tuple):
        return "tuple"
    if value is None:
        return "none"
    return "any"


# --- the $name scanner -----------------------------------------------------------------

_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"[0-9][A-Za-z0-9_.]*")


def _skip_string(text: str, i: int) -> int:
    """The index after the string literal starting at text[i] (a quote)."""
    quote = text[i]
    if text.startswith(quote * 3, i):
        end = text.find(quote * 3, i + 3)
        while end != -1 and _escaped(text, end):
            end = text.find(quote * 3, end + 1)
        return len(text) if end == -1 else end + 3
    j = i + 1
    while j < len(text):
        if text[j] == "\\":
            j += 2
            continue
        if text[j] == quote or text[j] == "\n":
            return j + 1
        j += 1
    return len(text)


def _escaped(text: str, i: int) -> bool:
    backslashes = 0
    while i - 1 - backslashes >= 0 and text[i - 1 - backslashes] == "\\":
        backslashes += 1
    return backslashes % 2 == 1


def rewrite_locals(text: str) -> str:
    """Rewrite ``$name`` to ``_local_name`` outside string literals; refuse ``_names``."""
    out = []
    i = 0
    while i < len(text):
        ch = text[i]
        if not ch.isascii() and ch not in "'\"":
            raise ExpressionError(f"character {ch!r} outside a string")
        if ch in "'\"":
            j = _skip_string(text, i)
            out.append(text[i:j])
            i = j
        elif ch == "$":
            m = _IDENT.match(text, i + 1)
            if not m or m.group().startswith("_"):
                raise ExpressionError("$ must be followed by a local variable name")
            out.append(LOCAL_PREFIX + m.group())
            i = m.end()
        elif ch.isdigit():
            m = _NUMBER.match(text, i)
            out.append(m.group())
            i = m.end()
        elif ch.isalpha() or ch == "_":
            m = _IDENT.match(text, i)
            if m.group().startswith("_"):
                raise ExpressionError(f"name {m.group()!r}: names beginning with _ are not allowed")
            # A string prefix (r"", b"", f"") is passed on whole; ast then judges it.
            out.append(m.group())
            i = m.end()
        else:
            out.append(ch)
            i += 1
    return "".join(out)


# --- the compiler ----------------------------------------------------------------------

_COMPARE = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge,
    ast.In: lambda a, b: a in b, ast.NotIn: lambda a, b: a not in b,
}
_ORDERING = (ast.Lt, ast.LtE, ast.Gt, ast.GtE)
_INVERSE = {
    ast.Eq: ast.NotEq, ast.NotEq: ast.Eq, ast.Lt: ast.GtE, ast.GtE: ast.Lt,
    ast.Gt: ast.LtE, ast.LtE: ast.Gt, ast.In: ast.NotIn, ast.NotIn: ast.In,
}
_SYMBOL = {
    ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">", ast.GtE: ">=",
    ast.In: "in", ast.NotIn: "not in",
}


def _known(*types: str) -> bool:
    return all(t not in ("any", "none") for t in types)


class Compiler:
    """Compiles expressions of one rules file: its constants and its set of locals."""

    def __init__(self, constants: Mapping[str, Any], regexes: dict[str, re.Pattern] | None = None):
        self.constants = dict(constants)
        # Shared cache: one compiled pattern per regex text of the file.
        self.regexes = regexes if regexes is not None else {}
        self.locals_read: set[str] = set()
        self.uses_extra = False  # whether any expression reads extra
        self.depth = 0

    def compile(self, text: Any) -> Compiled:
        """Compile one expression (a TOML string; a TOML integer or boolean is a literal)."""
        if isinstance(text, (bool, int)):
            return _const(text)
        if not isinstance(text, str):
            raise ExpressionError(f"an expression must be a string, not {type(text).__name__}")
        if len(text) > MAX_LENGTH:
            raise ExpressionError(f"expression longer than {MAX_LENGTH} characters")
        source = rewrite_locals(text).strip()
        if not source:
            raise ExpressionError("empty expression")
        try:
            tree = ast.parse(source, mode="eval")
        except SyntaxError as e:
            raise ExpressionError(f"syntax error in {text!r}: {e.msg}") from None
        except (RecursionError, MemoryError, ValueError):
            raise ExpressionError(f"expression too complex: {text[:40]!r}") from None
        try:
            return self._node(tree.body)
        except RecursionError:
            raise ExpressionError(f"expression too deeply nested: {text[:40]!r}") from None

    def regex(self, text: str) -> re.Pattern:
        """A regex of the file, compiled once; a bad one is an ExpressionError."""
        pattern = self.regexes.get(text)
        if pattern is None:
            try:
                pattern = re.compile(text)
            except re.error as e:
                raise ExpressionError(f"bad regex {text!r}: {e}") from None
            self.regexes[text] = pattern
        return pattern

    # Each _node method returns a Compiled; anything not listed is refused.
    def _node(self, node: ast.AST) -> Compiled:
        method = getattr(self, "_" + type(node).__name__, None)
        if method is None:
            raise ExpressionError(f"{_describe(node)} is not allowed")
        # Closures nest as deep as the tree: keep calls far from Python's recursion limit.
        self.depth += 1
        try:
            if self.depth > MAX_DEPTH:
                raise ExpressionError(f"expression nested deeper than {MAX_DEPTH} levels")
            return method(node)
        finally:
            self.depth -= 1

    def _Constant(self, node: ast.Constant) -> Compiled:
        if node.value is None or isinstance(node.value, (bool, int, str)):
            return _const(node.value)
        raise ExpressionError(f"literal {node.value!r} is not allowed (strings and integers only)")

    def _Tuple(self, node: ast.Tuple | ast.List) -> Compiled:
        items = [self._node(e) for e in node.elts]
        if not all(i.is_const and i.type in ("str", "int", "bool", "none") for i in items):
            raise ExpressionError("a tuple or list may hold only literals")
        return _const(tuple(i.const for i in items))

    _List = _Tuple

    def _Name(self, node: ast.Name) -> Compiled:
        name = node.id
        if name.startswith(LOCAL_PREFIX):
            key = name[len(LOCAL_PREFIX):]
            self.locals_read.add(key)
            return Compiled(lambda c, l: l.get(key, ""), "any")
        if name in FIELD_TYPES:
            if name == "extra":
                raise ExpressionError('extra is read by key: extra["name"]')
            kind = FIELD_TYPES[name]
            return Compiled(lambda c, l: c[name], kind, field=name)
        if name in self.constants:
            return _const(self.constants[name])
        if name in FUNCTIONS:
            raise ExpressionError(f"{name} must be called: {name}(...)")
        raise ExpressionError(f"unknown name {name!r}")

    def _BoolOp(self, node: ast.BoolOp) -> Compiled:
        parts = [self._node(v) for v in node.values]
        fns = [p.fn for p in parts]
        types = {p.type for p in parts}
        kind = types.pop() if len(types) == 1 else "any"
        if isinstance(node.op, ast.And):
            if len(fns) == 2:
                a, b = fns
                return Compiled(lambda c, l: a(c, l) and b(c, l), kind)

            def all_of(c, l):
                v = True
                for f in fns:
                    v = f(c, l)
                    if not v:
                        return v
                return v

            return Compiled(all_of, kind)
        if len(fns) == 2:
            a, b = fns
            return Compiled(lambda c, l: a(c, l) or b(c, l), kind)

        def any_of(c, l):
            v = False
            for f in fns:
                v = f(c, l)
                if v:
                    return v
            return v

        return Compiled(any_of, kind)

    def _UnaryOp(self, node: ast.UnaryOp) -> Compiled:
        operand = self._node(node.operand)
        f = operand.fn
        if isinstance(node.op, ast.Not):
            # not not x is a bool: x itself only when x is one already.
            double = f if operand.type == "bool" else (lambda c, l: bool(f(c, l)))
            if operand.negated is not None:
                return Compiled(operand.negated, "bool", negated=double)
            return Compiled(lambda c, l: not f(c, l), "bool", negated=double)
        if isinstance(node.op, ast.USub):
            if operand.type not in ("int", "any"):
                raise ExpressionError(f"unary - of {operand.type}")
            if operand.is_const:
                return _const(-operand.const)
            return Compiled(lambda c, l: -f(c, l), operand.type)
        raise ExpressionError(f"{_describe(node)} is not allowed")

    def _BinOp(self, node: ast.BinOp) -> Compiled:
        left, right = self._node(node.left), self._node(node.right)
        a, b = left.fn, right.fn
        if isinstance(node.op, ast.Add):
            if _known(left.type, right.type) and (
                left.type != right.type or left.type not in ("str", "int")
            ):
                raise ExpressionError(f"cannot add {left.type} and {right.type}")
            kind = left.type if left.type == right.type else "any"
            if right.is_const:
                k = right.const
                return Compiled(lambda c, l: a(c, l) + k, kind)
            if left.is_const:
                k = left.const
                return Compiled(lambda c, l: k + b(c, l), kind)
            return Compiled(lambda c, l: a(c, l) + b(c, l), kind)
        if isinstance(node.op, ast.Sub):
            for side in (left, right):
                if side.type not in ("int", "any"):
                    raise ExpressionError(f"cannot subtract {side.type}")
            kind = "int" if left.type == right.type == "int" else "any"
            return Compiled(lambda c, l: a(c, l) - b(c, l), kind)
        raise ExpressionError(f"{_describe(node)} is not allowed")

    def _Compare(self, node: ast.Compare) -> Compiled:
        operands = [self._node(node.left)] + [self._operand(c) for c in node.comparators]
        if len(node.ops) > 1 and any(o.type == "extra" for o in operands):
            raise ExpressionError("'in extra' cannot be chained")
        tests = []
        for op, left, right in zip(node.ops, operands, operands[1:]):
            self._check_compare(op, left, right)
            tests.append((_COMPARE[type(op)], op, left, right))
        if len(tests) == 1:
            op, node_op, left, right = tests[0]
            inverse = _INVERSE[type(node_op)]()
            return Compiled(self._compare_one(*tests[0]), "bool",
                            negated=self._compare_one(_COMPARE[type(inverse)], inverse, left, right))
        fns = [f.fn for f in operands]
        ops = [t[0] for t in tests]

        def chain(c, l):
            a = fns[0](c, l)
            for op, f in zip(ops, fns[1:]):
                b = f(c, l)
                if not op(a, b):
                    return False
                a = b
            return True

        return Compiled(chain, "bool")

    def _operand(self, node: ast.AST) -> Compiled:
        """A right-hand operand: anything, or bare ``extra`` (for ``"key" in extra``)."""
        if isinstance(node, ast.Name) and node.id == "extra":
            self.uses_extra = True
            return Compiled(lambda c, l: c["extra"] or {}, "extra")
        return self._node(node)

    def _check_compare(self, op: ast.cmpop, left: Compiled, right: Compiled) -> None:
        symbol = _SYMBOL[type(op)]
        if isinstance(op, (ast.In, ast.NotIn)):
            if right.type == "extra" and left.type not in ("str", "any"):
                raise ExpressionError(f"'{symbol} extra' needs a text key")
            if right.type not in ("str", "tuple", "any", "extra"):
                raise ExpressionError(f"'{symbol}' needs text or a tuple on its right, not {right.type}")
            if right.type == "str" and left.type not in ("str", "any"):
                raise ExpressionError(f"'{symbol}' of {left.type} in text")
            return
        if right.type == "extra":
            raise ExpressionError('extra is read by key: extra["name"]')
        if isinstance(op, _ORDERING) and not _known(left.type, right.type):
            return
        if _known(left.type, right.type) and left.type != right.type:
            raise ExpressionError(f"'{symbol}' compares {left.type} with {right.type}")

    @staticmethod
    def _compare_one(op, node_op, left: Compiled, right: Compiled) -> Fn:
        # The common shapes get flat closures: field == k, len(field) == k, x in extra.
        a, b = left.fn, right.fn
        if right.is_const and (left.field or left.len_of):
            k = right.const
            if isinstance(node_op, ast.In) and isinstance(k, tuple) and all(isinstance(x, str) for x in k):
                k = frozenset(k)
            if isinstance(node_op, (ast.In, ast.NotIn)):
                pass  # operator.contains takes its operands the other way round
            elif left.field:
                f = left.field
                if isinstance(node_op, ast.Eq):
                    return lambda c, l: c[f] == k
                return lambda c, l: op(c[f], k)
            else:
                f = left.len_of
                if isinstance(node_op, ast.Eq):
                    return lambda c, l: len(c[f]) == k
                return lambda c, l: op(len(c[f]), k)
        if right.is_const:
            k = right.const
            if isinstance(node_op, ast.Eq):
                return lambda c, l: a(c, l) == k
            if isinstance(node_op, ast.NotEq):
                return lambda c, l: a(c, l) != k
            if isinstance(node_op, ast.In):
                if isinstance(k, tuple) and all(isinstance(x, str) for x in k):
                    k = frozenset(k)
                return lambda c, l: a(c, l) in k
            return lambda c, l: op(a(c, l), k)
        return lambda c, l: op(a(c, l), b(c, l))

    def _Subscript(self, node: ast.Subscript) -> Compiled:
        if isinstance(node.value, ast.Name) and node.value.id == "extra":
            key = self._node(node.slice)
            if not (key.is_const and key.type == "str"):
                raise ExpressionError('extra is read with a string literal key: extra["name"]')
            k = key.const
            self.uses_extra = True
            return Compiled(lambda c, l: (c["extra"] or {}).get(k, ""), "any")
        value = self._node(node.value)
        if value.type not in ("str", "any"):
            raise ExpressionError(f"cannot index {value.type}")
        v = value.fn
        if isinstance(node.slice, ast.Slice):
            parts = []
            for part in (node.slice.lower, node.slice.upper, node.slice.step):
                if part is None:
                    parts.append(_const(None))
                    continue
                p = self._node(part)
                if p.type not in ("int", "any", "none"):
                    raise ExpressionError(f"a slice bound must be an integer, not {p.type}")
                parts.append(p)
            if all(p.is_const for p in parts):
                s = slice(parts[0].const, parts[1].const, parts[2].const)
                if s.step == 0:
                    raise ExpressionError("slice step cannot be zero")
                if value.field:
                    name = value.field
                    return Compiled(lambda c, l: c[name][s], value.type)
                return Compiled(lambda c, l: v(c, l)[s], value.type)
            lo, hi, st = (p.fn for p in parts)
            return Compiled(lambda c, l: v(c, l)[lo(c, l):hi(c, l):st(c, l)], value.type)
        index = self._node(node.slice)
        if index.type not in ("int", "any"):
            raise ExpressionError(f"an index must be an integer, not {index.type}")
        i = index.fn
        # Out of range reads "" like a slice does: dst[0] == "8" is simply false on "".
        if index.is_const:
            k = index.const
            stop = k + 1 if k != -1 else None
            if value.field:
                name = value.field
                return Compiled(lambda c, l: c[name][k:stop], value.type)
            return Compiled(lambda c, l: v(c, l)[k:stop], value.type)

        def item(c, l):
            seq, n = v(c, l), i(c, l)
            return seq[n:n + 1 if n != -1 else None]

        return Compiled(item, value.type)

    def _Call(self, node: ast.Call) -> Compiled:
        if node.keywords:
            raise ExpressionError("keyword arguments are not allowed")
        if any(isinstance(a, ast.Starred) for a in node.args):
            raise ExpressionError("*arguments are not allowed")
        func = node.func
        if isinstance(func, ast.Name) and func.id == "len":
            if len(node.args) != 1:
                raise ExpressionError("len() takes one argument")
            arg = self._node(node.args[0])
            if arg.type not in ("str", "tuple", "any"):
                raise ExpressionError(f"len() of {arg.type}")
            if arg.field:
                name = arg.field
                return Compiled(lambda c, l: len(c[name]), "int", len_of=name)
            f = arg.fn
            return Compiled(lambda c, l: len(f(c, l)), "int")
        if isinstance(func, ast.Name) and func.id == "matches":
            if len(node.args) != 2:
                raise ExpressionError("matches() takes two arguments: matches(text, regex)")
            text, pattern = self._node(node.args[0]), self._node(node.args[1])
            if text.type not in ("str", "any"):
                raise ExpressionError(f"matches() of {text.type}")
            if not (pattern.is_const and pattern.type == "str"):
                raise ExpressionError("the regex of matches() must be a string literal or constant")
            search = self.regex(pattern.const).search
            if text.field:
                name = text.field
                return Compiled(lambda c, l: search(c[name]) is not None, "bool",
                                negated=lambda c, l: search(c[name]) is None)
            f = text.fn
            return Compiled(lambda c, l: search(f(c, l)) is not None, "bool")
        if isinstance(func, ast.Attribute) and func.attr in METHODS:
            target = self._node(func.value)
            if target.type not in ("str", "any"):
                raise ExpressionError(f".{func.attr}() of {target.type}")
            f = target.fn
            if func.attr in ("upper", "lower"):
                if node.args:
                    raise ExpressionError(f".{func.attr}() takes no argument")
                method = str.upper if func.attr == "upper" else str.lower
                return Compiled(lambda c, l: method(f(c, l)), "str")
            if len(node.args) != 1:
                raise ExpressionError(f".{func.attr}() takes one argument")
            arg = self._node(node.args[0])
            if arg.type not in ("str", "tuple", "any"):
                raise ExpressionError(f".{func.attr}() of {arg.type}")
            method = str.startswith if func.attr == "startswith" else str.endswith
            if arg.is_const:
                k = arg.const
                if target.field:
                    name = target.field
                    return Compiled(lambda c, l: method(c[name], k), "bool")
                return Compiled(lambda c, l: method(f(c, l), k), "bool")
            g = arg.fn
            return Compiled(lambda c, l: method(f(c, l), g(c, l)), "bool")
        if isinstance(func, ast.Name):
            raise ExpressionError(f"call of unknown function {func.id!r}")
        if isinstance(func, ast.Attribute):
            raise ExpressionError(f"method .{func.attr}() is not allowed")
        raise ExpressionError(f"call of {_describe(func)} is not allowed")

    def _Attribute(self, node: ast.Attribute) -> Compiled:
        raise ExpressionError(f"attribute .{node.attr} is not allowed (methods must be called)")


def _describe(node: ast.AST) -> str:
    names = {
        "Lambda": "lambda", "ListComp": "a comprehension", "SetComp": "a comprehension",
        "DictComp": "a comprehension", "GeneratorExp": "a generator", "IfExp": "x if c else y",
        "JoinedStr": "an f-string", "Attribute": "an attribute", "NamedExpr": ":=",
        "Await": "await", "Yield": "yield", "Starred": "*", "Dict": "a dict", "Set": "a set",
    }
    name = type(node).__name__
    if name in names:
        return names[name]
    if isinstance(node, (ast.BinOp, ast.UnaryOp)):
        return f"operator {type(node.op).__name__}"
    return name


def is_identifier(name: str) -> bool:
    """A name a constant may have: ASCII identifier, no leading _, not a keyword."""
    return bool(_IDENT.fullmatch(name)) and not name.startswith("_") and not keyword.iskeyword(name)
