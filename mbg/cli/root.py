"""mbg init: create the MBGROOT tree."""

from __future__ import annotations

import click

from ..root import Root, init_root
from .options import handle_errors, root_option, summary


@click.command("init")
@root_option
@handle_errors
def init_command(root: Root) -> None:
    """Create the MBGROOT tree (etc/, data/billing.db, dataset/telephony/). Idempotent."""
    created = init_root(root)
    for path in created:
        click.echo(str(path))
    summary(f"{root.path}: {'created' if created else 'already an mbg tree, unchanged'}")
