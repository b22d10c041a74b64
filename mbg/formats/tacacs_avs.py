"""The attr=value pairs of a tacacs record: the values looked up, and ``extra``.

Two paths, the same result:

- ``split_avs(text)``, the general one: every pair split on its first ``=`` or ``*``;
  ``(first, every)``: the first value of each name, and every value (a list where the
  name repeats). ``extra_json`` writes what is left of ``every`` for ``extra``.
- ``AvShapes``, the fast one, for the ordinary line: each pair has exactly one ``=`` (no
  ``*``), no name repeats, and the line needs no JSON escaping. Lines of one gateway
  come with the same names in the same order (a "shape"): what a shape needs (where the
  looked-up names are, the JSON text of ``extra`` as a format string) is worked out once,
  so that a line costs one split and a few C calls instead of a dict of every pair and a
  JSON encoding.
"""

from __future__ import annotations

import json
import re
from itertools import repeat
from operator import itemgetter

from .base import CACHE_LIMIT

# Attributes stored in columns, never repeated in extra (with h323-incoming-conf-id
# when it is the conf id used: when there is no h323-conf-id).
COLUMN_ATTRS = (
    "h323-gw-id", "h323-conf-id", "h323-call-origin", "h323-call-type", "h323-setup-time",
    "h323-disconnect-cause", "elapsed_time",
)
# Attributes the parser reads (besides the configured number orders).
LOOKED_UP = COLUMN_ATTRS + (
    "h323-incoming-conf-id", "h323-disconnect-time", "h323-connect-time", "start_time",
    "service", "protocol",
)
# Keys a record may add to extra: a line with such an attribute takes the general path.
ADDED_KEYS = frozenset(("nas", "clock", "calldate_from"))

# attr=value or attr*value, split on the first '=' or '*'.
_AV = re.compile(r"([^\t=*]*)[=*]([^\t]*)")
# Bytes that JSON escapes (TAB aside: it only separates fields here).
JSON_UNSAFE = bytes(range(0, 9)) + bytes(range(10, 32)) + b'\x7f"\\'
# Every byte but TAB, '=', '*' and JSON_UNSAFE: AvShapes.split deletes them.
_UNMARKED = bytes(b for b in range(256) if b not in b"\t=*" + JSON_UNSAFE)
_COLUMN_TABS = b"\t" * 6


def split_avs(text: str) -> tuple[dict[str, str], dict[str, object]]:
    """(first value of each name, every value: a list where the name repeats)."""
    if not text:
        return {}, {}
    if "*" not in text:
        # C-level iteration: every field has an '=', no name repeats.
        try:
            first = dict(map(str.split, text.split("\t"), repeat("="), repeat(1)))
        except ValueError:  # a field without '=' (or an empty one)
            first = None
        if first is not None and len(first) == text.count("\t") + 1:
            return first, first
    # Repeated names, fields without a separator, empty fields.
    first, every = {}, {}
    for field in text.split("\t"):
        if not field:
            continue
        m = _AV.fullmatch(field)
        name, value = m.groups() if m else (field, "")
        first.setdefault(name, value)
        if name in every:
            old = every[name]
            every[name] = old + [value] if isinstance(old, list) else [old, value]
        else:
            every[name] = value
    return first, every


def extra_attrs(every: dict[str, object]) -> dict[str, object]:
    """``every`` without the attributes stored in columns (``every`` itself, changed)."""
    incoming_is_conf = "h323-conf-id" not in every
    for name in COLUMN_ATTRS:
        every.pop(name, None)
    if incoming_is_conf:
        every.pop("h323-incoming-conf-id", None)
    return every


def extra_json(extra: dict, plain: bool) -> str | None:
    """The JSON text of ``extra``, None when empty. ``plain``: every key and value is a
    str without characters that JSON escapes, so joining strings writes what json.dumps
    would."""
    if not extra:
        return None
    if plain:
        return '{"' + '", "'.join(map('": "'.join, extra.items())) + '"}'
    return json.dumps(extra, ensure_ascii=False)


def _getter(positions: list[int]):
    """values -> the tuple of values at ``positions`` (itemgetter of one index would
    return the value itself)."""
    if len(positions) == 1:
        position = positions[0]
        return lambda values: (values[position],)
    return itemgetter(*positions)


class _Shape:
    """What the lines with one sequence of pair names need: where the looked-up values
    are, and extra (the other pairs, in order) as JSON text around the values:
    ``['{"k1": "', v1, '", "k2": "', v2, '"']``."""

    __slots__ = ("names", "looked_up", "no_values", "looked_up_values", "kept_values",
                 "template")

    def __init__(self, names: tuple[str, ...], wanted: frozenset[str]) -> None:
        column = set(COLUMN_ATTRS)
        if "h323-conf-id" not in names:
            column.add("h323-incoming-conf-id")
        looked_up = [i for i, name in enumerate(names) if name in wanted]
        kept = [i for i, name in enumerate(names) if name not in column]
        self.names = names
        self.looked_up = tuple(names[i] for i in looked_up)
        self.no_values = dict.fromkeys(self.looked_up)
        self.looked_up_values = _getter(looked_up) if looked_up else None
        self.kept_values = _getter(kept) if kept else None
        self.template: list[str | None] = []
        for i in kept:
            self.template += ['", "' + names[i] + '": "', None]
        if kept:
            self.template[0] = '{"' + names[kept[0]] + '": "'
            self.template.append('"')

    def attrs(self, values: list[str]) -> dict[str, str]:
        """The looked-up values by name."""
        attrs = self.no_values.copy()  # a dict of the right size: no resizing
        if self.looked_up_values is not None:
            attrs.update(zip(self.looked_up, self.looked_up_values(values)))
        return attrs

    def extra_parts(self, values: list[str]) -> list[str]:
        """The pieces of extra's JSON text: '{', then '"k": "v"' of the kept pairs
        (nothing when none), without the closing brace."""
        if self.kept_values is None:
            return ["{"]
        parts = self.template.copy()
        parts[1:-1:2] = self.kept_values(values)
        return parts


class AvShapes:
    """The fast path of one parser: ``parse(line, text)`` -> (the six columns, looked-up
    values by name, the pieces of extra's JSON: see ``_Shape.extra_parts``), or None when
    the line must take the general path.

    ``wanted``: the attribute names the parser reads.
    """

    RECENT = 4  # shapes tried first, most recent first (answer and originate legs...)

    def __init__(self, wanted: frozenset[str]) -> None:
        self.wanted = wanted
        # names -> _Shape, or None: such lines take the general path (at most CACHE_LIMIT).
        self._shapes: dict[tuple[str, ...], _Shape | None] = {}
        self._recent: list[_Shape] = []

    def parse(self, line: bytes, text: str) -> tuple[list[str], dict[str, str], str] | None:
        """``line``: the whole record, ASCII, without its terminator; ``text``: decoded."""
        # One pass over the line: TABs, '=', '*' and what JSON escapes. An ordinary line
        # leaves six TABs (the columns), then '=' and TAB alternating, ending with '='.
        marks = line.translate(None, _UNMARKED)
        if marks != _COLUMN_TABS + b"=\t" * ((len(marks) - 7) // 2) + b"=":
            return None
        parts = text.replace("=", "\t").split("\t")
        names = tuple(parts[6::2])
        for shape in self._recent:
            if shape.names == names:
                break
        else:
            shape = self._shape(names)
            if shape is None:
                return None
        values = parts[7::2]
        return parts[:6], shape.attrs(values), shape.extra_parts(values)

    def _shape(self, names: tuple[str, ...]) -> _Shape | None:
        shape = self._shapes.get(names, False)
        if shape is False:
            shape = None
            if len(set(names)) == len(names) and ADDED_KEYS.isdisjoint(names):
                shape = _Shape(names, self.wanted)
            if len(self._shapes) >= CACHE_LIMIT:
                self._shapes.clear()
            self._shapes[names] = shape
        if shape is not None:
            self._recent = [shape] + [s for s in self._recent if s is not shape][: self.RECENT - 1]
        return shape
