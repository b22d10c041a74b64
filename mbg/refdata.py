"""Reference data of billing.db: `mbg load KIND FILE.csv` and `mbg dump KIND` (SPEC section 5).

A load reads the whole CSV file (header row required, UTF-8, an optional BOM), checks
every cell and every reference, and writes it in one transaction: a file with any bad
row changes nothing, and the error names the file, the line and the column. A row whose
key is already in the table replaces it (re-loading a file is idempotent); rows absent
from the file are left alone (a load never deletes).

Decisions where SPEC is silent:
- Cells are stripped of surrounding spaces; columns may come in any order; an unknown
  column is an error; the same key twice in one file is an error.
- Money of services (monthly_fee, daily_fee) is stored in minor units: more decimals than
  ``money_decimals`` is an error. Rates (price, connect_fee) are kept as exact decimal
  strings, because a rate may have more digits than the currency; they must be >= 0.
- numbers: valid_to must be after valid_from, and a number may not have two rows valid on
  the same day. subscriptions: stop after start, no two overlapping rows of the same
  account and service.
- routes: the order of the rows is the order of matching (the first pattern wins). A load
  places its rows after the routes it does not mention, in the file's order.
- schedule: the dump's extra columns state and reason are accepted and ignored, so a dump
  loads again. A re-loaded entry keeps its state unless its new_service changed (then it
  is pending again).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import apsw

from . import db
from .dates import parse_day
from .errors import InputError
from .money import format_minor, parse_decimal, to_minor
from .root import check_money_decimals

LOAD_ORDER = ("accounts", "numbers", "tariffs", "buckets", "routes", "services",
              "subscriptions", "schedule")
DUMP_KINDS = LOAD_ORDER + ("charges",)


class RefDataError(InputError):
    """A bad reference data file: names the file, line and column."""


# Cell parsers: text -> stored value, or ValueError with the reason.

def _text(cell: str, ctx: dict) -> str:
    if not cell:
        raise ValueError("empty; a value is required")
    return cell


def _text_or_none(cell: str, ctx: dict) -> str | None:
    return cell or None


def _text_or_empty(cell: str, ctx: dict) -> str:
    return cell


def _day(cell: str, ctx: dict) -> str:
    return _check(parse_day, cell).isoformat()


def _day_or_none(cell: str, ctx: dict) -> str | None:
    return _day(cell, ctx) if cell else None


def _rate(cell: str, ctx: dict) -> str:
    value = _check(parse_decimal, cell, "decimal")
    if value < 0:
        raise ValueError(f"{cell!r} is negative")
    return cell


def _rate_or_zero(cell: str, ctx: dict) -> str:
    return _rate(cell, ctx) if cell else "0"


def _fee_or_none(cell: str, ctx: dict) -> int | None:
    if not cell:
        return None
    value = _check(to_minor, cell, ctx["decimals"], "amount")
    if value < 0:
        raise ValueError(f"{cell!r} is negative")
    return value


MAX_SECONDS = 10**9  # 31 years: increments, free seconds, bucket sizes


def _seconds(cell: str, ctx: dict) -> int:
    if not cell.isdigit() or not cell.isascii():
        raise ValueError(f"bad seconds {cell!r}: expected a whole number >= 0")
    if len(cell) > 10 or int(cell) > MAX_SECONDS:
        raise ValueError(f"bad seconds {cell!r}: more than {MAX_SECONDS}")
    return int(cell)


def _seconds_or_zero(cell: str, ctx: dict) -> int:
    return _seconds(cell, ctx) if cell else 0


def _increment(cell: str, ctx: dict) -> int:
    if not cell:
        return 1
    value = _seconds(cell, ctx)
    if value < 1:
        raise ValueError(f"bad increment {cell!r}: expected a whole number of seconds >= 1")
    return value


def _action(cell: str, ctx: dict) -> str:
    if cell not in ("start", "stop", "switch"):
        raise ValueError(f"bad action {cell!r}: expected start, stop or switch")
    return cell


def _check(func: Callable, *args):
    try:
        return func(*args)
    except InputError as e:
        raise ValueError(str(e)) from None


@dataclass(frozen=True)
class Kind:
    table: str
    columns: tuple[tuple[str, Callable], ...]
    key: tuple[str, ...]
    refs: dict[str, tuple[str, str]] = field(default_factory=dict)  # column -> (table, column)
    ignored: tuple[str, ...] = ()  # columns a dump adds, accepted by load and not stored

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.columns)


KINDS: dict[str, Kind] = {
    "accounts": Kind("accounts", (("account", _text), ("name", _text_or_empty)), ("account",)),
    "numbers": Kind(
        "numbers",
        (("number", _text), ("account", _text), ("valid_from", _day), ("valid_to", _day_or_none)),
        ("number", "valid_from"),
        {"account": ("accounts", "account")},
    ),
    "tariffs": Kind(
        "tariffs",
        (("tariff", _text), ("prefix", _text_or_empty), ("direction", _text_or_empty),
         ("price", _rate), ("first", _increment), ("next", _increment),
         ("connect_fee", _rate_or_zero), ("free_seconds", _seconds_or_zero),
         ("bucket", _text_or_none)),
        ("tariff", "prefix"),
    ),
    "buckets": Kind(
        "buckets",
        (("tariff", _text), ("bucket", _text), ("seconds", _seconds)),
        ("tariff", "bucket"),
        {"tariff": ("tariffs", "tariff")},
    ),
    "routes": Kind("routes", (("pattern", _text), ("tariff", _text)), ("pattern",),
                   {"tariff": ("tariffs", "tariff")}),
    "services": Kind(
        "services",
        (("service", _text), ("name", _text_or_empty), ("monthly_fee", _fee_or_none),
         ("daily_fee", _fee_or_none), ("tariff", _text_or_none)),
        ("service",),
        {"tariff": ("tariffs", "tariff")},
    ),
    "subscriptions": Kind(
        "subscriptions",
        (("account", _text), ("service", _text), ("start", _day), ("stop", _day_or_none)),
        ("account", "service", "start"),
        {"account": ("accounts", "account"), "service": ("services", "service")},
    ),
    "schedule": Kind(
        "schedule",
        (("date", _day), ("account", _text), ("action", _action), ("service", _text),
         ("new_service", _text_or_none)),
        ("date", "account", "action", "service"),
        {"account": ("accounts", "account"), "service": ("services", "service"),
         "new_service": ("services", "service")},
        ignored=("state", "reason"),
    ),
}


@dataclass
class LoadResult:
    rows: int       # rows in the file
    inserted: int   # new keys
    replaced: int   # keys already present, replaced


def _fail(path: Path, line: int, column: str | None, message: str) -> RefDataError:
    where = f"{path}: line {line}" + (f", column {column}" if column else "")
    return RefDataError(f"{where}: {message}")


def _read_csv(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(line number, cells) for each record of the file, the header first."""
    try:
        data = path.read_bytes()
    except OSError as e:
        raise RefDataError(f"{path}: cannot read ({e.strerror})") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[: e.start].count(b"\n") + 1
        raise _fail(path, line, None, "not UTF-8 text") from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        for cells in reader:
            yield reader.line_num, [c.strip() for c in cells]
    except csv.Error as e:
        raise _fail(path, reader.line_num, None, f"bad CSV ({e})") from None


def parse_file(kind_name: str, path: Path, decimals: int) -> list[tuple[int, dict]]:
    """Every row of the file as (line, {column: value}), checked cell by cell."""
    kind = _kind(kind_name, LOAD_ORDER, "load")
    records = _read_csv(Path(path))
    first = next(records, None)
    if first is None:
        raise _fail(path, 1, None, f"empty file; expected a header row: {','.join(kind.names)}")
    header_line, header = first
    unknown = [h for h in header if h not in kind.names and h not in kind.ignored]
    if unknown:
        raise _fail(path, header_line, unknown[0],
                    f"unknown column; {kind_name} has: {', '.join(kind.names)}")
    missing = [n for n in kind.names if n not in header]
    if missing:
        raise _fail(path, header_line, missing[0], "missing from the header row")
    if len(set(header)) != len(header):
        dup = next(h for h in header if header.count(h) > 1)
        raise _fail(path, header_line, dup, "appears twice in the header row")
    position = {name: header.index(name) for name in kind.names}
    ctx = {"decimals": decimals}
    rows: list[tuple[int, dict]] = []
    seen: dict[tuple, int] = {}
    for line, cells in records:
        if not any(cells):
            continue  # a blank line
        if len(cells) != len(header):
            raise _fail(path, line, None,
                        f"{len(cells)} columns, the header has {len(header)}")
        row = {}
        for name, parse in kind.columns:
            try:
                row[name] = parse(cells[position[name]], ctx)
            except ValueError as e:
                raise _fail(path, line, name, str(e)) from None
        key = tuple(row[k] for k in kind.key)
        if key in seen:
            raise _fail(path, line, kind.key[-1],
                        f"the key ({', '.join(map(str, key))}) is already on line {seen[key]}")
        seen[key] = line
        _check_row(kind_name, path, line, row)
        rows.append((line, row))
    return rows


def _check_row(kind_name: str, path: Path, line: int, row: dict) -> None:
    if kind_name == "numbers" and row["valid_to"] and row["valid_to"] <= row["valid_from"]:
        raise _fail(path, line, "valid_to", "must be after valid_from")
    if kind_name == "subscriptions" and row["stop"] and row["stop"] <= row["start"]:
        raise _fail(path, line, "stop", "must be after start")
    if kind_name == "schedule":
        if row["action"] == "switch" and not row["new_service"]:
            raise _fail(path, line, "new_service", "a switch needs the new service")
        if row["action"] != "switch" and row["new_service"]:
            raise _fail(path, line, "new_service", f"only a switch has one, not a {row['action']}")


def _kind(name: str, allowed: tuple[str, ...], verb: str) -> Kind | None:
    """The Kind of a name the verb accepts (None for charges, which only dumps)."""
    if name not in allowed:
        raise InputError(f"cannot {verb} {name!r}: expected one of {', '.join(allowed)}")
    return KINDS.get(name)


def load_file(conn: apsw.Connection, kind_name: str, path: Path, decimals: int) -> LoadResult:
    """Load one CSV file of a kind into billing.db, all or nothing."""
    path = Path(path)
    kind = _kind(kind_name, LOAD_ORDER, "load")
    rows = parse_file(kind_name, path, decimals)
    names = kind.names
    with db.write_transaction(conn):
        check_money_decimals(conn, decimals, record=True)
        _check_references(conn, kind, path, rows)
        existing = 0
        key_sql = " AND ".join(f"{k} = ?" for k in kind.key)
        for _, row in rows:
            existing += conn.execute(
                f"SELECT count(*) FROM {kind.table} WHERE {key_sql}",
                tuple(row[k] for k in kind.key),
            ).fetchall()[0][0]
        if kind_name == "routes":
            _load_routes(conn, rows)
        elif kind_name == "schedule":
            conn.executemany(
                "INSERT INTO schedule (date, account, action, service, new_service) "
                "VALUES (?,?,?,?,?) ON CONFLICT (date, account, action, service) DO UPDATE SET "
                "state = CASE WHEN new_service IS excluded.new_service THEN state ELSE 'pending' END, "
                "reason = CASE WHEN new_service IS excluded.new_service THEN reason ELSE '' END, "
                "new_service = excluded.new_service",
                [tuple(row[n] for n in names) for _, row in rows],
            )
        else:
            others = [n for n in names if n not in kind.key]
            update = ", ".join(f"{n} = excluded.{n}" for n in others)
            conflict = f"DO UPDATE SET {update}" if others else "DO NOTHING"
            conn.executemany(
                f"INSERT INTO {kind.table} ({', '.join(names)}) VALUES "
                f"({', '.join('?' for _ in names)}) ON CONFLICT ({', '.join(kind.key)}) {conflict}",
                [tuple(row[n] for n in names) for _, row in rows],
            )
        if kind_name == "numbers":
            _check_no_overlap(conn, path, rows, "numbers", ("number",), "valid_from", "valid_to")
        if kind_name == "subscriptions":
            _check_no_overlap(conn, path, rows, "subscriptions", ("account", "service"),
                              "start", "stop")
    return LoadResult(len(rows), len(rows) - existing, existing)


def _load_routes(conn: apsw.Connection, rows: list[tuple[int, dict]]) -> None:
    patterns = [row["pattern"] for _, row in rows]
    kept = conn.execute("SELECT pattern, position FROM routes ORDER BY position").fetchall()
    in_file = set(patterns)
    base = max((pos for pattern, pos in kept if pattern not in in_file), default=0) + 1
    conn.executemany(
        "INSERT INTO routes (pattern, tariff, position) VALUES (?,?,?) "
        "ON CONFLICT (pattern) DO UPDATE SET tariff = excluded.tariff, position = excluded.position",
        [(row["pattern"], row["tariff"], base + i) for i, (_, row) in enumerate(rows)],
    )


def _check_references(conn: apsw.Connection, kind: Kind, path: Path,
                      rows: list[tuple[int, dict]]) -> None:
    for column, (table, target) in kind.refs.items():
        known = {r[0] for r in conn.execute(f"SELECT DISTINCT {target} FROM {table}")}
        for line, row in rows:
            value = row[column]
            if value is not None and value not in known:
                raise _fail(path, line, column, f"unknown {target} {value!r} (load {table} first)")


def _check_no_overlap(conn: apsw.Connection, path: Path, rows: list[tuple[int, dict]],
                      table: str, group: tuple[str, ...], start: str, stop: str) -> None:
    """No two rows of the same group valid on the same day, after the load."""
    lines = {tuple(row[c] for c in group + (start,)): line for line, row in rows}
    cond = " AND ".join(f"{c} = ?" for c in group)
    for key in {tuple(row[c] for c in group) for _, row in rows}:
        spans = conn.execute(
            f"SELECT {start}, {stop} FROM {table} WHERE {cond} ORDER BY {start}", key
        ).fetchall()
        for (a_start, a_stop), (b_start, _) in zip(spans, spans[1:]):
            if a_stop is None or a_stop > b_start:
                line = lines.get(key + (b_start,)) or lines.get(key + (a_start,))
                raise _fail(path, line, start,
                            f"{' '.join(key)}: the rows from {a_start} and from {b_start} overlap")


def dump(conn: apsw.Connection, kind_name: str, decimals: int) -> Iterator[list[str]]:
    """The header row, then every row of a kind as CSV cells (loadable again)."""
    _kind(kind_name, DUMP_KINDS, "dump")
    if kind_name == "charges":
        yield ["day", "account", "service", "amount"]
        for day, account, service, amount in conn.execute(
            "SELECT day, account, service, amount FROM charges ORDER BY day, account, service, start"
        ):
            yield [day, account, service, format_minor(amount, decimals)]
        return
    kind = KINDS[kind_name]
    names = kind.names + kind.ignored
    order = "position" if kind_name == "routes" else ", ".join(kind.key)
    money = {"monthly_fee", "daily_fee"} if kind_name == "services" else set()
    yield list(names)
    for values in conn.execute(f"SELECT {', '.join(names)} FROM {kind.table} ORDER BY {order}"):
        yield [
            "" if v is None else format_minor(v, decimals) if n in money else str(v)
            for n, v in zip(names, values)
        ]


def dump_csv(conn: apsw.Connection, kind_name: str, decimals: int, out) -> int:
    """Write a kind as CSV to a text stream; return the number of data rows."""
    writer = csv.writer(out, lineterminator="\n")
    count = -1
    with db.read_transaction(conn):
        for cells in dump(conn, kind_name, decimals):
            writer.writerow(cells)
            count += 1
    return count
