"""The Debian packaging stays in step with the project (no dpkg needed).

An editable install finds every module and script wherever it is, so these mistakes would
only show when the .debs are built (.ci/debian-check does that): a console script added to
pyproject.toml but given to no package, a subpackage or data file missing from the wheel,
a launcher in bin/ shipped by no package, a unit reading a variable /etc/default lacks.
"""

from __future__ import annotations

import fnmatch
import re
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DEBIAN = REPO / "debian"
PYPROJECT = tomllib.loads((REPO / "pyproject.toml").read_text())

# SPEC section 2: each utility under both spellings (month has one), and the umbrella command.
SPEC_UTILITIES = {
    "mbg-telephony-tacacs-utils": ["telephony-agent-tacacs", "telephony-import-tacacs"],
    "mbg-telephony-m200-utils": ["telephony-agent-callbuilder", "telephony-import-callbuilder"],
    "mbg-telephony-asterisk-utils": ["telephony-agent-asterisk"],
    "mbg-telephony-dataset": [
        "telephony-dataset-init", "telephony-dataset-merge", "telephony-rating-monthly",
        "telephony-rating-monthly-force", "billing-cost-daily", "billing-cost-daily-force",
        "billing-planner-daily", "month",
    ],
    "python3-mbg": ["mbg"],
}


def install_lines(suffix: str) -> dict[str, list[str]]:
    """package -> the source paths of its debian/PACKAGE.SUFFIX file."""
    result = {}
    for path in sorted(DEBIAN.glob(f"*.{suffix}")):
        lines = [line.split()[0] for line in path.read_text().splitlines()
                 if line.strip() and not line.startswith("#")]
        result[path.name[: -len(suffix) - 1]] = lines
    return result


def packages_of(name: str) -> list[str]:
    return [package for package, lines in install_lines("install").items()
            if f"usr/bin/{name}" in lines]


def test_every_console_script_is_in_exactly_one_package():
    scripts = PYPROJECT["project"]["scripts"]
    for name in scripts:
        assert len(packages_of(name)) == 1, (
            f"console script {name} is shipped by {packages_of(name) or 'no package'}: "
            f"add usr/bin/{name} to one debian/*.install")
    for package, lines in install_lines("install").items():
        for line in lines:
            if line.startswith("usr/bin/"):
                assert line[len("usr/bin/"):] in scripts, (
                    f"debian/{package}.install ships {line}, not a script of pyproject.toml")


def test_packages_ship_what_spec_lists_under_both_spellings():
    for package, names in SPEC_UTILITIES.items():
        for name in names:
            for spelling in {name, name.replace("-", "_")}:
                assert packages_of(spelling) == [package], f"{spelling} belongs in {package}"


def test_every_subpackage_and_data_file_is_in_the_wheel():
    setuptools = PYPROJECT["tool"]["setuptools"]
    listed = set(setuptools["packages"])
    dirs = {"mbg.schema": REPO / "schema"}
    for init in (REPO / "mbg").rglob("__init__.py"):
        name = ".".join(init.parent.relative_to(REPO).parts)
        assert name in listed, f"{name} is missing from [tool.setuptools] packages"
    for name in listed:
        dirs.setdefault(name, REPO.joinpath(*name.split(".")))
    patterns = setuptools.get("package-data", {})
    for name, folder in dirs.items():
        for path in folder.rglob("*"):
            relative = path.relative_to(folder).as_posix()
            # Notes for developers (README, *.md) stay in the repository.
            if (path.is_dir() or path.suffix in (".py", ".pyc", ".md") or "__pycache__" in relative
                    or path.name.startswith("README")
                    or (path.parent != folder and (path.parent / "__init__.py").exists())):
                continue
            globs = patterns.get(name, []) + patterns.get("*", [])
            assert any(fnmatch.fnmatch(relative, glob) for glob in globs), (
                f"{path.relative_to(REPO)} is not package data of {name}: "
                f"add a pattern to [tool.setuptools.package-data]")


def test_every_launcher_in_bin_is_shipped_as_an_example():
    examples = [line for lines in install_lines("examples").values() for line in lines]
    for path in sorted((REPO / "bin").iterdir()):
        assert examples.count(f"bin/{path.name}") == 1, (
            f"bin/{path.name} is in {examples.count(f'bin/{path.name}')} debian/*.examples: "
            f"list it in the debian/PACKAGE.examples of the package of the utility it runs")
    for line in examples:
        assert (REPO / line).exists(), f"debian/*.examples names {line}, which does not exist"


def default_variables() -> dict[str, str]:
    text = (DEBIAN / "default" / "mbg-telephony").read_text()
    return dict(re.findall(r"^([A-Z_]+)=(.*)$", text, flags=re.M))


@pytest.mark.parametrize("agent", ["tacacs", "callbuilder", "asterisk"])
def test_unit_runs_its_agent_from_its_package_with_the_defaults(agent):
    units = list(DEBIAN.glob(f"*.telephony-agent-{agent}.service"))
    assert len(units) == 1, f"one unit for telephony-agent-{agent}, found {units}"
    package = units[0].name.split(".")[0]
    assert packages_of(f"telephony-agent-{agent}") == [package]
    text = units[0].read_text()
    exec_start = re.search(r"^ExecStart=(.*)$", text, flags=re.M).group(1)
    assert exec_start.startswith(f"/usr/bin/telephony-agent-{agent} -demon 1 ")
    used = set(re.findall(r"\$\{?([A-Z_]+)\}?", exec_start))
    assert used >= {"DATASET", "INTERVAL"}
    assert not used - set(default_variables()), "a variable missing from /etc/default/mbg-telephony"
    for line in ("User=mbg", "EnvironmentFile=/etc/default/mbg-telephony", "Restart=always"):
        assert line in text.splitlines()
