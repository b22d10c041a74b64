"""Reference data for rating, loaded once per run into plain dicts (SPEC sections 5 and 7).

The rating loop asks four questions per call; each is answered here from memory, never
by a query: which account has this number on this day (``account_for``), which tariffs
the account has that day (``plan_tariffs``), which route tariff the outgoing channel
takes (``route_tariff``), and which rate of a tariff has the longest prefix of the called
number (``find_rate``). Then ``billed_seconds`` and ``Rate.amount`` do the arithmetic.

Money is exact: a rate's price and connect fee are decimal strings turned into integer
numerators over one power of ten, so that the amount of a call, in minor units, is the
fraction ``(fee_n + c * price_n) / denominator``, rounded once by the settings' mode.
That equals the Decimal definition ``connect_fee + c * price / 60`` rounded to
``money_decimals`` (tests check both ways).
"""

from __future__ import annotations

import functools

import fnmatch
from dataclasses import dataclass, field
from decimal import Decimal

import apsw

from .errors import InputError

ROUNDERS = ("half-up", "half-even", "up", "down")
ROUTE_CACHE_LIMIT = 100_000
# The longest prefix of a called number is found from its first PREFIX_HEAD characters
# (Reference.head_entry): one lookup, plus a try for each length of the prefixes longer
# than that which start with them. 5: the most digits whose heads all fit the cache
# (ROUTE_CACHE_LIMIT); fewer leave more heads with longer prefixes to try.
PREFIX_HEAD = 5


def round_fraction(numerator: int, denominator: int, rounding: str) -> int:
    """numerator / denominator (both >= 0) rounded to an integer by the named mode."""
    q, r = divmod(numerator, denominator)
    if r == 0 or rounding == "down":
        return q
    if rounding == "up":
        return q + 1
    twice = 2 * r
    if twice > denominator:
        return q + 1
    if twice < denominator:
        return q
    if rounding == "half-up":
        return q + 1
    return q + (q & 1)  # half-even: to the even neighbour


@functools.lru_cache(maxsize=4096)  # prices repeat across a tariff's thousands of rates
def _scaled(text: str) -> tuple[int, int]:
    """'0.4500' -> (4500, 4): an exact decimal as an integer over 10**places.

    Built from the digits themselves: Decimal arithmetic would round to its context's
    28 significant digits."""
    sign, digits, exponent = Decimal(text).as_tuple()
    number = int("".join(map(str, digits)) or "0") * (-1 if sign else 1)
    if exponent >= 0:
        return number * 10**exponent, 0
    return number, -exponent


_SHARED: dict = {}  # value -> one object for it (ints and names repeat across rates)


class Rate:
    """One row of tariffs, ready for arithmetic."""

    __slots__ = ("tariff", "prefix", "direction", "price", "first", "next", "connect_fee",
                 "free_seconds", "bucket", "bucket_size", "fee_n", "price_n", "denominator",
                 "rounding", "hot")

    def __init__(self, tariff: str, prefix: str, direction: str, price: str, first: int,
                 next_: int, connect_fee: str, free_seconds: int, bucket: str | None,
                 decimals: int, rounding: str, bucket_size: int = 0) -> None:
        self.tariff, self.prefix, self.direction = tariff, prefix, direction
        self.price, self.first, self.next = price, first, next_
        self.connect_fee, self.free_seconds, self.bucket = connect_fee, free_seconds, bucket
        self.bucket_size = bucket_size
        price_int, price_places = _scaled(price)
        fee_int, fee_places = _scaled(connect_fee)
        places = max(price_places, fee_places)
        minor = 10**decimals
        # amount in minor units = (fee * 60 + c * price) * 10**decimals / 60
        self.fee_n = fee_int * 10 ** (places - fee_places) * 60 * minor
        self.price_n = price_int * 10 ** (places - price_places) * minor
        self.denominator = 60 * 10**places
        self.rounding = rounding
        self.hot: tuple = ()
        self._make_hot()

    def _make_hot(self) -> None:
        """The rate as one tuple for the rating loop (unpacking beats attribute loads).

        For down, up and half-up the one rounding is a floor division:
        round(n / d) = (n * m + add) // (d * m), with (m, add) = (1, 0), (1, d - 1), (2, d).
        Half-even needs a branch: its tuple has no divisor and the loop calls amount().
        """
        d, rounding = self.denominator, self.rounding
        m, add = (2, d) if rounding == "half-up" else (1, d - 1) if rounding == "up" else (1, 0)
        divisor = d * m if rounding != "half-even" else 0
        # Equal values share one object: the loop touches fewer cache lines per rate.
        share = _SHARED.setdefault
        fee, price = self.fee_n * m + add, self.price_n * m
        self.hot = (share(self.free_seconds, self.free_seconds), share(self.first, self.first),
                    share(self.next, self.next), share(self.bucket, self.bucket),
                    share(self.bucket_size, self.bucket_size),
                    share(self.direction, self.direction), self.prefix, share(fee, fee),
                    share(price, price), share(divisor, divisor), self)

    def amount(self, charged_seconds: int) -> int:
        """connect_fee + charged_seconds * price / 60, in minor units, rounded once."""
        return round_fraction(self.fee_n + charged_seconds * self.price_n, self.denominator,
                              self.rounding)



def billed_seconds(billsec: int, rate: Rate) -> int:
    """SPEC 7.5: free seconds, then the first increment, then whole next increments."""
    if billsec <= rate.free_seconds:
        return 0
    first = rate.first
    if billsec <= first:
        return first
    step = rate.next
    return first + -(-(billsec - first) // step) * step


@dataclass
class Tariff:
    """One tariff's rates. A Rate is made the first time it is used: a run that rates a
    few calls (cron, every 30 s) makes a few, not the 20,000 of a large tariff."""

    name: str
    decimals: int
    rounding: str
    # prefix -> (its tariffs row as read, the size of the bucket it names or 0)
    rows: dict[str, tuple] = field(default_factory=dict)
    lengths: tuple[int, ...] = ()  # prefix lengths present, longest first
    rates: dict[str, Rate] = field(default_factory=dict, repr=False)  # made so far

    def rate(self, prefix: str) -> Rate:
        """The Rate of a prefix of this tariff."""
        rate = self.rates.get(prefix)
        if rate is None:
            row, bucket_size = self.rows[prefix]
            rate = self.rates[prefix] = Rate(*row, decimals=self.decimals,
                                             rounding=self.rounding, bucket_size=bucket_size)
        return rate

    def find_rate(self, number: str) -> Rate | None:
        """The rate of the longest prefix of ``number`` ('' matches every number)."""
        rows = self.rows
        for k in self.lengths:
            # number[:k] for k past the end is the whole number: still a prefix of it
            prefix = number[:k]
            if prefix in rows:
                return self.rate(prefix)
        return None


class _LazyRates(dict):
    """tariff -> Rate.hot of its rate (None: no rate) for one union prefix, each found the
    first time it is asked for."""

    def __init__(self, tariffs: dict[str, Tariff], prefix: str | None) -> None:
        super().__init__()
        self.tariffs, self.prefix = tariffs, prefix

    def __missing__(self, name: str) -> Rate | None:
        tariff = self.tariffs.get(name)
        rate = tariff.find_rate(self.prefix) if tariff is not None and self.prefix is not None \
            else None
        hot = self[name] = rate.hot if rate is not None else None
        return hot


@dataclass
class MonthView:
    """Answers that hold for a whole month, so the rating loop can skip the day.

    numbers: number -> its account all month, or '' when it changes during the month
    (a number absent has no account any day of it). plans: account -> its plan tariffs
    all month, or None when they change during it (absent: no plan all month).
    """

    first: str  # 'YYYY-MM-01'
    after: str  # the next month's first day
    numbers: dict[str, str]
    plans: dict[str, tuple[str, ...] | None]


def _covers(start: str, stop: str | None, first: str, after: str) -> bool:
    return start <= first and (stop is None or stop >= after)


def _overlaps(start: str, stop: str | None, first: str, after: str) -> bool:
    return start < after and (stop is None or stop > first)


@dataclass
class Reference:
    """Everything rating needs from billing.db, for one run."""

    tariffs: dict[str, Tariff]
    numbers: dict[str, list[tuple[str, str | None, str]]]  # number -> [(from, to, account)]
    # account -> [(start, stop, service, tariff)] of its telephony subscriptions
    plans: dict[str, list[tuple[str, str | None, str, str]]]
    routes: list[tuple[str, str]]  # (pattern, tariff), first match wins
    buckets: dict[tuple[str, str], int]  # (tariff, bucket) -> seconds per month
    route_cache: dict[str, str | None] = field(default_factory=dict, repr=False)
    # every prefix of every tariff, and the lengths present, longest first
    prefixes: set[str] = field(default_factory=set)
    prefix_lengths: tuple[int, ...] = ()
    # a number's first PREFIX_HEAD characters -> head_entry, for the heads met
    heads: dict[str, tuple[str | None, tuple[slice, ...]]] = field(default_factory=dict,
                                                                    repr=False)
    # a head -> slices of the lengths of the prefixes longer than it that start with it,
    # longest first (heads without such prefixes are absent)
    deeper: dict[str, tuple[slice, ...]] = field(default_factory=dict, repr=False)
    # union prefix (None: no prefix matches) -> its rates (rates_at), made on demand
    resolved: dict[str | None, dict[str, tuple | None]] = field(default_factory=dict, repr=False)
    # the plans made from these rates by rating (rating_calls.plan_registry)
    plan_registry: object = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.prefixes = {p for t in self.tariffs.values() for p in t.rows}
        self.prefix_lengths = tuple(sorted({len(p) for p in self.prefixes}, reverse=True))
        longer: dict[str, set[int]] = {}
        for prefix in self.prefixes:
            if len(prefix) > PREFIX_HEAD:
                longer.setdefault(prefix[:PREFIX_HEAD], set()).add(len(prefix))
        self.deeper = {head: tuple(slice(k) for k in sorted(lengths, reverse=True))
                       for head, lengths in longer.items()}

    def head_entry(self, head: str) -> tuple[str | None, tuple[slice, ...]]:
        """For the numbers whose first PREFIX_HEAD characters are ``head`` (or which are
        ``head``, when shorter): their longest prefix of at most PREFIX_HEAD characters
        (None: none), and the slices to try, longest first, for a longer one (a prefix
        longer than the head that a number starts with starts with its head). Remembered
        in ``heads``, at most ROUTE_CACHE_LIMIT of them."""
        if len(self.heads) >= ROUTE_CACHE_LIMIT:
            self.heads.clear()  # refills with the heads in use
        short = next((head[:k] for k in self.prefix_lengths
                      if k <= PREFIX_HEAD and head[:k] in self.prefixes), None)
        entry = self.heads[head] = (short, self.deeper.get(head, ()))
        return entry

    def longest_prefix(self, number: str) -> str | None:
        """The longest prefix of ``number`` among all tariffs' prefixes (None: none), as
        the rating loop finds it (inline, rating_calls.resolve_calls)."""
        head = number[:PREFIX_HEAD]
        short, longer = self.heads.get(head) or self.head_entry(head)
        for cut in longer:
            if number[cut] in self.prefixes:
                return number[cut]
        return short

    def rates_at(self, prefix: str | None) -> dict[str, tuple | None]:
        """A dict tariff -> Rate.hot (None: no rate) for the numbers whose longest prefix
        among all tariffs' prefixes is ``prefix`` (None: no prefix matches), filled on
        demand. So one walk over the union of all prefixes serves every tariff of a call:
        if q is the longest prefix of the number among all tariffs' prefixes, then a
        tariff's longest prefix of the number is its longest prefix of q."""
        rates = self.resolved.get(prefix)
        if rates is None:
            rates = self.resolved[prefix] = _LazyRates(self.tariffs, prefix)
        return rates

    def account_row(self, number: str, day: str) -> tuple[str, str | None, str] | None:
        """The numbers row (valid_from, valid_to, account) of ``number`` valid on ``day``."""
        for row in self.numbers.get(number, ()):
            if row[0] <= day and (row[1] is None or day < row[1]):
                return row
        return None

    def account_for(self, number: str, day: str) -> str | None:
        row = self.account_row(number, day)
        return row[2] if row else None

    def plan_rows(self, account: str, day: str) -> list[tuple[str, str | None, str, str]]:
        """The account's subscriptions to telephony services active on ``day``."""
        return [p for p in self.plans.get(account, ())
                if p[0] <= day and (p[1] is None or day < p[1])]

    def plan_tariffs(self, account: str, day: str) -> tuple[str, ...]:
        """The distinct tariffs of those subscriptions, in (service, start) order."""
        names: list[str] = []
        for p in self.plan_rows(account, day):
            if p[3] not in names:
                names.append(p[3])
        return tuple(names)

    def month_view(self, first: str, after: str) -> MonthView:
        """The day-independent numbers and plans of the month [first, after)."""
        numbers: dict[str, str] = {}
        for number, rows in self.numbers.items():
            inside = [r for r in rows if _overlaps(r[0], r[1], first, after)]
            if inside:
                whole = len(inside) == 1 and _covers(inside[0][0], inside[0][1], first, after)
                numbers[number] = inside[0][2] if whole else ""
        plans: dict[str, tuple[str, ...] | None] = {}
        for account, rows in self.plans.items():
            inside = [r for r in rows if _overlaps(r[0], r[1], first, after)]
            if inside:
                whole = all(_covers(r[0], r[1], first, after) for r in inside)
                plans[account] = self.plan_tariffs(account, first) if whole else None
        return MonthView(first, after, numbers, plans)

    def route_tariff(self, dstchannel: str) -> str | None:
        """The tariff of the first route whose glob pattern matches the outgoing channel."""
        cache = self.route_cache
        if dstchannel in cache:
            return cache[dstchannel]
        if len(cache) >= ROUTE_CACHE_LIMIT:  # Asterisk names a channel per call
            cache.clear()
        found = self.route_match(dstchannel)
        cache[dstchannel] = found[1] if found else None
        return cache[dstchannel]

    def route_match(self, dstchannel: str) -> tuple[str, str] | None:
        for pattern, tariff in self.routes:
            if fnmatch.fnmatchcase(dstchannel, pattern):
                return pattern, tariff
        return None


def load_reference(conn: apsw.Connection, decimals: int, rounding: str) -> Reference:
    """Read billing.db into memory. A rate naming a bucket its tariff lacks is an InputError."""
    if rounding not in ROUNDERS:
        raise InputError(f"unknown rounding {rounding!r}")
    conn.execute("BEGIN")
    try:
        buckets = {(t, b): s for t, b, s in conn.execute("SELECT tariff, bucket, seconds FROM buckets")}
        tariffs: dict[str, Tariff] = {}
        for row in conn.execute(
            "SELECT tariff, prefix, direction, price, first, next, connect_fee, free_seconds, "
            "bucket FROM tariffs ORDER BY tariff, prefix"
        ):
            tariff, prefix, bucket = row[0], row[1], row[8]
            size = 0
            if bucket is not None:
                size = buckets.get((tariff, bucket))
                if size is None:
                    raise InputError(
                        f"tariff {tariff!r}: the rate of prefix {prefix!r} names bucket "
                        f"{bucket!r}, which the tariff does not define (mbg load buckets)"
                    )
            found = tariffs.get(tariff)
            if found is None:
                found = tariffs[tariff] = Tariff(tariff, decimals, rounding)
            found.rows[prefix] = (row, size)
        for tariff in tariffs.values():
            tariff.lengths = tuple(sorted({len(p) for p in tariff.rows}, reverse=True))
        numbers: dict[str, list] = {}
        for number, account, valid_from, valid_to in conn.execute(
            "SELECT number, account, valid_from, valid_to FROM numbers ORDER BY number, valid_from"
        ):
            numbers.setdefault(number, []).append((valid_from, valid_to, account))
        plans: dict[str, list] = {}
        for account, start, stop, service, tariff in conn.execute(
            "SELECT s.account, s.start, s.stop, s.service, v.tariff FROM subscriptions s "
            "JOIN services v ON v.service = s.service WHERE v.tariff IS NOT NULL "
            "ORDER BY s.account, s.service, s.start"
        ):
            plans.setdefault(account, []).append((start, stop, service, tariff))
        routes = conn.execute("SELECT pattern, tariff FROM routes ORDER BY position").fetchall()
    finally:
        conn.execute("COMMIT")
    return Reference(tariffs, numbers, plans, [tuple(r) for r in routes], buckets)
