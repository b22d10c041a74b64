"""The MBGROOT tree (SPEC section 3): where every file of an installation lives."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from . import db
from .errors import RootMissingError, SettingsError
from .settings import Settings, load_settings


def default_root() -> Path:
    """$MBGROOT, else /var/lib/mbg for root (the Debian package's home), else ~/.local/share/mbg."""
    env = os.environ.get("MBGROOT")
    if env:
        return Path(env)
    if os.geteuid() == 0:
        return Path("/var/lib/mbg")
    return Path.home() / ".local" / "share" / "mbg"


@dataclass(frozen=True)
class Root:
    path: Path

    @property
    def settings_file(self) -> Path:
        return self.path / "etc" / "mbg.toml"

    @property
    def mediation_file(self) -> Path:
        return self.path / "etc" / "mediation.toml"

    @property
    def billing_db(self) -> Path:
        return self.path / "data" / "billing.db"

    @property
    def dataset_dir(self) -> Path:
        return self.path / "dataset" / "telephony"

    def exists(self) -> bool:
        return self.billing_db.is_file()

    def require(self) -> "Root":
        """The tree, or a RootMissingError that tells the operator what to run."""
        if not self.exists():
            raise RootMissingError(
                f"no mbg tree at {self.path} (no {self.billing_db}); "
                f"create it with: mbg init --root {self.path}"
            )
        return self

    def settings(self) -> Settings:
        return load_settings(self.settings_file)

    def billing_settings(self) -> Settings:
        """The settings, checked against the money unit billing.db's amounts are stored in.

        For every command that reads or writes money. (Collectors use ``settings()``: a
        money setting must never stop the collection of calls.)
        """
        settings = self.settings()
        if self.billing_db.exists():
            conn = db.connect(self.billing_db, "billing", readonly=True)
            try:
                check_money_decimals(conn, settings.money_decimals)
            finally:
                conn.close()
        return settings


def check_money_decimals(conn, decimals: int, record: bool = False) -> None:
    """Refuse money_decimals other than the one billing.db's amounts were stored with.

    ``record``: inside a write transaction, record ``decimals`` if nothing is recorded yet.
    """
    if record:
        conn.execute(
            "INSERT INTO meta (key, value) VALUES ('money_decimals', ?) ON CONFLICT DO NOTHING",
            (str(decimals),),
        )
    rows = conn.execute("SELECT value FROM meta WHERE key = 'money_decimals'").fetchall()
    if rows and int(rows[0][0]) != decimals:
        raise SettingsError(
            f"money_decimals is {decimals} in mbg.toml, but the amounts in billing.db are "
            f"stored in units of {rows[0][0]} decimal places: set money_decimals = {rows[0][0]} "
            "(another currency unit needs a new billing.db)"
        )


def resolve_root(path: str | os.PathLike | None = None) -> Root:
    return Root(Path(path) if path else default_root())


def make_dirs(path: Path) -> None:
    """mkdir -p without world write permission, whatever the umask."""
    path.mkdir(parents=True, exist_ok=True, mode=0o755)
    mode = path.stat().st_mode
    if mode & 0o002:
        path.chmod(mode & ~0o002)


def dataset_dirs(dataset_dir: Path) -> None:
    """The dataset folder with its reject/ and spool/ folders."""
    for sub in ("reject", "spool"):
        make_dirs(dataset_dir / sub)


def init_root(root: Root) -> list[Path]:
    """Create the tree and an empty billing.db. Idempotent; returns what was created."""
    created = [p for p in (root.path / "etc", root.path / "data", root.dataset_dir) if not p.exists()]
    make_dirs(root.path / "etc")
    make_dirs(root.path / "data")
    dataset_dirs(root.dataset_dir)
    if not root.billing_db.exists():
        created.append(root.billing_db)
    db.connect(root.billing_db, "billing", create=True).close()
    return created
