"""The umbrella ``mbg`` command. Each command group lives in its own module.

Subcommands are imported only when used: every classic utility (telephony-agent-*,
month, ...) imports this package first, and a pipe collector should not pay at start-up
for the modules of rating, reports and the rest.
"""

from __future__ import annotations

import importlib

import click

from .. import __version__

# mbg subcommand -> "module:attribute" in mbg.cli
COMMANDS = {
    "init": "root:init_command",
    "agent": "agent:agent_group",
    "import": "imports:import_group",
    "dataset": "dataset:dataset_group",
    "month": "month:month_command",
    "load": "refdata:load_command",
    "dump": "refdata:dump_command",
    "cost": "charges:cost_command",
    "planner": "planner:planner_command",
    "rate": "rating:rate_command",
    "report": "report:report_command",
    "demo": "demo:demo_command",
    "status": "status:status_command",
    "explain": "status:explain_command",
    "mediate": "mediate:mediate_command",
}


class LazyGroup(click.Group):
    """A group whose commands are imported by name on first use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module, attribute = target.split(":")
        return getattr(importlib.import_module(f"{__name__}.{module}"), attribute)


@click.group(cls=LazyGroup)
@click.version_option(__version__, prog_name="mbg")
def main() -> None:
    """mbg: telephony billing toolkit (collectors, datasets, rating, charges, reports)."""
