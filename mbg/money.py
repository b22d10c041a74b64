"""Money: decimal strings in, Decimal or integer minor units inside, never a float.

One helper module for every money conversion, so that the rules live in one place.
"""

from __future__ import annotations

import re
from decimal import ROUND_DOWN, ROUND_HALF_EVEN, ROUND_HALF_UP, ROUND_UP, Decimal

from .errors import InputError

ROUNDING_MODES = {
    "half-up": ROUND_HALF_UP,
    "half-even": ROUND_HALF_EVEN,
    "up": ROUND_UP,  # away from zero
    "down": ROUND_DOWN,  # towards zero
}

_DECIMAL = re.compile(r"-?[0-9]+(\.[0-9]+)?")


def parse_decimal(text: str, what: str = "amount") -> Decimal:
    """A decimal string such as '0.45' or '1200'; no exponents, no spaces, no floats."""
    if not isinstance(text, str) or not _DECIMAL.fullmatch(text):
        raise InputError(f"bad {what} {text!r}: expected a decimal number like 12.34")
    return Decimal(text)


def to_minor(text: str, decimals: int, what: str = "amount") -> int:
    """A decimal string as an exact count of minor units ('299.99', 2 -> 29999).

    More digits than the currency has is an error, not a silent rounding.
    """
    value = parse_decimal(text, what) * (10**decimals)
    if value != value.to_integral_value():
        raise InputError(f"bad {what} {text!r}: more than {decimals} decimal places")
    return int(value)


def format_minor(amount: int, decimals: int) -> str:
    """Minor units as a decimal string: (29999, 2) -> '299.99', (-5, 2) -> '-0.05'."""
    if decimals == 0:
        return str(amount)
    sign = "-" if amount < 0 else ""
    whole, part = divmod(abs(amount), 10**decimals)
    return f"{sign}{whole}.{part:0{decimals}d}"


def round_to_minor(value: Decimal, decimals: int, rounding: str) -> int:
    """Round an exact amount in major units to minor units, once, by the named mode."""
    minor = value.scaleb(decimals).quantize(Decimal(1), rounding=ROUNDING_MODES[rounding])
    return int(minor)
