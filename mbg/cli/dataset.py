"""telephony-dataset-init and telephony-dataset-merge (mbg dataset init|merge)."""

from __future__ import annotations

from pathlib import Path

import click

from .. import dataset as ds
from ..dates import parse_month
from ..errors import InputError
from .options import dataset_dir, dataset_option, handle_errors, progress, root_option, summary


@click.group("dataset")
def dataset_group() -> None:
    """Monthly traffic datasets: create, merge."""


@click.command("init")
@click.argument("target")
@dataset_option
@root_option
@handle_errors
def init_command(target: str, dataset: Path | None, root) -> None:
    """Create an empty monthly dataset file.

    TARGET is a file path (/srv/dataset/telephony/2009-10-01.db) or a month
    (2009-10, 2009-10-01), which names the month's file in the dataset folder.
    An existing dataset is checked and left as it is.
    """
    path = _init_target(target, dataset, root)
    created = ds.init_dataset(path)
    summary(f"{path}: {'created' if created else 'already a dataset, unchanged'}")


def _init_target(target: str, dataset: Path | None, root) -> Path:
    if target.endswith(".db") or "/" in target:
        return Path(target)
    try:
        month = parse_month(target)
    except InputError:
        raise InputError(f"bad target {target!r}: expected a .db path or a month YYYY-MM") from None
    return ds.dataset_path(dataset_dir(root, dataset), month)


@click.command("merge")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@handle_errors
def merge_command(paths: tuple[Path, ...]) -> None:
    """Merge datasets without duplicates: SRC.db... DST.db, or SRC_DIR DST_DIR.

    Only calls are copied (never ids or rating results); a call already in the target
    is skipped; copied calls are new, to be rated. Sources are read-only. Each target
    file is written in one transaction, and a collector may be writing it meanwhile.
    """
    if len(paths) < 2:
        raise InputError("merge needs at least one source and a target: SRC... DST")
    *sources, target = paths
    plan = ds.merge_plan(sources, target)
    # Check every source before writing anything, so bad input changes nothing.
    for group, _ in plan:
        ds.check_sources(group)
    # Progress in bytes of the source files: known without reading a row.
    total = sum(source.stat().st_size for group, _ in plan for source in group)
    read = stored = 0
    with progress("merging", total) as bar:
        for group, target_file in plan:
            result = ds.merge_files(
                group, target_file, on_progress=lambda source: bar.advance(source.stat().st_size)
            )
            read += result.read
            stored += result.stored
            if len(plan) > 1:
                summary(
                    f"{target_file}: read {result.read}, stored {result.stored}, "
                    f"duplicates {result.duplicates}"
                )
    summary(f"merged {len(plan)} file(s): read {read}, stored {stored}, duplicates {read - stored}")


dataset_group.add_command(init_command)
dataset_group.add_command(merge_command)
