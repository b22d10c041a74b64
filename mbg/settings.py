"""Settings from $MBGROOT/etc/mbg.toml (SPEC section 3.1), validated strictly.

Every key is optional. An unknown key or a bad value is a SettingsError naming the key,
so a typo in the file is found at once instead of silently billing by the defaults.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from .errors import SettingsError
from .money import ROUNDING_MODES

# The order in which the tacacs parser looks for the calling and called numbers
# (SPEC 6.1). Names are attributes; 'rem_addr.ani', 'rem_addr.dnis' and 'user' are columns.
DEFAULT_TACACS_SRC = ("clid", "calling-number", "rem_addr.ani")
DEFAULT_TACACS_DST = ("dnis", "called-number", "rem_addr.dnis", "user")

_OFFSET = re.compile(r"([+-])([0-9]{2}):([0-9]{2})")


@dataclass(frozen=True)
class Settings:
    timezone: dt.tzinfo
    timezone_name: str
    money_decimals: int = 2
    rounding: str = "half-up"
    tacacs_zones: dict[str, dt.tzinfo] = field(default_factory=dict)
    tacacs_src: tuple[str, ...] = DEFAULT_TACACS_SRC
    tacacs_dst: tuple[str, ...] = DEFAULT_TACACS_DST


def system_timezone() -> tuple[dt.tzinfo, str]:
    """The machine's zone: $TZ, else /etc/localtime, else UTC."""
    name = os.environ.get("TZ", "").lstrip(":")
    if name:
        try:
            return ZoneInfo(name), name
        except (ZoneInfoNotFoundError, ValueError):
            pass
    try:
        with open("/etc/localtime", "rb") as f:
            return ZoneInfo.from_file(f, key="localtime"), "localtime"
    except OSError:
        return dt.timezone.utc, "UTC"


def parse_timezone(name: str, key: str = "timezone") -> dt.tzinfo:
    """A zone database name ('Europe/Moscow') or a fixed offset ('+03:00')."""
    if not isinstance(name, str) or not name:
        raise SettingsError(f"{key}: expected a time zone name such as Europe/Moscow")
    m = _OFFSET.fullmatch(name)
    if m:
        sign = -1 if m.group(1) == "-" else 1
        return dt.timezone(sign * dt.timedelta(hours=int(m.group(2)), minutes=int(m.group(3))))
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise SettingsError(f"{key}: unknown time zone {name!r}") from None


def default_settings() -> Settings:
    zone, name = system_timezone()
    return Settings(timezone=zone, timezone_name=name)


def load_settings(path: Path) -> Settings:
    """Read mbg.toml at ``path``; a missing file gives the defaults."""
    try:
        with open(path, "rb") as f:
            data = tomllib.load(f)
    except FileNotFoundError:
        return default_settings()
    except tomllib.TOMLDecodeError as e:
        raise SettingsError(f"{path}: {e}") from None
    return settings_from_dict(data, str(path))


def settings_from_dict(data: dict, where: str = "mbg.toml") -> Settings:
    known = {"timezone", "money_decimals", "rounding", "tacacs"}
    for key in data:
        if key not in known:
            raise SettingsError(f"{where}: unknown key {key!r}")
    zone, zone_name = system_timezone()
    if "timezone" in data:
        zone_name = data["timezone"]
        zone = parse_timezone(zone_name, f"{where}: timezone")
    decimals = data.get("money_decimals", 2)
    if type(decimals) is not int or not 0 <= decimals <= 6:
        raise SettingsError(f"{where}: money_decimals: expected a whole number from 0 to 6")
    rounding = data.get("rounding", "half-up")
    if rounding not in ROUNDING_MODES:
        raise SettingsError(
            f"{where}: rounding: expected one of {', '.join(ROUNDING_MODES)}, not {rounding!r}"
        )
    tacacs = data.get("tacacs", {})
    if not isinstance(tacacs, dict):
        raise SettingsError(f"{where}: tacacs: expected a table")
    for key in tacacs:
        if key not in {"zones", "src", "dst"}:
            raise SettingsError(f"{where}: unknown key 'tacacs.{key}'")
    zones_in = tacacs.get("zones", {})
    if not isinstance(zones_in, dict):
        raise SettingsError(f"{where}: tacacs.zones: expected a table of NAME = \"+HH:MM\"")
    zones = {
        abbr: parse_timezone(value, f"{where}: tacacs.zones.{abbr}")
        for abbr, value in zones_in.items()
    }
    src = _name_list(tacacs, "src", DEFAULT_TACACS_SRC, where)
    dst = _name_list(tacacs, "dst", DEFAULT_TACACS_DST, where)
    return Settings(zone, zone_name, decimals, rounding, zones, src, dst)


def _name_list(table: dict, key: str, default: tuple[str, ...], where: str) -> tuple[str, ...]:
    value = table.get(key, default)
    if not isinstance(value, (list, tuple)) or not value or not all(
        isinstance(v, str) and v for v in value
    ):
        raise SettingsError(f"{where}: tacacs.{key}: expected a list of attribute names")
    return tuple(value)
