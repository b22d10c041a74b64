"""Mediation rules (SPEC section 8): normalize, skip and validate calls before rating.

A rules file (``$MBGROOT/etc/mediation.toml``) declares ``[constants]``, named rules
``[rules.NAME]``, the ``chain`` (their order) and ``[validate.FIELD]`` checks. It is
loaded and compiled once (``load_rules``); ``RuleSet.apply(call)`` then runs the chain on
one call and returns an ``Outcome``:

- ``call``: the normalized fields, a new dict (the input is never changed);
- ``skipped``: the name of the ``skip`` rule that stopped the chain (rating stores
  ``skipped: NAME``);
- ``invalid``: ``"invalid: FIELD CHECK"`` when a validator failed (``invalid: dst length``),
  or ``"invalid: rule NAME failed"`` when a rule met a value it cannot work on at run time
  (a local holding a number where text is needed, say);
- ``fired``: the names of the rules that fired, in order. A ``set``, ``prepend`` or
  ``skip`` rule fires when its ``when`` holds (or it has none); a ``replace`` rule when
  one of its regexes matched; an ``if`` rule when its condition holds (the rules of the
  branch it ran follow it).

Decisions where SPEC is silent (also in the README):

- ``replace`` tries the regexes of ``map`` in order; the first that matches rewrites
  every match of itself in the field (``re.subn``; ``\\1`` and ``\\g<name>`` refer to its
  groups). ``map`` is a list of ``[regex, replacement]`` pairs, or an inline table (file
  order is kept).
- ``value`` of ``set``/``prepend`` and ``when`` are expressions (``mbg.expressions``); a
  TOML integer or boolean there is a literal.
- ``set`` and ``replace``/``prepend`` may target any field but ``extra``, or a local
  ``$name``. A field keeps its type: text fields take text, ``duration``/``billsec``
  integers (checked at load when the type is known, else at run time).
- Locals start empty for each call; reading an unset local gives ``""``.
- Validators run after the chain, on calls not skipped, field by field in file order,
  each check in the order required, type, length, regex, value; the first failure is
  the reason. A field that is not required and is empty passes. ``type`` is
  ``string`` (also ``str``, ``text``), ``integer`` (also ``int``, ``number``,
  ``numeric``: a number, or text of an optionally signed decimal integer) or ``digits``
  (text of 0-9 only, non-empty). ``length = [min, max]`` (or one integer, an exact
  length). ``value`` is one allowed value, a list of allowed values, a table
  ``{min = .., max = ..}`` (inclusive bounds, either optional), or a condition: a string
  that compiles to a true/false expression (``value = "billsec <= 7200"``) must hold;
  any other string is the one allowed text.
- Rule names are letters, digits, ``_ - .`` so that reasons stay plain words.
"""

from __future__ import annotations

import json
import os
import re
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from .errors import InputError
from .expressions import FIELD_TYPES, FUNCTIONS, Compiled, Compiler, ExpressionError, is_identifier

KINDS = ("set", "replace", "prepend", "skip", "if")
_KEYS = {
    "set": {"field", "value"},
    "replace": {"field", "map"},
    "prepend": {"field", "value"},
    "skip": set(),
    "if": {"then", "else"},
}
_COMMON_KEYS = {"kind", "when", "description", "comment"}
_TOP_KEYS = {"chain", "constants", "rules", "validate"}
MAX_IF_DEPTH = 40  # if rules inside if rules: far from Python's recursion limit
_RULE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*")
_PY_TYPE = {"str": str, "int": int}
# Errors Python raises when a value of unknown type (a local, extra) does not fit.
RUNTIME_ERRORS = (TypeError, ValueError, AttributeError, KeyError, IndexError, re.error)

# A step is one compiled rule: (name, when, action). ``when(call, locals)`` is its
# condition (None: always); ``action(call, locals, fired)`` does the rule and returns None
# to go on, else ("skip", rule) or ("invalid", reason). Most conditions are false for most
# calls, so the loop tests them itself: one Python call per rule that does not fire.
# An if rule tests its condition in its action (it has a branch either way).
Action = Callable[[dict, dict, list], "tuple[str, str] | None"]
Step = tuple[str, Callable[[dict, dict], Any] | None, Action]


class RulesError(InputError):
    """The rules file cannot be used; the message names the file and the rule."""


@dataclass(slots=True)
class Outcome:
    call: dict
    skipped: str | None
    invalid: str | None
    fired: list[str]


@dataclass(frozen=True)
class Rule:
    name: str
    kind: str
    definition: dict  # the rule's table as written, for describe()


@dataclass
class RuleSet:
    """A compiled rules file. ``apply`` is the only thing rating needs."""

    path: str
    constants: dict[str, Any]
    rules: dict[str, Rule]
    chain: list[str]
    validated: list[str]  # fields with a [validate.FIELD] table, in order
    uses_extra: bool  # False: no rule reads extra, a caller may pass extra=None unparsed
    _steps: list[Step] = field(repr=False)
    _validators: list[Callable[[dict], str | None]] = field(repr=False)

    def apply(self, call: dict) -> Outcome:
        c = dict(call)  # the one copy per call: rules write into it
        fired: list[str] = []
        l: dict = {}
        # _run, inlined: this loop is the hot path of rating with rules.
        for name, when, action in self._steps:
            try:
                if when is not None and not when(c, l):
                    continue
                result = action(c, l, fired)
            except RUNTIME_ERRORS:
                return Outcome(c, None, f"invalid: rule {name} failed", fired)
            if result is not None:
                kind, text = result
                if kind == "skip":
                    return Outcome(c, text, None, fired)
                return Outcome(c, None, text, fired)
        for check in self._validators:
            reason = check(c)
            if reason is not None:
                return Outcome(c, None, reason, fired)
        return Outcome(c, None, None, fired)

    def describe(self, name: str) -> str:
        """One line saying what rule ``name`` does, as written (for explain/mediate)."""
        rule = self.rules[name]
        d = rule.definition
        parts = [rule.kind]
        if "field" in d:
            parts.append(str(d["field"]))
        if "value" in d:
            parts.append(f"value {d['value']}")
        if "map" in d:
            parts.append(f"map {d['map']}")
        if "when" in d:
            parts.append(f"when {d['when']}")
        if "then" in d:
            parts.append(f"then {d['then']}")
        if "else" in d:
            parts.append(f"else {d['else']}")
        return " ".join(parts)


def _run(steps: list[Step], c: dict, l: dict, fired: list) -> tuple[str, str] | None:
    for name, when, action in steps:
        try:
            if when is not None and not when(c, l):
                continue
            result = action(c, l, fired)
        except RUNTIME_ERRORS:
            return ("invalid", f"invalid: rule {name} failed")
        if result is not None:
            return result
    return None


# --- loading ---------------------------------------------------------------------------


def load_rules(path: str | os.PathLike) -> RuleSet:
    """Read and compile a rules file; RulesError (exit 2) names the file and the rule."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise RulesError(f"{path}: no such rules file") from None
    except OSError as e:
        raise RulesError(f"{path}: cannot read ({e.strerror})") from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise RulesError(f"{path}: not UTF-8 text (byte {e.start})") from None
    return parse_rules(text, str(path))


def parse_rules(text: str, origin: str = "<rules>") -> RuleSet:
    """Compile the text of a rules file; ``origin`` names it in errors."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise RulesError(f"{origin}: not valid TOML: {e}") from None
    return _Loader(data, origin).load()


def example_text() -> str:
    """The example rules file installed with the package (Russian numbering)."""
    return resources.files("mbg.examples").joinpath("mediation.toml").read_text(encoding="utf-8")


CALL_FIELDS = (
    "source", "calldate", "src", "dst", "channel", "dstchannel",
    "duration", "billsec", "cause", "callid", "extra",
)


def call_from_row(row: tuple | list) -> dict:
    """The call dict ``apply`` takes, from telephony_log's content columns in CALL_FIELDS
    order (the order of mbg.dataset.LOG_COLUMNS); ``extra`` JSON text becomes a dict."""
    call = dict(zip(CALL_FIELDS, row))
    if isinstance(call["extra"], str):
        call["extra"] = extra_dict(call["extra"])
    return call


def extra_dict(text: str | None) -> dict | None:
    """The rules' ``extra``: the JSON object of telephony_log.extra, or None (no extra, or
    text that is not a JSON object: a hand-edited row must not stop a run)."""
    if not text:
        return None
    try:
        extra = json.loads(text)
    except ValueError:
        return None
    return extra if isinstance(extra, dict) else None


def rules_file(mediation_file: Path, rules: str | os.PathLike | None) -> Path | None:
    """The rules file to use: ``--rules FILE`` if given, else etc/mediation.toml if present."""
    if rules is not None:
        return Path(rules)
    return mediation_file if mediation_file.exists() else None


def load_optional_rules(mediation_file: Path, rules: str | os.PathLike | None = None) -> RuleSet | None:
    """What rating uses: the rules of ``rules_file``, or None when there is no file."""
    path = rules_file(mediation_file, rules)
    return load_rules(path) if path is not None else None


class _Loader:
    def __init__(self, data: dict, origin: str) -> None:
        self.data = data
        self.origin = origin
        self.compiler: Compiler | None = None
        self.steps: dict[str, Step] = {}
        self.locals_set: set[str] = set()

    def fail(self, where: str, message: str) -> RulesError:
        return RulesError(f"{self.origin}: {where}: {message}")

    def load(self) -> RuleSet:
        unknown = sorted(set(self.data) - _TOP_KEYS)
        if unknown:
            raise self.fail(f"key {unknown[0]!r}", "unknown (expected chain, constants, rules, validate)")
        constants = self._constants(self.data.get("constants", {}))
        self.compiler = Compiler(constants)
        rules = self.data.get("rules", {})
        if not isinstance(rules, dict):
            raise self.fail("rules", "must be tables [rules.NAME]")
        self.definitions = rules
        for name, definition in rules.items():
            self._check_rule(name, definition)
        chain = self._names("chain", self.data.get("chain", []))
        for name in chain:
            self._build(name, [], "chain")
        # Rules outside the chain are compiled too: an error in one is an error now.
        for name in rules:
            self._build(name, [], "rules")
        for name in sorted(self.compiler.locals_read - self.locals_set):
            raise self.fail(f"local ${name}", "is read but no rule sets it")
        validate = self.data.get("validate", {})
        if not isinstance(validate, dict):
            raise self.fail("validate", "must be tables [validate.FIELD]")
        validators = [self._validator(f, checks) for f, checks in validate.items()]
        return RuleSet(
            path=self.origin,
            constants=constants,
            rules={n: Rule(n, d["kind"], d) for n, d in rules.items()},
            chain=chain,
            validated=list(validate),
            uses_extra=self.compiler.uses_extra,
            _steps=[self.steps[n] for n in chain],
            _validators=validators,
        )

    def _constants(self, table: Any) -> dict[str, Any]:
        if not isinstance(table, dict):
            raise self.fail("constants", "must be a table [constants]")
        constants = {}
        for name, value in table.items():
            where = f"constant {name}"
            if name in FIELD_TYPES:
                raise self.fail(where, "is named like a field of the call")
            if name in FUNCTIONS or name in ("True", "False", "None"):
                raise self.fail(where, "is named like a built-in of the expressions")
            if not is_identifier(name):
                raise self.fail(where, "a name is letters, digits and _, not starting with _ or a digit")
            if isinstance(value, list):
                if not all(isinstance(v, (str, int)) for v in value):
                    raise self.fail(where, "a list may hold only strings and integers")
                value = tuple(value)
            elif not isinstance(value, (str, int)):  # bool is an int
                raise self.fail(where, f"must be a string, integer, boolean or list, not {type(value).__name__}")
            constants[name] = value
        return constants

    def _names(self, where: str, value: Any) -> list[str]:
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(where, "must be a list of rule names")
        return value

    def _check_rule(self, name: str, definition: Any) -> None:
        where = f"rule {name}"
        if not _RULE_NAME.fullmatch(name):
            raise self.fail(where, "a rule name is letters, digits and _ - . only")
        if not isinstance(definition, dict):
            raise self.fail(where, "must be a table [rules.NAME]")
        kind = definition.get("kind")
        if kind not in KINDS:
            raise self.fail(where, f"kind must be one of {', '.join(KINDS)}, not {kind!r}")
        unknown = sorted(set(definition) - _COMMON_KEYS - _KEYS[kind])
        if unknown:
            raise self.fail(where, f"unknown key {unknown[0]!r} for a {kind} rule")
        required = _KEYS[kind] - {"then", "else"}
        for key in sorted(required):
            if key not in definition:
                raise self.fail(where, f"a {kind} rule needs {key}")
        if kind == "if":
            if "when" not in definition:
                raise self.fail(where, "an if rule needs when")
            if "then" not in definition and "else" not in definition:
                raise self.fail(where, "an if rule needs then or else")

    def _expr(self, where: str, text: Any) -> Compiled:
        try:
            return self.compiler.compile(text)
        except ExpressionError as e:
            raise self.fail(where, str(e)) from None

    def _build(self, name: str, stack: list[str], referrer: str) -> Step:
        """The step of rule ``name``, built once; ``stack`` holds the if rules above it."""
        if name in self.steps:
            return self.steps[name]
        if name in stack:
            cycle = " -> ".join(stack[stack.index(name):] + [name])
            raise self.fail(f"rule {name}", f"if rules form a cycle: {cycle}")
        if name not in self.definitions:
            raise self.fail(referrer, f"names rule {name!r}, which is not defined")
        if len(stack) >= MAX_IF_DEPTH:
            raise self.fail(f"rule {name}", f"if rules nested deeper than {MAX_IF_DEPTH}")
        d = self.definitions[name]
        where = f"rule {name}"
        when = self._expr(f"{where}: when", d["when"]).fn if "when" in d else None
        kind = d["kind"]
        if kind == "skip":
            step = (name, when, _skip_action(name))
        elif kind == "if":
            branches = []
            for key in ("then", "else"):
                names = self._names(f"{where}: {key}", d.get(key, []))
                branches.append([self._build(n, stack + [name], where) for n in names])
            step = (name, None, _if_action(name, when, *branches))
        else:
            local, key, kind_of = self._target(where, d["field"])
            if kind == "replace":
                if kind_of not in ("str", "any"):
                    raise self.fail(where, f"replace needs a text field, {key} is {kind_of}")
                step = (name, when, _replace_action(name, local, key, self._map(where, d["map"])))
            else:
                value = self._expr(f"{where}: value", d["value"])
                if kind == "prepend":
                    if kind_of not in ("str", "any"):
                        raise self.fail(where, f"prepend needs a text field, {key} is {kind_of}")
                    if value.type not in ("str", "any"):
                        raise self.fail(f"{where}: value", f"prepend needs text, not {value.type}")
                    check = None if value.type == "str" else str
                    step = (name, when, _prepend_action(name, local, key, value.fn, check))
                else:
                    if kind_of != "any" and value.type not in (kind_of, "any"):
                        raise self.fail(f"{where}: value", f"{key} takes {kind_of}, not {value.type}")
                    check = None if kind_of == "any" or value.type == kind_of else _PY_TYPE[kind_of]
                    step = (name, when, _set_action(name, local, key, value.fn, check))
            if local:
                self.locals_set.add(key)
        self.steps[name] = step
        return step

    def _target(self, where: str, target: Any) -> tuple[bool, str, str]:
        """(is_local, key, type) of a rule's ``field``: a field name or ``$name``."""
        if isinstance(target, str) and target.startswith("$") and is_identifier(target[1:]):
            return True, target[1:], "any"
        if isinstance(target, str) and target in FIELD_TYPES and target != "extra":
            return False, target, FIELD_TYPES[target]
        raise self.fail(where, f"field must be a field of the call (not extra) or $local, not {target!r}")

    def _map(self, where: str, value: Any) -> list[tuple[re.Pattern, str]]:
        pairs = list(value.items()) if isinstance(value, dict) else value
        if not isinstance(pairs, list) or not pairs:
            raise self.fail(where, "map must be a non-empty list of [regex, replacement] pairs")
        compiled = []
        for pair in pairs:
            if not (isinstance(pair, (list, tuple)) and len(pair) == 2 and all(isinstance(p, str) for p in pair)):
                raise self.fail(where, f"map entry {pair!r} is not a [regex, replacement] pair of strings")
            try:
                pattern = self.compiler.regex(pair[0])
                pattern.sub(pair[1], "")  # checks the replacement's group references
            except ExpressionError as e:
                raise self.fail(where, str(e)) from None
            except (re.error, IndexError) as e:
                raise self.fail(where, f"bad replacement {pair[1]!r} for {pair[0]!r}: {e}") from None
            compiled.append((pattern, pair[1]))
        return compiled

    def _validator(self, name: str, checks: Any) -> Callable[[dict], str | None]:
        where = f"validate {name}"
        if name not in FIELD_TYPES or name == "extra":
            raise self.fail(where, "not a field of the call (extra cannot be validated)")
        if not isinstance(checks, dict):
            raise self.fail(where, "must be a table [validate.FIELD]")
        try:
            return build_validator(name, FIELD_TYPES[name], checks, self.compiler)
        except (ValueError, ExpressionError) as e:
            raise self.fail(where, str(e)) from None


# --- steps: one closure per rule ----------------------------------------------------------


def _skip_action(name: str) -> Action:
    stop = ("skip", name)

    def skip(c, l, fired):
        fired.append(name)
        return stop

    return skip


def _if_action(name: str, when, then: list, otherwise: list) -> Action:
    def if_rule(c, l, fired):
        if when(c, l):
            fired.append(name)
            return _run(then, c, l, fired) if then else None
        return _run(otherwise, c, l, fired) if otherwise else None

    return if_rule


def _set_action(name: str, local: bool, key: str, value, check: type | None) -> Action:
    def set_rule(c, l, fired):
        v = value(c, l)
        if check is not None and type(v) is not check:
            raise TypeError(f"{key} takes {check.__name__}")
        (l if local else c)[key] = v
        fired.append(name)

    return set_rule


def _prepend_action(name: str, local: bool, key: str, value, check: type | None) -> Action:
    def prepend(c, l, fired):
        d = l if local else c
        v = value(c, l)
        if check is not None and type(v) is not check:
            raise TypeError("prepend takes text")
        d[key] = v + d.get(key, "")
        fired.append(name)

    return prepend


def _replace_action(name: str, local: bool, key: str, patterns: list) -> Action:
    pairs = [(pattern.search, pattern.sub, repl) for pattern, repl in patterns]

    def replace(c, l, fired):
        d = l if local else c
        old = d.get(key, "")
        for search, sub, repl in pairs:
            # search first: most calls match none, and search allocates nothing then.
            if search(old) is not None:
                d[key] = sub(repl, old)
                fired.append(name)
                return None
        return None

    return replace


# --- validators -------------------------------------------------------------------------

_INTEGER_TEXT = re.compile(r"[+-]?[0-9]+")
_DIGITS = re.compile(r"[0-9]+")
_VALIDATE_KEYS = ("required", "type", "length", "regex", "value")


def build_validator(
    name: str, kind: str, checks: Mapping[str, Any], compiler: Compiler
) -> Callable[[dict], str | None]:
    """One closure checking field ``name`` of a call: the reason of the first failure, or None."""
    unknown = sorted(set(checks) - set(_VALIDATE_KEYS))
    if unknown:
        raise ValueError(f"unknown check {unknown[0]!r} (known: {', '.join(_VALIDATE_KEYS)})")
    tests: list[tuple[Callable[[Any, dict], bool], str]] = []
    required = checks.get("required", False)
    if not isinstance(required, bool):
        raise ValueError("required must be true or false")
    if required and kind == "str":
        tests.append((lambda v, c: v != "", f"invalid: {name} required"))
    if "type" in checks:
        tests.append((_type_test(checks["type"]), f"invalid: {name} type"))
    if "length" in checks:
        if kind != "str":
            raise ValueError(f"length needs a text field, {name} is {kind}")
        low, high = _bounds(checks["length"], "length")
        tests.append((lambda v, c: low <= len(v) <= high, f"invalid: {name} length"))
    if "regex" in checks:
        if kind != "str":
            raise ValueError(f"regex needs a text field, {name} is {kind}")
        if not isinstance(checks["regex"], str):
            raise ValueError("regex must be a string")
        search = compiler.regex(checks["regex"]).search
        tests.append((lambda v, c: search(v) is not None, f"invalid: {name} regex"))
    if "value" in checks:
        tests.append((_value_test(checks["value"], kind, compiler), f"invalid: {name} value"))

    def validate(c: dict) -> str | None:
        v = c[name]
        if v == "" and not required:
            return None
        for test, reason in tests:
            try:
                if not test(v, c):
                    return reason
            except RUNTIME_ERRORS:  # a condition on a value of unknown type
                return reason
        return None

    return validate


_TYPE_NAMES = {
    "string": "string", "str": "string", "text": "string",
    "integer": "integer", "int": "integer", "number": "integer", "numeric": "integer",
    "digits": "digits",
}


def _type_test(kind: Any) -> Callable[[Any, dict], bool]:
    kind = _TYPE_NAMES.get(kind) if isinstance(kind, str) else None
    if kind == "string":
        return lambda v, c: isinstance(v, str)
    if kind == "integer":
        return lambda v, c: (isinstance(v, int) and not isinstance(v, bool)) or (
            isinstance(v, str) and _INTEGER_TEXT.fullmatch(v) is not None
        )
    if kind == "digits":
        return lambda v, c: isinstance(v, str) and _DIGITS.fullmatch(v) is not None
    raise ValueError("type must be string, integer or digits")


def _bounds(value: Any, what: str) -> tuple[int, int]:
    if isinstance(value, int) and not isinstance(value, bool):
        return value, value
    if (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        and value[0] <= value[1]
    ):
        return value[0], value[1]
    raise ValueError(f"{what} must be [min, max] (integers, min <= max) or one integer")


def _value_test(value: Any, kind: str, compiler: Compiler) -> Callable[[Any, dict], bool]:
    """value = one allowed value, a list of them, {min, max}, or a condition (an
    expression of true/false on the call: ``value = "billsec <= 7200"``)."""
    expected = _PY_TYPE[kind]

    def typed(v: Any) -> Any:
        if type(v) is not expected:
            raise ValueError(f"value {v!r} is not of the field's type ({kind})")
        return v

    if isinstance(value, str):
        try:
            condition = compiler.compile(value)
        except ExpressionError as e:
            condition = None
            if kind != "str":
                raise ValueError(f"value {value!r} is neither a number nor a condition ({e})") from None
        if condition is not None and condition.type == "bool":
            test = condition.fn
            return lambda v, c: bool(test(c, {}))
    if isinstance(value, dict):
        unknown = sorted(set(value) - {"min", "max"})
        if unknown or not value:
            raise ValueError("value as a table is {min = .., max = ..}")
        low = typed(value["min"]) if "min" in value else None
        high = typed(value["max"]) if "max" in value else None
        return lambda v, c: (low is None or v >= low) and (high is None or v <= high)
    if isinstance(value, list):
        allowed = frozenset(typed(v) for v in value)
        return lambda v, c: v in allowed
    one = typed(value)
    return lambda v, c: v == one
