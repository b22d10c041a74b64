"""The built-in sample installation of ``mbg demo`` (SPEC section 10).

This package holds the sample data (package data beside this file) and the pieces of
the demo that are not commands: where the sample files are and how the sample MBGROOT
tree is made. The steps themselves (load, collect, rate, plan, charge, report) are the
real commands, run by mbg.cli.demo.

The sample month is October 2009, in Moscow time, with four customers:

- acme and globex call through an M-200 PBX (callbuilder, PBX ``vk-pbx-1``); extension
  2347 moves from acme to globex on 2009-10-15, and globex switches from the basic to the
  business plan the same day (a schedule entry);
- initech calls through a Cisco gateway (tacacs, ``gw-msk-1``), which logs two legs per
  call: the mediation rules bill the originate leg only;
- hooli calls through Asterisk (Master.csv, source ``pbx-ast``) and subscribes mid-month.

Each log has deliberately bad lines, rejected and kept under ``dataset/telephony/reject``.
The demo tree also gets a copy of every sample file in ``samples/``, for trying the
commands by hand.
"""

from __future__ import annotations

import datetime as dt
import shutil
from importlib import resources
from pathlib import Path

from ..errors import InputError
from ..root import Root, init_root, make_dirs

MONTH = dt.date(2009, 10, 1)

# Reference data, in the load order of SPEC section 5.
REFERENCE = (
    ("accounts", "accounts.csv"),
    ("numbers", "numbers.csv"),
    ("tariffs", "tariffs.csv"),
    ("buckets", "buckets.csv"),
    ("routes", "routes.csv"),
    ("services", "services.csv"),
    ("subscriptions", "subscriptions.csv"),
    ("schedule", "schedule.csv"),
)

# Sample logs: (collector, file, the collector's options besides --dataset).
LOGS = (
    ("callbuilder", "callbuilder-vk-pbx-1.log", ("--ports", "stdin vk-pbx-1")),
    ("tacacs", "tacacs-gw-msk-1.log", ()),
    ("asterisk", "asterisk-Master.csv", ("--source", "pbx-ast")),
)

# Not loaded by the demo: what a second collector host caught (three calls the first
# missed, one of them early in the month, and two it also has), for the README's merge.
EXTRA_LOGS = ("callbuilder-host2.log",)

SETTINGS_FILE = "mbg.toml"
MEDIATION_FILE = "mediation.toml"

# A file at the top of a tree made by the demo: only such a tree is ever replaced.
MARKER = ".mbg-demo"

DEFAULT_ROOT = Path("mbg-demo")


def sample_file(name: str) -> Path:
    """The path of a bundled sample file (installed as package data)."""
    path = Path(str(resources.files(__name__).joinpath(name)))
    if not path.is_file():
        raise InputError(f"sample file {name} is missing from the installation ({path})")
    return path


def prepare_root(path: Path) -> Root:
    """A fresh sample MBGROOT at ``path``: settings, mediation rules, empty billing.db.

    ``path`` must be missing, an empty folder, or a tree an earlier demo made (it is
    then replaced). Anything else is refused before any change: the demo never
    overwrites an operator's data.
    """
    path = Path(path).absolute()
    try:
        return _prepare_root(path)
    except OSError as e:
        raise InputError(f"{path}: cannot build the demo tree there: {e.strerror or e}") from None


def _prepare_root(path: Path) -> Root:
    if path.exists():
        if not path.is_dir():
            raise InputError(f"{path}: exists and is not a folder; give another --root")
        if (path / MARKER).is_file():
            shutil.rmtree(path)
        elif any(path.iterdir()):
            raise InputError(
                f"{path}: not empty and not made by mbg demo; refusing to overwrite it "
                "(give another --root)"
            )
    make_dirs(path)
    (path / MARKER).write_text("made by mbg demo; `mbg demo` replaces this whole folder\n")
    root = Root(path)
    init_root(root)
    shutil.copyfile(sample_file(SETTINGS_FILE), root.settings_file)
    shutil.copyfile(sample_file(MEDIATION_FILE), root.mediation_file)
    # A copy of every sample file, to try the commands by hand (README tour).
    samples = samples_dir(root)
    make_dirs(samples)
    names = [name for _, name in REFERENCE] + [name for _, name, _ in LOGS] + list(EXTRA_LOGS)
    for name in names:
        shutil.copyfile(sample_file(name), samples / name)
    return root


def samples_dir(root: Root) -> Path:
    """Where the demo tree keeps its copy of the sample files."""
    return root.path / "samples"
