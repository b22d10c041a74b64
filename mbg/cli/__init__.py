"""The umbrella ``mbg`` command. Each command group lives in its own module."""

from __future__ import annotations

import click

from .. import __version__
from .agent import agent_group
from .charges import cost_command
from .dataset import dataset_group
from .mediate import mediate_command
from .demo import demo_command
from .imports import import_group
from .month import month_command
from .planner import planner_command
from .rating import rate_command
from .refdata import dump_command, load_command
from .report import report_command
from .root import init_command
from .status import explain_command, status_command


@click.group()
@click.version_option(__version__, prog_name="mbg")
def main() -> None:
    """mbg: telephony billing toolkit (collectors, datasets, rating, charges, reports)."""


main.add_command(init_command)
main.add_command(agent_group)
main.add_command(import_group)
main.add_command(dataset_group)
main.add_command(month_command)
main.add_command(load_command)
main.add_command(dump_command)
main.add_command(cost_command)
main.add_command(planner_command)
main.add_command(rate_command)
main.add_command(report_command)
main.add_command(demo_command)
main.add_command(status_command)
main.add_command(explain_command)
main.add_command(mediate_command)
