"""mbg demo [--root DIR]: the whole toolkit on built-in sample data, in seconds, offline.

Every step is a real command: the collectors run as subprocesses reading the sample
logs on stdin (a real pipe, as in ``zcat log | telephony-agent-tacacs``); the other
steps run the same click commands in this process. The narrative goes to stdout with
the equivalent shell command of each step, the commands' own summaries to stderr.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import click

from .. import demo
from ..dates import month_days
from ..errors import MbgError
from ..root import Root
from .options import handle_errors


@click.command("demo")
@click.option(
    "--root", "-root", "root_path",
    type=click.Path(file_okay=False, path_type=Path), default=demo.DEFAULT_ROOT,
    show_default=True,
    help="Where to build the sample MBGROOT. An existing folder must be empty or an "
    "earlier demo's (it is replaced).",
)
@handle_errors
def demo_command(root_path: Path) -> None:
    """Build a sample MBGROOT, plan, collect, rate, charge and report a sample month.

    Loads sample customers, numbers, tariffs (with a bucket and provider routes),
    services, subscriptions and a schedule; applies the schedule; pipes sample logs of
    the three collectors (callbuilder, tacacs, asterisk), bad lines included, through
    the collectors; rates October 2009 with mediation rules; charges every day of the
    month; prints the report and the next commands to try. Writes only under --root.
    """
    root = demo.prepare_root(root_path)
    env_root = shlex.quote(str(root.path))
    month = f"{demo.MONTH:%Y-%m}"
    days = [d.isoformat() for d in month_days(demo.MONTH)]
    say(f"Sample MBGROOT: {root.path}")
    say("  etc/mbg.toml (Moscow time, kopecks), etc/mediation.toml (number normalization),")
    say("  samples/ (the sample files); commands below run with MBGROOT set to it")

    step("Reference data (customers, numbers, tariffs, services, schedule)")
    samples = demo.samples_dir(root)
    for kind, name in demo.REFERENCE:
        run(root, f"mbg load {kind} samples/{name}", ["load", kind, _short(samples / name)])

    # In production the planner runs every morning and rating every minute, so calls
    # are rated under the services of their day: apply the month's schedule first.
    step("Planner: the month's scheduled service changes")
    run(root, f"billing-planner-daily {days[-1]}", ["planner", days[-1]])

    step(f"Collectors: sample logs of {month} piped in, bad lines rejected and kept")
    for agent, name, options in demo.LOGS:
        collect(root, agent, samples / name, options)

    step("Rating (mediation rules, accounts, tariffs, bucket, provider routes)")
    run(root, f"telephony-rating-monthly {month}-01", ["rate", month])

    step("Subscription charges for every day of the month")
    run(root, f"billing-cost-daily $(month {month}-01 | xargs)", ["cost", *days])

    step(f"Report of {month}")
    run(root, f"mbg report {month}", ["report", month], quiet=True)

    say("")
    say("Next, try:")
    bindir = Path(sys.executable).parent
    if (bindir / "mbg").exists() and shutil.which("mbg") != str(bindir / "mbg"):
        # Installed in a virtualenv that is not on PATH (.venv/bin/mbg demo).
        say(f"  export PATH={shlex.quote(str(bindir))}:$PATH")
    say(f"  export MBGROOT={env_root}; cd \"$MBGROOT\"")
    tries = (
        (f"mbg report {month} --account acme", "every call of one customer"),
        (f"mbg report {month} --format csv", "or json: for programs"),
        (f"mbg status {month}", "calls, rated, unrated by reason"),
        (f"mbg explain {month} 5", "how call 5 was priced, step by step"),
        (f"mbg mediate {month} --changed", "what the rules did to the calls"),
        ("mbg dump charges", "every daily charge"),
        (f"telephony-rating-monthly-force {month}-01", "re-rate the month from scratch"),
        ("cat dataset/telephony/reject/*", "the rejected lines, kept"),
    )
    width = max(len(command) for command, _ in tries)
    for command, comment in tries:
        say(f"  {command:<{width}}  # {comment}")


def _short(path: Path) -> str:
    """A path relative to the current folder when it is below it (shorter messages)."""
    relative = os.path.relpath(path)
    return str(path) if relative.startswith("..") else relative


def say(text: str) -> None:
    click.echo(text)


def step(title: str) -> None:
    click.echo("")
    click.echo(click.style(f"== {title}", bold=True))


def run(root: Root, shown: str, args: list[str], quiet: bool = False) -> None:
    """Run one mbg command in this process, as the operator would from the shell."""
    from . import main  # here, not at import time: mbg.cli imports this module

    if not quiet:
        say(f"$ {shown}")
    code = main.main(args=[*args, "--root", str(root.path)], prog_name="mbg",
                     standalone_mode=False)
    # 3: done, with rejected records or failed schedule entries: worth seeing, not fatal.
    if code not in (None, 0, 3):
        raise MbgError(f"demo step failed: {shown} (exit {code})")


def collect(root: Root, agent: str, log: Path, options: tuple[str, ...]) -> None:
    """Pipe one sample log into a collector process (the same code as the utility)."""
    say(f"$ {shlex.join(['telephony-agent-' + agent, *options])} < samples/{log.name}")
    env = dict(os.environ, MBGROOT=str(root.path))
    command = [sys.executable, "-m", "mbg", "agent", agent, "--dataset", str(root.dataset_dir),
               *options]
    sys.stdout.flush()
    with open(log, "rb") as stdin:
        done = subprocess.run(command, stdin=stdin, env=env)
    if done.returncode not in (0, 3):
        raise MbgError(f"demo step failed: telephony-agent-{agent} (exit {done.returncode})")
