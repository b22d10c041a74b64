"""mbg status and mbg explain (SPEC section 9): what rating did, and how one call was priced.

``explain_call`` walks SPEC 7 step by step with the same Reference methods and Rate
arithmetic as the rating loop, and sets the result beside the stored rows, so an operator
can answer a billing dispute line by line. If the reference data changed since the call
was rated, the recomputation may differ from the stored cost: it says so.

Bucket use depends on the calls before, so it is shown from the stored cost row (the
seconds this call took from the bucket), with the seconds the month's earlier calls (in
calldate order) took and the counter now. For a call not rated yet, the bucket is taken
as it stands now, which is what the next incremental run would do.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal, localcontext
from pathlib import Path

import apsw

from .errors import InputError
from .money import format_minor
from .rating import SELECT_CALLS_FULL, call_dict
from .rating_sql import sum_amounts
from .tariffs import Reference, billed_seconds


@dataclass
class DatasetStatus:
    path: Path
    calls: int
    new: int
    unanswered: int
    costs: int
    amount: int
    unrated: dict[str, int] = field(default_factory=dict)  # reason -> rows

    @property
    def rated(self) -> int:
        return self.calls - self.new


def dataset_status(conn: apsw.Connection, path: Path) -> DatasetStatus:
    """Counts of one dataset, read in one snapshot."""
    conn.execute("BEGIN")
    try:
        calls, new, unanswered = conn.execute(
            "SELECT count(*), coalesce(sum(is_new), 0), coalesce(sum(billsec <= 0), 0) "
            "FROM telephony_log").fetchall()[0]
        costs = conn.execute("SELECT count(*) FROM telephony_cost").fetchall()[0][0]
        amount = sum_amounts(conn, "SELECT amount FROM telephony_cost")
        unrated = dict(conn.execute(
            "SELECT reason, count(*) FROM telephony_unrated GROUP BY reason ORDER BY reason"
        ).fetchall())
    finally:
        conn.execute("COMMIT")
    return DatasetStatus(path, calls, new, unanswered, costs, amount, unrated)


def format_status(statuses: list[DatasetStatus], decimals: int) -> list[str]:
    """A table, one dataset a line, each unrated reason on an indented line below it."""
    lines = [f"{'dataset':<16}{'calls':>10}{'new':>10}{'rated':>10}{'unanswered':>12}"
             f"{'costs':>10}{'amount':>16}{'unrated':>10}"]
    for s in statuses:
        lines.append(f"{s.path.name:<16}{s.calls:>10}{s.new:>10}{s.rated:>10}{s.unanswered:>12}"
                     f"{s.costs:>10}{format_minor(s.amount, decimals):>16}"
                     f"{sum(s.unrated.values()):>10}")
        for reason, count in s.unrated.items():
            lines.append(f"  unrated: {reason:<40}{count:>10}")
    return lines


def _exact(rate, charged: int) -> str:
    """connect_fee + charged * price / 60 as an exact decimal, or to 12 places if endless."""
    with localcontext() as ctx:
        # enough digits for every digit of the fee and price, and 12 places past them
        ctx.prec = 40 + len(rate.connect_fee) + len(rate.price) + len(str(charged))
        value = Decimal(rate.connect_fee) + Decimal(charged) * Decimal(rate.price) / Decimal(60)
        text = f"{value.normalize():f}"
    whole, _, part = text.partition(".")
    return f"{whole}.{part[:12]}..." if len(part) > 12 else text


def explain_call(conn: apsw.Connection, ref: Reference, call_id: int, decimals: int,
                 rounding: str, rules=None) -> list[str]:
    """How call ``call_id`` (telephony_log.id) is priced: one line per step."""
    rows = conn.execute(SELECT_CALLS_FULL + " WHERE id = ?", (call_id,)).fetchall()
    if not rows:
        raise InputError(f"no call with id {call_id} in this dataset")
    row = rows[0]
    is_new = conn.execute("SELECT is_new FROM telephony_log WHERE id = ?", (call_id,)).fetchall()[0][0]
    log_id, calldate, src, dst, channel, dstchannel, billsec = row[:7]
    out = [f"call {log_id}: {calldate} src {src!r} dst {dst!r} channel {channel!r} "
           f"dstchannel {dstchannel!r} billsec {billsec} (source {row[7]!r}, callid {row[10]!r})",
           f"state: {'new, not rated yet' if is_new else 'rated'}"]
    stored_costs = {r[0]: r[1:] for r in conn.execute(
        "SELECT tariff, account, direction, prefix, number, seconds, bucket_seconds, amount "
        "FROM telephony_cost WHERE log_id = ?", (log_id,))}
    stored_unrated = conn.execute(
        "SELECT tariff, reason FROM telephony_unrated WHERE log_id = ? ORDER BY tariff",
        (log_id,)).fetchall()
    if billsec <= 0:
        out.append("1. unanswered (billsec 0): rated at no cost, no rows")
        return out + _stored(stored_costs, stored_unrated, decimals)

    # 1. mediation
    if rules is None:
        out.append("1. normalize: no mediation rules")
    else:
        outcome = rules.apply(call_dict(row))
        out.append(f"1. normalize: rules fired: {', '.join(outcome.fired) or 'none'}")
        for name in outcome.fired:
            out.append(f"   {name}: {rules.describe(name)}")
        if outcome.skipped:
            out.append(f"   skipped by rule {outcome.skipped}: unrated 'skipped: {outcome.skipped}'")
            return out + _stored(stored_costs, stored_unrated, decimals)
        if outcome.invalid:
            out.append(f"   {outcome.invalid}: unrated")
            return out + _stored(stored_costs, stored_unrated, decimals)
        c = outcome.call
        for name in ("src", "dst", "channel", "dstchannel", "billsec"):
            before = {"src": src, "dst": dst, "channel": channel, "dstchannel": dstchannel,
                      "billsec": billsec}[name]
            if c[name] != before:
                out.append(f"   {name}: {before!r} -> {c[name]!r}")
        src, dst, channel, dstchannel, billsec = (c["src"], c["dst"], c["channel"],
                                                  c["dstchannel"], int(c["billsec"]))

    # 2. account
    day = calldate[:10]
    account = None
    for what, number in (("src", src), ("channel", channel)):
        hit = ref.account_row(number, day)
        if hit:
            account = hit[2]
            out.append(f"2. account {account}: numbers row {number!r} -> {account}, valid from "
                       f"{hit[0]} to {hit[1] or 'open'} (by {what}, on {day})")
            break
    if account is None:
        out.append(f"2. unknown account: no numbers row for src {src!r} or channel {channel!r} "
                   f"on {day}")

    # 3. tariffs
    names: list[str] = []
    if account is not None:
        plans = ref.plan_rows(account, day)
        for start, stop, service, tariff in plans:
            out.append(f"3. plan: service {service} (from {start} to {stop or 'open'}) -> "
                       f"tariff {tariff}")
            if tariff not in names:
                names.append(tariff)
        if not plans:
            out.append(f"3. no tariff: {account} has no telephony service on {day}")
    route = ref.route_match(dstchannel)
    if route:
        out.append(f"3. route: dstchannel {dstchannel!r} matches pattern {route[0]!r} -> "
                   f"tariff {route[1]}")
        if route[1] not in names:
            names.append(route[1])
    else:
        out.append(f"3. route: no routes pattern matches dstchannel {dstchannel!r}")

    # 4-7 per tariff
    counters = {(a, t, b): s for a, t, b, s in conn.execute(
        "SELECT account, tariff, bucket, seconds FROM telephony_counter")}
    for name in names:
        out.extend(_explain_tariff(conn, ref, name, account or "", row, dst, billsec,
                                   stored_costs.get(name), counters, is_new, decimals, rounding))
    return out + _stored(stored_costs, stored_unrated, decimals)


def _explain_tariff(conn, ref, name, account, row, dst, billsec, stored, counters, is_new,
                    decimals, rounding) -> list[str]:
    tariff = ref.tariffs.get(name)
    rate = tariff.find_rate(dst) if tariff else None
    if rate is None:
        return [f"tariff {name}:", f"  4. no rate: no prefix of {dst!r} in tariff {name}"]
    out = [f"tariff {name}:",
           f"  4. prefix {rate.prefix!r} (longest prefix of {dst!r}; direction "
           f"{rate.direction!r}): price {rate.price} a minute, increments "
           f"{rate.first}/{rate.next}, connect fee {rate.connect_fee}, free seconds "
           f"{rate.free_seconds}, bucket {rate.bucket or 'none'}"]
    billed = billed_seconds(billsec, rate)  # the rating's own formula; only words added here
    if billsec <= rate.free_seconds:
        how = f"billsec {billsec} <= free seconds {rate.free_seconds}: {billed}"
    elif billsec <= rate.first:
        how = f"billsec {billsec} <= first {rate.first}: {billed}"
    else:
        how = (f"billsec {billsec} > first {rate.first}: {rate.first} + "
               f"ceil(({billsec} - {rate.first}) / {rate.next}) x {rate.next} = {billed}")
    out.append(f"  5. billed seconds: {how}")
    free = 0
    if rate.bucket is not None and billed:
        key = (account, name, rate.bucket)
        if stored is not None and not is_new:
            free = stored[5]  # bucket_seconds
            before = _bucket_before(conn, ref, rate, account, name, row)
            out.append(f"  6. bucket {rate.bucket} ({rate.bucket_size} s a month): took {free} s "
                       f"of {billed}; the month's earlier calls took {before} s; counter now "
                       f"{counters.get(key, 0)} s")
        else:
            left = max(rate.bucket_size - counters.get(key, 0), 0)
            free = min(billed, left)
            out.append(f"  6. bucket {rate.bucket} ({rate.bucket_size} s a month): {left} s left "
                       f"now, takes {free} s of {billed}")
    else:
        out.append("  6. bucket: none" if rate.bucket is None else "  6. bucket: nothing billed")
    charged = billed - free
    amount = rate.amount(charged)
    out.append(f"  7. amount: {rate.connect_fee} + {charged} x {rate.price} / 60 = "
               f"{_exact(rate, charged)} -> {format_minor(amount, decimals)} "
               f"({rounding}, {decimals} decimals)")
    if stored is not None and (stored[4], stored[5], stored[6]) != (billed, free, amount):
        out.append(f"  note: the stored cost differs ({stored[4]} s, bucket {stored[5]} s, "
                   f"{format_minor(stored[6], decimals)}): the reference data changed since "
                   f"rating; a force run re-rates the month")
    return out


def _bucket_before(conn, ref, rate, account, name, row) -> int:
    """Bucket seconds the month's calls before this one (calldate, id) took from the same
    bucket of the same account and tariff."""
    same_bucket = {p for p, (r, _) in ref.tariffs[name].rows.items() if r[8] == rate.bucket}
    total = 0
    for prefix, seconds in conn.execute(
        "SELECT c.prefix, c.bucket_seconds FROM telephony_cost c JOIN telephony_log l "
        "ON l.id = c.log_id WHERE c.account = ? AND c.tariff = ? AND c.bucket_seconds > 0 "
        "AND (l.calldate < ? OR (l.calldate = ? AND l.id < ?))",
        (account, name, row[1], row[1], row[0]),
    ):
        if prefix in same_bucket:
            total += seconds
    return total


def _stored(costs: dict, unrated: list, decimals: int) -> list[str]:
    out = ["stored:"]
    for tariff, (account, direction, prefix, number, seconds, bucket, amount) in sorted(costs.items()):
        out.append(f"  cost {tariff}: account {account!r} prefix {prefix!r} number {number!r} "
                   f"{seconds} s (bucket {bucket} s) amount {format_minor(amount, decimals)}")
    for tariff, reason in unrated:
        out.append(f"  unrated{' ' + tariff if tariff else ''}: {reason}")
    if len(out) == 1:
        out.append("  nothing")
    return out
