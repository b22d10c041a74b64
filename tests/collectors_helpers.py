"""Helpers of the collector tests: settings, sample lines, running the agents."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from mbg.settings import settings_from_dict
from tests.conftest import command, log_rows, run_env

SAMPLES = Path("/work/shared/formats/samples")

MOSCOW = settings_from_dict(
    {"timezone": "Europe/Moscow", "tacacs": {"zones": {"VSK": "+10:00", "MSK": "+03:00"}}}
)

# FORMATS.md 1.7: the tacppd STOP record as tac_plus F4.0.4.19 writes it (TAB-separated).
TACPPD_AVS = [
    "task_id=27", "start_time=1036566928", "timezone=VSK", "service=connection",
    "protocol=h323", "h323-gw-id=vgw.tts.khb.cisco",
    "h323-incoming-conf-id=5CBC9187 F08E11D6 8058C840 5D76F8B3", "h323-call-origin=answer",
    "h323-call-type=Telephony", "h323-setup-time=17:15:28.589 VSK Wed Nov 6 2002",
    "subscriber=RegularLine", "in-portgrp-id=### 320320 ###",
    "h323-connect-time=17:15:28.599 VSK Wed Nov 6 2002",
    "h323-disconnect-time=17:15:53.933 VSK Wed Nov 6 2002", "h323-disconnect-cause=10",
    "tariff-type=Unknown", "h323-voice-quality=0", "pre-bytes-in=0", "pre-bytes-out=0",
    "pre-paks-in=0", "pre-paks-out=0", "bytes_in=0", "bytes_out=64160", "paks_in=0",
    "paks_out=401", "connect-progress=101", "elapsed_time=25", "nas-rx-speed=0",
    "nas-tx-speed=0",
]
TACPPD_COLUMNS = ["192.168.113.21", "111", "Serial1/0:21", "84212322311", "stop"]


def tacacs_line(stamp: str = "Wed Nov  6 17:15:54 2002", columns=None, avs=None) -> bytes:
    columns = TACPPD_COLUMNS if columns is None else columns
    avs = TACPPD_AVS if avs is None else avs
    return ("\t".join([stamp, *columns, *avs]) + "\n").encode()


def replace_av(avs: list[str], name: str, value: str | None) -> list[str]:
    """The attribute list with ``name`` set to ``value`` (None: removed)."""
    out = [a for a in avs if not a.startswith(name + "=")]
    if value is not None:
        out.append(f"{name}={value}")
    return out


def voice_stop(stamp: str, setup: str, disconnect: str, elapsed: int, conf: str = "AAAA 1",
               origin: str = "answer", kind: str = "Telephony", extra_avs=()) -> bytes:
    """A compact tacacs voice stop line with h323 times in MSK."""
    avs = [
        "task_id=1", "service=connection", "protocol=h323", "h323-gw-id=gw1",
        f"h323-conf-id={conf}", f"h323-call-origin={origin}", f"h323-call-type={kind}",
        f"h323-setup-time={setup}", f"h323-connect-time={setup}",
        f"h323-disconnect-time={disconnect}", "h323-disconnect-cause=10",
        f"elapsed_time={elapsed}", *extra_avs,
    ]
    return tacacs_line(stamp, ["10.0.0.1", "4951234567", "Serial0:1", "4957654321/84951112233",
                               "stop"], avs)


def cli_runner():
    """A CliRunner with stderr apart from stdout, on click 8.1 (mix_stderr) and 8.2+."""
    from click.testing import CliRunner

    try:
        return CliRunner(mix_stderr=False)
    except TypeError:
        return CliRunner()


def run_agent(name: str, args: list[str], data: bytes, env: dict | None = None):
    """Run an installed collector as a process with ``data`` on stdin."""
    return subprocess.run([command(name), *args], input=data, capture_output=True,
                          env=env or run_env(TZ="Europe/Moscow"), timeout=120)


def rows_of(path: Path) -> list[dict]:
    """The telephony_log rows of a dataset file as dicts (extra decoded)."""
    names = ["id", "source", "calldate", "src", "dst", "channel", "dstchannel", "duration",
             "billsec", "cause", "callid", "extra", "is_new"]
    out = []
    for row in log_rows(path):
        record = dict(zip(names, row))
        record["extra"] = json.loads(record["extra"]) if record["extra"] else None
        out.append(record)
    return out


def reject_lines(dataset: Path) -> list[str]:
    folder = dataset / "reject"
    if not folder.exists():
        return []
    lines = []
    for path in sorted(folder.iterdir()):
        lines.extend(path.read_text(encoding="utf-8").splitlines())
    return lines
