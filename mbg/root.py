"""The MBGROOT tree (SPEC section 3): where every file of an installation lives."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from . import db
from .errors import RootMissingError
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
