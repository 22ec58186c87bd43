# SPDX-License-Identifier: GPL-3.0-or-later
"""The ``satpy-prenet-train`` command: one subcommand per stage, all calling `run_stage`.

Examples::

    satpy-prenet-train teacher --config etc/training/small.yaml --workdir runs/small
    satpy-prenet-train distill --config etc/training/small.yaml --workdir runs/small --head classifier
    satpy-prenet-train adapt   --config etc/training/small.yaml --workdir runs/small --resume
    satpy-prenet-train export  --config etc/training/small.yaml --workdir runs/small
    satpy-prenet-train build   --config etc/training/small.yaml --sources /archive --workdir runs/small
    satpy-prenet-train all     --config etc/training/small.yaml --simulate --workdir runs/small
    satpy-prenet-train baseline --config etc/training/small.yaml --workdir runs/small
    torchrun --nproc-per-node 4 -m satpy_prenet.training.cli distill --config ... --workdir ...

``build``, ``all`` and ``export`` are single-process commands: ``build`` and ``all`` refuse to run under
``torchrun``; launch the training stages (teacher, distill, adapt) under it instead.
"""

from __future__ import annotations

import functools
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click

from satpy_prenet.bundle import BundleError
from satpy_prenet.cli_options import device_option
from satpy_prenet.data.errors import SourceFileError
from satpy_prenet.data.stores import FULL_IPR, StoreError, store_path
from satpy_prenet.evaluation.baselines import BaselineError, fit_baselines
from satpy_prenet.training.checkpoints import CheckpointError
from satpy_prenet.training.config import HEADS, ConfigError, load_config
from satpy_prenet.training.distributed import shutdown
from satpy_prenet.training.pipeline import build, run_all
from satpy_prenet.training.stages import EXPORT_SOURCES, default_data, run_stage

#: Errors a user can fix; shown as one message instead of a traceback.
USER_ERRORS = (ConfigError, StoreError, CheckpointError, BundleError, SourceFileError, FloatingPointError,
               BaselineError)


#: Log levels of no -v, -v and -vv.
LOG_LEVELS = (logging.WARNING, logging.INFO, logging.DEBUG)


def refuse_torchrun(command: str) -> None:
    """Raise a click error if ``command`` runs under a launcher with more than one process (``WORLD_SIZE`` > 1)."""
    world_size = os.environ.get("WORLD_SIZE", "1")
    if world_size.strip() not in ("", "0", "1"):
        raise click.UsageError(f"`{command}` runs in one process, but WORLD_SIZE is {world_size}: run it without "
                               "torchrun, and launch only the training stages (teacher, distill, adapt) under torchrun")


def common_options(command: Callable[..., Any]) -> Callable[..., Any]:
    """The options every stage command takes."""
    options = [
        click.option("--config", "config_path", required=True, type=click.Path(path_type=Path),
                     help="Training configuration (YAML), e.g. etc/training/small.yaml."),
        click.option("--workdir", required=True, type=click.Path(file_okay=False, path_type=Path),
                     help="Output folder: checkpoints/ and the bundle."),
        click.option("--data", type=click.Path(file_okay=False, path_type=Path), default=None,
                     help="Dataset root with swath_mpr/ and full_ipr/ (default: WORKDIR/datasets)."),
        device_option(),
        click.option("--resume", is_flag=True, help="Continue from the last checkpoint of each head."),
    ]
    for option in reversed(options):
        command = option(command)
    return command


def head_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """The --head option of the training stages."""
    return click.option("--head", type=click.Choice([*HEADS, "both"]), default="both", show_default=True,
                        help="Train the classifier, the regressor or both.")(command)


def invoke(stage: str, *, config_path: Path, head: str = "both", **options: Any) -> dict[str, Any]:
    """Load the configuration and run ``stage``, turning user errors into click errors."""
    heads = HEADS if head == "both" else (head,)
    try:
        return run_stage(stage, load_config(config_path), heads=heads, **options)
    except USER_ERRORS as error:
        raise click.ClickException(str(error)) from error
    finally:
        shutdown()


def stage_command(stage: str, summary: str, *, heads: bool = True) -> click.Command:
    """A click command running ``stage``."""

    def command(**options: Any) -> None:
        result = invoke(stage, **options)
        for key, value in result.items():
            if value is not None:
                click.echo(f"{stage} {key}: {getattr(value, 'directory', value)}")

    command.__doc__ = summary
    decorated = common_options(head_option(command) if heads else command)
    return click.command(stage, help=summary)(functools.wraps(command)(decorated))


@click.group("satpy-prenet-train")
@click.option("-v", "--verbose", count=True, help="More logging (-v: INFO, -vv: DEBUG).")
def main(verbose: int) -> None:
    """Train PRE-Net: teacher -> distill -> adapt -> export (docs/training.md)."""
    level = LOG_LEVELS[min(verbose, len(LOG_LEVELS) - 1)]
    logging.basicConfig(format="[%(asctime)s %(levelname)s %(name)s] %(message)s")
    logging.getLogger().setLevel(level)


main.add_command(stage_command("teacher", "Train the multimodal teacher on Swath-MPR."))
main.add_command(stage_command("distill", "Stage I: distil the IR-only student from the teacher on Swath-MPR."))
main.add_command(stage_command("adapt", "Stage II: adapt the student to Full-IPR with LoRA and MaskTune."))
main.add_command(stage_command("direct", "Baseline: fit the same student to Full-IPR alone (no teacher, no LoRA)."))
main.add_command(click.option(
    "--from", "source", type=click.Choice(EXPORT_SOURCES), default="adapt", show_default=True,
    help="Heads to export: PRE-Net's adapted heads (prenet-*.safetensors) or the direct fit (direct-*).")(
    stage_command("export", "Merge LoRA, calibrate, test and write the weights bundle.", heads=False)))


_SOURCES_HELP = "Folder of the source files (AGRI L1, GMI 1C, DPR 2A, CLDAS, DEM), searched recursively."
_SCHEDULER_HELP = "Address of a running dask scheduler to run the simulation and build on (e.g. tcp://10.0.0.5:8786)."
_WORKERS_HELP = "Worker processes of a local dask cluster [default: one per CPU]; 0 runs serially in this process."


@main.command("build")
@click.option("--config", "config_path", required=True, type=click.Path(path_type=Path), help="Training configuration.")
@click.option("--sources", required=True, type=click.Path(file_okay=False, path_type=Path), help=_SOURCES_HELP)
@click.option("--workdir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Work folder; the stores go to WORKDIR/datasets unless --data is given.")
@click.option("--data", type=click.Path(file_okay=False, path_type=Path), default=None, help="Dataset root.")
@click.option("--scheduler", default=None, help=_SCHEDULER_HELP)
@click.option("--workers", type=click.IntRange(min=0), default=None, help=_WORKERS_HELP)
def build_command(config_path: Path, sources: Path, workdir: Path, data: Path | None, scheduler: str | None,
                  workers: int | None) -> None:
    """Collocate the sources into the Swath-MPR and Full-IPR stores (resumes an interrupted build)."""
    refuse_torchrun("build")
    if scheduler is not None and workers is not None:
        raise click.UsageError("give at most one of --scheduler and --workers")
    try:
        report = build(load_config(config_path), sources, data or default_data(workdir), workers=workers,
                       scheduler=scheduler)
    except USER_ERRORS as error:
        raise click.ClickException(str(error)) from error
    for store, count in sorted(report.tiles.items()):
        click.echo(f"{store}: {count} tiles")
    click.echo(f"skipped: {dict(report.skipped)}")


@main.command("all")
@click.option("--config", "config_path", required=True, type=click.Path(path_type=Path), help="Training configuration.")
@click.option("--workdir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Work folder: archive/ (simulated), datasets/, checkpoints/ and the bundle.")
@click.option("--sources", type=click.Path(file_okay=False, path_type=Path), default=None, help=_SOURCES_HELP)
@click.option("--simulate", is_flag=True, help="Simulate the sources first (the config's `simulate` section).")
@device_option()
@click.option("--resume", is_flag=True, help="Continue an interrupted run.")
@click.option("--scheduler", default=None, help=_SCHEDULER_HELP)
@click.option("--workers", type=click.IntRange(min=0), default=None, help=_WORKERS_HELP)
def all_command(config_path: Path, workdir: Path, sources: Path | None, simulate: bool, device: str,
                resume: bool, scheduler: str | None, workers: int | None) -> None:
    """Run build -> teacher -> distill -> adapt -> export (after simulating the sources with --simulate).

    Progress bars and each step's duration are shown at every verbosity.
    """
    refuse_torchrun("all")
    if simulate == (sources is not None):
        raise click.UsageError("give exactly one of --sources and --simulate")
    if scheduler is not None and workers is not None:
        raise click.UsageError("give at most one of --scheduler and --workers")
    try:
        result = run_all(load_config(config_path), workdir, sources=sources, simulate=simulate, resume=resume,
                         device=device, progress=True,
                         on_step=lambda name, seconds: click.echo(f"{name}: {seconds:.1f} s"), workers=workers,
                         scheduler=scheduler)
    except USER_ERRORS as error:
        raise click.ClickException(str(error)) from error
    finally:
        shutdown()
    click.echo(f"steps (s): {result['seconds']}")
    click.echo(f"bundle: {result['bundle']}")


@main.command("baseline")
@click.option("--config", "config_path", required=True, type=click.Path(path_type=Path),
              help="Training configuration: the trees take its model bands.")
@click.option("--workdir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder of baseline-trees.json and baseline-threshold.json.")
@click.option("--data", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Dataset root with full_ipr/ (default: WORKDIR/datasets).")
@click.option("--max-pixels", default=1_000_000, show_default=True, type=click.IntRange(min=1),
              help="Labelled pixels sampled from the train split.")
@click.option("--seed", default=0, show_default=True, type=int, help="Seed of the sample and of LightGBM.")
def baseline_command(config_path: Path, workdir: Path, data: Path | None, max_pixels: int, seed: int) -> None:
    """Fit the IR baselines (trees, best 10.8 um threshold) on Full-IPR train and score them on validation.

    GPI and the auto-estimator, which need no fitting, are scored beside them.
    """
    from satpy_prenet.evaluation.evaluate import evaluate_store
    from satpy_prenet.evaluation.methods import RULES, load_method

    refuse_torchrun("baseline")
    root = data or default_data(workdir)
    try:
        start = time.perf_counter()
        fitted = fit_baselines(root, workdir, load_config(config_path).model.bands, max_pixels=max_pixels,
                               seed=seed)
        seconds = time.perf_counter() - start
        methods = [load_method(str(path)) for path in (fitted.trees_path, fitted.threshold_path, *RULES)]
        table = evaluate_store(root, methods, split="validation", progress=False, fss=False).table()
    except USER_ERRORS as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"trees: {fitted.trees_path} ({fitted.trees.provenance['n_pixels']} pixels, {seconds:.1f} s)")
    click.echo(f"threshold: {fitted.threshold_path} ({fitted.threshold.threshold_k:g} K, "
               f"{fitted.threshold.rate_mm_h:.2f} mm/h)")
    click.echo(f"validation scores ({store_path(root, FULL_IPR, 'validation')}):")
    click.echo(f"{'method':<18} {'CSI':>6} {'POD':>6} {'FAR':>6} {'CC':>6} {'RMSE':>7} {'pixels':>10}")
    for row in table:
        click.echo(f"{row['method']:<18} {row['csi']:6.3f} {row['pod']:6.3f} {row['far']:6.3f} {row['cc']:6.3f} "
                   f"{row['rmse']:7.3f} {row['n_pixels']:10d}")


@main.command("report")
@click.argument("workdir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Report folder [default: WORKDIR/report].")
def report_command(workdir: Path, out: Path | None) -> None:
    """Draw the learning curves of WORKDIR's stages and tabulate every epoch (loss terms, gradients, scores).

    Flags a stage that peaked in its first epoch or whose training loss did not fall.
    """
    from satpy_prenet.training.report import write_training_report

    try:
        folder = write_training_report(workdir, out)
    except (FileNotFoundError, ImportError) as error:
        raise click.ClickException(str(error)) from error
    click.echo(f"report: {folder}")


if __name__ == "__main__":
    main()
