"""What each call is rated under (SPEC 7.2-7.4), and the Python arithmetic of 7.5-7.7.

Rating is two steps. ``resolve_calls`` does the per-call work in Python: the account of
the call, its plan tariffs and route tariff, and for each of them the rate of the longest
prefix of the called number. The answer is a *plan*: the tuple of (tariff, role, rate)
under which the call is priced, numbered once per distinct (longest union prefix, plan
tariffs, route tariff) in the ``PlanRegistry`` of the Reference. So each call comes out
as one short row ``(log_id, account, number, billsec, plan)``, however many tariffs it has.

The bucket seconds (7.6) depend on the calls before, so ``use_buckets`` takes them in
Python inside the write transaction. The rest of the per-tariff arithmetic (billed
seconds, amount) is done for all rows of a batch at once by SQLite (mbg.rating_sql), or
here by ``cost_rows``, the plain-Python definition kept for what SQLite cannot do exactly
(rates or calls so large that the integer arithmetic would not fit in 64 bits; see
rating_sql.rate_fits). Both give the same rows: tests rate the same calls both ways.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from .tariffs import PREFIX_HEAD, Rate, Reference, billed_seconds

_MISSING = object()


@dataclass
class Plan:
    """The tariffs one call is priced under: (tariff, role, Rate.hot) in rating order,
    the tariffs of the call that have no rate for its number, and (position in rated,
    tariff, bucket, bucket size, Rate) of the rates that draw on a bucket. Plans drawing
    on the same (tariff, bucket) pairs share a ``bucket_group`` number."""

    plan_id: int
    rated: tuple[tuple[str, str, tuple], ...]
    missing: tuple[str, ...]
    buckets: tuple[tuple[int, str, str, int, Rate], ...]
    bucket_group: int = -1


@dataclass
class PlanRegistry:
    """Every plan made for one Reference, by number (the plan column of a resolved call).

    Plans are found per call through a *table* per (plan tariffs, route tariff): longest
    union prefix (None: no prefix matches) -> (plan number, None) for a plain plan, or
    (plan number, Plan) when the call needs more (a tariff without rate, a bucket, or
    nothing to price). Tables hold only the prefixes met, so memory grows with the plans
    actually used, not with prefixes x tariff combinations.
    """

    reference: Reference
    plans: list[Plan] = field(default_factory=list)
    tables: dict = field(default_factory=dict)  # plan tariffs -> route tariff -> table
    bucket_groups: dict = field(default_factory=dict)  # ((tariff, bucket), ...) -> number

    def by_route(self, names: tuple[str, ...]) -> dict:
        """route tariff -> table, of the plan tariffs ``names`` (tables are made by table)."""
        return self.tables.setdefault(names, {})

    def table(self, route: str | None, names: tuple[str, ...]) -> dict:
        """The table of a route tariff and plan tariffs (empty the first time)."""
        return self.tables.setdefault(names, {}).setdefault(route, {})

    def plan_for(self, prefix: str | None, names: tuple[str, ...], route: str | None) -> tuple:
        """The entry of plan tariffs ``names`` plus ``route`` for numbers whose longest
        union prefix is ``prefix``. A plan tariff that is also the route tariff is rated
        once, as the plan."""
        found = self.reference.rates_at(prefix)
        all_names = names + (route,) if route is not None and route not in names else names
        rated, missing = [], []
        for name in all_names:
            hot = found[name]
            if hot is None:
                missing.append(name)
            else:
                rated.append((name, "route" if name == route and name not in names else "plan",
                              hot))
        buckets = tuple((pos, name, hot[10].bucket, hot[10].bucket_size, hot[10])
                        for pos, (name, _, hot) in enumerate(rated) if hot[3] is not None)
        group = tuple((name, bucket) for _, name, bucket, _, _ in buckets)
        plan = Plan(len(self.plans), tuple(rated), tuple(missing), buckets,
                    self.bucket_groups.setdefault(group, len(self.bucket_groups)))
        self.plans.append(plan)
        entry = (plan.plan_id, plan if missing or buckets or not rated else None)
        self.tables[names][route][prefix] = entry
        return entry


def plan_registry(ref: Reference) -> PlanRegistry:
    """The registry of a Reference: plans depend on nothing else, so every run with the
    same Reference shares them."""
    if ref.plan_registry is None:
        ref.plan_registry = PlanRegistry(ref)
    return ref.plan_registry


def _month_bounds(calldate: str) -> tuple[str, str]:
    year, month = int(calldate[:4]), int(calldate[5:7])
    after = f"{year + 1:04d}-01-01" if month == 12 else f"{year:04d}-{month + 1:02d}-01"
    return f"{calldate[:7]}-01", after


def resolve_calls(rows: Iterable[tuple], ref: Reference, unrated: list, caches: dict,
                  tally: list[int], with_buckets: list[int]) -> list[tuple]:
    """Calls (id, calldate, src, dst, channel, dstchannel, billsec), in rating order, as
    rows (log_id, account, number, billsec, plan) of the calls with something to price;
    plan numbers are those of plan_registry(ref).

    Appends the unrated rows ('unknown account', 'no tariff', 'no rate') to ``unrated``
    and the positions in the result of the calls whose plan has a bucket to
    ``with_buckets``, and adds unanswered calls to tally[0]. A billsec below 0 marks a
    call settled by mediation: neither rated nor unanswered. ``caches["spent"]``, when
    given (rating.py gives it inside one write transaction only), holds the (account,
    bucket group) whose buckets use_buckets found used up: their calls need no lookup.

    This is the hot loop, written for speed: the month's day-independent answers first
    (MonthView; for a number with the same account and plan tariffs all month, one lookup
    gives both and the account's plan tables), a cache per (number, channel, day) or
    (account, day) for the numbers and plans that change during the month, the longest
    prefix for all tariffs of a call at once from one lookup of the number's first digits
    (Reference.head_entry), and one table lookup for its plan.
    """
    accounts = caches.setdefault("accounts", {})
    day_plans = caches.setdefault("plans", {})
    views = caches.setdefault("views", {})
    spent = caches.get("spent", ())
    route_cache = ref.route_cache
    route_tariff = ref.route_tariff
    head_of = slice(PREFIX_HEAD)  # dst[head_of]: dst[:PREFIX_HEAD] makes a slice a call
    heads = ref.heads
    head_entry = ref.head_entry
    prefixes = ref.prefixes
    account_for = ref.account_for
    registry = plan_registry(ref)
    by_route = registry.by_route
    plan_for = registry.plan_for
    out: list[tuple] = []
    append = out.append
    lo = hi = ""
    month_numbers: dict = {}
    month_plans: dict = {}
    month_known: dict = {}
    unanswered = 0
    for log_id, calldate, src, dst, channel, dstchannel, billsec in rows:
        if billsec <= 0:
            if billsec == 0:
                unanswered += 1
            continue
        if not lo <= calldate < hi:
            lo, hi = _month_bounds(calldate)
            view = views.get(lo)
            if view is None:
                view = views[lo] = _MonthCache(ref.month_view(lo, hi), by_route)
            month_numbers, month_plans, month_known = view.numbers, view.plans, view.known
        known = month_known.get(src)
        if known is not None:  # the common case: the same account and plans all month
            account, names, tables = known
        else:
            # SPEC 7.2: the account of src on the call date, else of the channel
            account = month_numbers.get(src)
            if not account:
                by_src = account == ""  # src's account changes during the month
                if not by_src:  # src has no account this month: the channel's, if any
                    account = month_numbers.get(channel)
                if account == "":  # on the call's day; caches are small (changing numbers)
                    day = calldate[:10]
                    key = (src if by_src else "", channel, day)
                    account = accounts.get(key, _MISSING)
                    if account is _MISSING:
                        found = account_for(src, day) if by_src else None
                        account = accounts[key] = found or account_for(channel, day)
            # SPEC 7.3: the plan tariffs of the account that day, plus the route tariff
            if account is None:
                unrated.append((log_id, "", "unknown account"))
                names: tuple[str, ...] = ()
                account = ""
            else:
                names = month_plans.get(account, ())
                if names is None:  # the plans change during the month
                    day = calldate[:10]
                    names = day_plans.get((account, day))
                    if names is None:
                        names = day_plans[(account, day)] = ref.plan_tariffs(account, day)
                if not names:
                    unrated.append((log_id, "", "no tariff"))
            tables = by_route(names)
        route = route_cache.get(dstchannel, _MISSING)
        if route is _MISSING:
            route = route_tariff(dstchannel)
        table = tables.get(route)
        if table is None:
            if not names and route is None:
                continue
            table = registry.table(route, names)
        # SPEC 7.4: the longest prefix, for every tariff of the call at once (see
        # Reference.rates_at), and with it the plan (PlanRegistry). As
        # Reference.longest_prefix: the entry of the number's head, and a try for each
        # longer prefix starting with it.
        found = heads.get(dst[head_of])
        if found is None:
            found = head_entry(dst[head_of])
        prefix, longer = found
        if longer:  # most heads start no longer prefix
            for cut in longer:
                if dst[cut] in prefixes:
                    prefix = dst[cut]
                    break
        entry = table.get(prefix)
        if entry is None:
            entry = plan_for(prefix, names, route)
        plan_id, plan = entry
        if plan is None:  # the common case: tariffs with rates and no bucket
            append((log_id, account, dst, billsec, plan_id))
            continue
        for name in plan.missing:
            unrated.append((log_id, name, "no rate"))
        if plan.rated:
            if plan.buckets and (account, plan.bucket_group) not in spent:
                with_buckets.append(len(out))
            append((log_id, account, dst, billsec, plan_id))
    tally[0] += unanswered
    return out


class _MonthCache:
    """A MonthView and, for each number with one account all month whose plan tariffs do
    not change during it either, (account, plan tariffs, PlanRegistry.by_route of them)."""

    def __init__(self, view, by_route) -> None:
        self.numbers = view.numbers
        self.plans = view.plans
        self.known = {}
        for number, account in view.numbers.items():
            names = view.plans.get(account) if account else None
            if names:
                self.known[number] = (account, names, by_route(names))


def use_buckets(calls: list[tuple], with_buckets: list[int], registry: PlanRegistry,
                counters: dict[tuple[str, str, str], int], spent: set | None = None
                ) -> list[tuple[int, int, int]]:
    """SPEC 7.6 for the calls at positions ``with_buckets`` of ``calls``, in order: each
    takes what its bucket has left, up to its billed seconds. Advances ``counters``
    ((account, tariff, bucket) -> seconds used) and returns (position, position of the
    rate in its plan, seconds) where a call takes some. A used-up bucket costs one lookup.

    ``spent``: adds the (account, Plan.bucket_group) of each call after which every bucket
    of its plan is used up. Counters only grow inside a write transaction, so resolve_calls
    may skip such calls for the rest of it (caches["spent"])."""
    plans = registry.plans
    taken = []
    for i in with_buckets:
        _, account, _, billsec, plan_id = calls[i]
        plan = plans[plan_id]
        some_left = False
        for pos, name, bucket, size, rate in plan.buckets:
            key = (account, name, bucket)
            used = counters.get(key, 0)
            left = size - used
            if left <= 0:
                continue
            billed = billed_seconds(billsec, rate)
            if billed:
                free = billed if billed < left else left
                counters[key] = used + free
                taken.append((i, pos, free))
                some_left = some_left or free < left
            else:
                some_left = True
        if not some_left and spent is not None:
            spent.add((account, plan.bucket_group))
    return taken


def cost_rows(calls: list[tuple], registry: PlanRegistry, taken: list[tuple[int, int, int]],
              tally: list[int]) -> Iterator[tuple]:
    """The telephony_cost rows of resolved calls, in order: SPEC 7.5 and 7.7 in Python,
    with the bucket seconds ``taken`` (use_buckets). Adds to tally[0] the rows and to
    tally[1] their amount. A generator, so executemany writes each row as it is made."""
    plans = registry.plans
    free_of = {(i, pos): free for i, pos, free in taken}
    written = total = 0
    for i, (log_id, account, dst, billsec, plan_id) in enumerate(calls):
        for pos, (name, role, hot) in enumerate(plans[plan_id].rated):
            rate = hot[10]
            billed = billed_seconds(billsec, rate)
            free = free_of.get((i, pos), 0)
            amount = rate.amount(billed - free)
            written += 1
            total += amount
            yield (log_id, name, account, rate.direction, rate.prefix, dst, billed, free, amount,
                   role)
    tally[0] += written
    tally[1] += total
