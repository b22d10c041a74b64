"""tac_plus accounting file, Cisco voice gateways (SPEC 6.1, FORMATS.md section 1).

``timestamp TAB NAS TAB user TAB port TAB rem_addr TAB start|stop|update TAB attr=value ...``

``TacacsParser.parse_record`` reads one record (a line, or a line joined with its
continuation lines by ``\\n``); ``TacacsLineAssembler`` (mbg.formats.tacacs_lines) is
the LineParser that joins continuation lines and infers the year of year-less timestamps.
The ordinary line goes through a fast path (mbg.formats.tacacs_avs) that gives what
``parse_general`` gives; pipe mode feeds whole blocks of lines
(``TacacsLineAssembler.feed_block``), and the ordinary lines of a block are parsed in one
loop (mbg.formats.tacacs_block) with the same result.

Rules and the decisions taken where SPEC and FORMATS are silent or INFERRED:
- Calls are ``stop`` records with an ``h323-call-type`` attribute or ``service=connection``
  and ``protocol=h323``. ``start``, ``update``, ``unknown`` records and other services are
  ignored; another record type is rejected.
- Attributes: split on the first ``=`` or ``*``; the first value of a repeated name is the
  one used; ``extra`` keeps every value (a list when the name repeats).
- Every leg is its own row: ``callid`` = conf id (``h323-conf-id``, else
  ``h323-incoming-conf-id``) + ``/origin/type``; '' when the record has no conf id.
- ``source`` = ``h323-gw-id``, else the NAS column (then ``extra["nas"]`` keeps the NAS).
  The port column is ``channel``, or ``dstchannel`` on an ``originate`` leg.
- ``calldate`` = ``h323-setup-time`` in the billing zone. A ``*`` setup time (router
  clock never set), one in a zone abbreviation that is neither in ``[tacacs.zones]`` nor
  known (UTC, GMT, zone database names), or none at all: ``start_time`` (UTC epoch), else
  the line timestamp minus ``duration``, taken as a wall time of the billing zone (the
  tac_plus host's clock); ``extra["clock"]`` says ``unset``, ``unknown zone X`` or
  ``missing``, and ``extra["calldate_from"]`` which fallback was used. Durations are
  still the differences of the h323 times. A ``.`` time is used as it is, with
  ``"clock": "unsynchronised"``.
- A zone name of the zone database given without ``/`` (EET, CET, WET, MET, EST) is an
  abbreviation as a router prints it: its standard offset, never DST (a router prints
  EEST in summer; add such names to ``[tacacs.zones]``). ``[tacacs.zones]`` entries and
  names with ``/`` (Europe/Helsinki) are used as they are, DST included.
- ``billsec`` = ``elapsed_time``, else disconnect - connect, else 0; ``duration`` =
  disconnect - setup, else billsec. Milliseconds are truncated before subtracting. A
  negative result, one above ``MAX_DURATION`` (10,000,000 s, about 115 days), an
  ``elapsed_time`` that is not ASCII digits, or a malformed time rejects the record,
  and so does a record with neither ``h323-disconnect-time`` nor ``elapsed_time`` (a
  record cut short by a crash must not become a 0-second call).
- ``cause`` = ``h323-disconnect-cause`` (hexadecimal) as decimal; '' when absent.
- Numbers: the first non-empty of ``Settings.tacacs_src`` / ``tacacs_dst``: attribute
  names, or the columns ``rem_addr.ani``, ``rem_addr.dnis`` (``ANI/DNIS``), ``rem_addr``,
  ``user``, ``port``. The column placeholder ``unknown`` reads as ''.
- Attributes stored in columns (``h323-gw-id``, the conf id used, ``h323-call-origin``,
  ``h323-call-type``, ``h323-setup-time``, ``h323-disconnect-cause``, ``elapsed_time``)
  are not repeated in ``extra``; all others are.
"""

from __future__ import annotations

import datetime as dt
import re

from ..settings import Settings
from .base import (
    CACHE_LIMIT,
    IGNORED,
    MAX_DURATION,
    Item,
    Rejection,
    check_line,
    duration_error,
    strip_terminator,
)
from .clock import MONTHS, BillingClock, H323Clock, seconds_of_day
from .tacacs_avs import (
    JSON_UNSAFE,
    LOOKED_UP,
    AvShapes,
    extra_attrs,
    extra_json,
    split_avs,
)
from .tacacs_block import OrdinaryLines

_HEX = re.compile(r"[0-9A-Fa-f]+")

_IGNORED_TYPES = frozenset(("start", "update", "unknown", "watchdog"))


class TacacsParser:
    """Parses one tacacs record; holds the settings and the caches of time conversion."""

    def __init__(self, settings: Settings, source: str | None = None) -> None:
        self.source = source
        self.src_order = settings.tacacs_src
        self.dst_order = settings.tacacs_dst
        self.clock = BillingClock(settings.timezone)
        self.h323 = H323Clock(settings.tacacs_zones)
        self.shapes = AvShapes(frozenset(LOOKED_UP + self.src_order + self.dst_order))
        self.ordinary = OrdinaryLines(self, _CAUSES)  # the block path

    def parse_record(self, line: bytes, year: int | None = None) -> Item:
        """A record -> a record tuple, a Rejection or IGNORED.

        ``year`` is the year of a year-less line timestamp (default: this year); it is
        used only when the call's time must come from the line timestamp.
        """
        line = strip_terminator(line)
        text = check_line(line)
        if type(text) is Rejection:
            return text
        if text.isascii() and "\tstop\t" in text:
            # The ordinary line: one '=' per pair, nothing JSON escapes, names seen
            # before (mbg.formats.tacacs_avs). Anything else takes the general path.
            fast = self.shapes.parse(line, text)
            if fast is not None and fast[0][5] == "stop":
                fields, attrs, extra_parts = fast
                if not _is_call(attrs):
                    return IGNORED
                return self._record(fields, attrs, None, extra_parts, year, True, line)
        return self.parse_general(line, text, year)

    def parse_general(self, line: bytes, text: str, year: int | None = None) -> Item:
        """The general path of ``parse_record`` (any line; the ordinary line gives the
        same item on either path). ``line`` without its terminator, ``text`` decoded."""
        fields = text.split("\t", 6)
        if len(fields) < 6:
            if not text.strip():
                return IGNORED
            return Rejection("expected TAB-separated fields: time, NAS, user, port, rem_addr, type", line)
        kind = fields[5]
        if kind != "stop":
            if kind in _IGNORED_TYPES:
                return IGNORED
            return Rejection(f"unknown record type {kind[:40]!r}", line)
        if "h323" not in text:
            return IGNORED
        attrs, every = split_avs(fields[6] if len(fields) == 7 else "")
        if not _is_call(attrs):
            return IGNORED
        # Nothing in the line needs JSON escaping: extra is written by joining strings.
        plain = (attrs is every and text.isascii()
                 and len(line.translate(None, JSON_UNSAFE)) == len(line))
        return self._record(fields, attrs, every, None, year, plain, line)

    def _record(self, fields, attrs, every, extra_parts, year, plain, line) -> Item:
        try:
            return self._call(fields, attrs, every, extra_parts, year, plain)
        except _Reject as e:
            return Rejection(str(e), line)
        except Exception as e:  # a case not foreseen must not stop a collector
            return Rejection(f"cannot parse ({type(e).__name__}: {e})", line)

    def _call(self, fields, attrs, every, extra_parts, year, plain) -> tuple:
        """The record; extra is ``every`` without the column attributes (general path)
        or ``extra_parts`` (fast path: see _Shape.extra_parts), then the keys the record
        adds."""
        get = attrs.get
        parse_time = self.h323.parse
        setup_text = setup = get("h323-setup-time")
        if setup is not None:
            setup = parse_time(setup)
            if type(setup) is not tuple:
                setup = _time_value(parse_time, setup_text, "h323-setup-time")
        disconnect = get("h323-disconnect-time")
        if disconnect is not None:
            disconnect = parse_time(disconnect)
            if type(disconnect) is not tuple:
                disconnect = _time_value(parse_time, get("h323-disconnect-time"),
                                         "h323-disconnect-time")
        elapsed = get("elapsed_time")
        if elapsed is None and disconnect is None:
            # A stop record cut short (FORMATS 1.8.12) must not become a 0-second call.
            raise _Reject("incomplete stop record: no h323-disconnect-time nor elapsed_time")
        if elapsed is not None:
            # Seven ASCII digits at most is below MAX_DURATION: the common case.
            if not (elapsed.isdigit() and elapsed.isascii() and len(elapsed) < 8):
                elapsed = elapsed.strip()
                reason = duration_error("elapsed_time", elapsed)
                if reason:
                    raise _Reject(reason)
            billsec = int(elapsed)
        else:
            connect = get("h323-connect-time")
            if connect is not None:
                connect = _time_value(parse_time, connect, "h323-connect-time")
            billsec = disconnect[0] - connect[0] if connect and disconnect else 0
        duration = disconnect[0] - setup[0] if setup and disconnect else billsec
        if duration < 0 or billsec < 0:
            raise _Reject("h323 times out of order (disconnect before setup or connect)")
        if duration > MAX_DURATION or billsec > MAX_DURATION:
            raise _Reject(f"call longer than {MAX_DURATION} s (duration {duration}, "
                          f"billsec {billsec}): h323 times far apart")

        cause = get("h323-disconnect-cause")
        if cause is None:
            cause = ""
        else:
            decimal = _CAUSES.get(cause)
            if decimal is None:
                decimal = _decimal_cause(cause)  # raises on a bad one: never cached
                if len(_CAUSES) >= CACHE_LIMIT:
                    _CAUSES.clear()
                _CAUSES[cause] = decimal
            cause = decimal

        conf_name = "h323-conf-id" if "h323-conf-id" in attrs else "h323-incoming-conf-id"
        conf = get(conf_name, "").strip()
        origin = get("h323-call-origin", "").strip()
        callid = f"{conf}/{origin}/{get('h323-call-type', '').strip()}" if conf else ""

        _, nas, user, port, rem_addr = fields[:5]
        if nas == "unknown":
            nas = ""
        source = self.source or get("h323-gw-id", "").strip() or nas
        if port == "unknown":
            port = ""
        src = self._number(self.src_order, attrs, user, port, rem_addr)
        dst = self._number(self.dst_order, attrs, user, port, rem_addr)

        added = {}  # what the record adds to extra
        if source != nas and nas:
            added["nas"] = nas
        if setup and setup[1] != "*" and setup[1] != "?":
            calldate = self.clock.format(setup[0])
            if setup[1] == ".":
                added["clock"] = "unsynchronised"
        else:
            if not setup:
                added["clock"] = "missing"
            elif setup[1] == "*":
                added["clock"] = "unset"
            else:
                zone = setup_text.split()[1]
                added["clock"] = f"unknown zone {zone} (add it to [tacacs.zones])"
            start_time = get("start_time", "").strip()
            if start_time.isdigit() and start_time.isascii():
                calldate = self.clock.format(int(start_time))
                added["calldate_from"] = "start_time"
            else:
                calldate = self.clock.format(self._line_epoch(fields[0], year) - duration)
                added["calldate_from"] = "line timestamp"
        if every is not None:
            # Lookups are done: ``every`` (which may be ``attrs`` itself) can lose the
            # attributes stored in columns; an added key keeps its place if it was there.
            extra = extra_attrs(every)
            extra.update(added)
            extra = extra_json(extra, plain)
        else:  # the fast path: the pieces of the JSON text, and what the record adds
            for name, value in added.items():
                extra_parts.append(('"' if len(extra_parts) == 1 else ', "')
                                   + name + '": "' + value + '"')
            extra_parts.append("}")
            extra = "".join(extra_parts) if len(extra_parts) > 2 else None
        originate = origin == "originate"
        return (
            source,
            calldate,
            src,
            dst,
            "" if originate else port,
            port if originate else "",
            duration,
            billsec,
            cause,
            callid,
            extra,
        )

    @staticmethod
    def _number(order: tuple[str, ...], attrs: dict[str, str], user: str, port: str,
                rem_addr: str) -> str:
        for name in order:
            if name.startswith("rem_addr"):
                value = "" if rem_addr == "unknown" else rem_addr
                if name == "rem_addr.ani":
                    value = value.partition("/")[0]
                elif name == "rem_addr.dnis":
                    value = value.partition("/")[2]
            elif name == "user":
                value = "" if user == "unknown" else user
            elif name == "port":
                value = port
            else:
                value = attrs.get(name, "")
            value = value.strip()
            if value:
                return value
        return ""

    def _line_epoch(self, stamp: str, year: int | None) -> int:
        parsed = parse_line_timestamp(stamp, year)
        if parsed is None:
            raise _Reject(f"bad line timestamp {stamp[:40]!r}")
        return self.clock.epoch(*parsed)


# h323-disconnect-cause values seen -> decimal text (valid ones, at most CACHE_LIMIT).
_CAUSES: dict[str, str] = {}


def _decimal_cause(value: str) -> str:
    value = value.strip()
    if not value:
        return ""
    if not _HEX.fullmatch(value):
        raise _Reject(f"bad h323-disconnect-cause {value[:40]!r}")
    return str(int(value, 16))


class _Reject(Exception):
    pass


def _is_call(attrs: dict[str, str]) -> bool:
    """A voice call: an h323-call-type attribute, or service=connection protocol=h323."""
    return "h323-call-type" in attrs or (
        attrs.get("service") == "connection" and attrs.get("protocol") == "h323")


def _time_value(parse, value: str, name: str) -> tuple[int, str] | None:
    """An h323 time -> (UTC epoch, flag); None when empty or '0' (non-Cisco "none")."""
    result = parse(value)
    if type(result) is tuple:
        return result
    if not value.strip() or value.strip() == "0":
        return None
    raise _Reject(f"{name}: {result}")


def parse_line_timestamp(stamp: str, year: int | None = None) -> tuple[dt.date, int] | None:
    """'Sep 24 16:08:12' (with ``year``, default this year) or 'Wed Jun 27 03:48:46 2001'
    -> (date, seconds of day); None if malformed."""
    parts = stamp.split()
    if len(parts) == 5:
        _weekday, month, day, hms, year_text = parts
        if not (year_text.isdigit() and year_text.isascii()):
            return None
        year = int(year_text)
    elif len(parts) == 3:
        month, day, hms = parts
        year = year if year is not None else dt.date.today().year
    else:
        return None
    sod = seconds_of_day(hms)
    if month not in MONTHS or not (day.isdigit() and day.isascii()) or sod is None:
        return None
    try:
        return dt.date(year, MONTHS[month], int(day)), sod
    except ValueError:
        return None



def __getattr__(name: str):
    """``TacacsLineAssembler``, the LineParser, lives in mbg.formats.tacacs_lines (this
    module was its home: old imports keep working)."""
    if name == "TacacsLineAssembler":
        from .tacacs_lines import TacacsLineAssembler

        return TacacsLineAssembler
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
