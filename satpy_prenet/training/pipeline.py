# SPDX-License-Identifier: GPL-3.0-or-later
"""The whole training in one call: (simulate ->) build -> teacher -> distill -> adapt -> export.

Layout of a work directory::

    <workdir>/archive/      the simulated source files (``--simulate`` only)
    <workdir>/datasets/     the Swath-MPR and Full-IPR stores (docs/training-data.md)
    <workdir>/checkpoints/  one folder per stage and head
    <workdir>/prenet-<preset>.safetensors   the bundle
    <workdir>/pipeline.json   how `run_all` was called and the seconds of each step (copied into the bundle)

Every step is resumable: a rerun with ``resume=True`` keeps the simulated archive if it is complete, lets the builder
skip its finished units, and continues every stage from its last checkpoint.

The simulation and the build run their tasks in this process or on dask.distributed (``workers``, ``scheduler``:
:func:`satpy_prenet.parallel.executor`) with the same files and stores.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from satpy_prenet.atomic import atomic_path
from satpy_prenet.parallel import Executor, executor
from satpy_prenet.training.builder import BuildConfig, BuildReport, Sources, build_datasets, discover_sources
from satpy_prenet.training.config import (
    HEADS,
    SIMULATE_KEYS,
    ConfigError,
    SimulateSettings,
    TrainingConfig,
    parse_build,
)
from satpy_prenet.training.export import PIPELINE_RECORD
from satpy_prenet.training.stages import PIPELINE, default_data, run_stage

LOG = logging.getLogger(__name__)

#: Kept in the archive folder: the ``simulate`` settings of its files, and whether all of them are on disk.
ARCHIVE_STATE = "simulated-archive.json"


def build_config(config: TrainingConfig) -> BuildConfig:
    """The builder's settings: the ``build`` section, with the model's bands unless the section names its own."""
    return parse_build(config.build, config.model, f"{config.source or 'training config'}: build")


def simulate_sources(config: TrainingConfig, folder: str | os.PathLike, *, progress: bool = True,
                     workers: int | None = 0, scheduler: str | None = None) -> Path:
    """Write the simulated archive of the ``simulate`` section under ``folder`` (kept if already complete).

    An interrupted simulation is simply run again (every file is written atomically under a deterministic name).
    ``workers`` and ``scheduler`` choose where the tasks run (:func:`satpy_prenet.parallel.executor`; default:
    serially in this process); the files are the same.

    Raises:
        ConfigError: If the section lacks a key or holds an unknown one, or ``folder`` holds a simulated archive of
            other settings (mixing two archives would mix two worlds).
    """
    with executor(workers=workers, scheduler=scheduler) as tasks:
        return _simulate(config, Path(folder), tasks, progress)


def _simulate(config: TrainingConfig, folder: Path, tasks: Executor, progress: bool) -> Path:
    """:func:`simulate_sources` on an open executor."""
    from satpy_prenet.synthetic.archive import simulate_archive  # the simulator is only needed here

    section = config.simulate
    settings = SimulateSettings.from_dict(section, f"{config.source or 'training config'}: simulate")
    marker = folder / ARCHIVE_STATE
    record = {key: str(section[key]) for key in SIMULATE_KEYS}
    state = json.loads(marker.read_text()) if marker.is_file() else None
    if state is not None and state["simulate"] != record:
        raise ConfigError(f"{folder} holds a simulated archive of other settings ({state['simulate']}); remove it or "
                          "simulate into another folder")
    if state is not None and state["complete"]:
        LOG.info("%s: simulated archive already complete", folder)
        return folder
    _write_state(marker, record, complete=False)
    started = time.perf_counter()
    archive = simulate_archive(folder, seed=settings.seed, start=settings.start, end=settings.end,
                               platform=settings.platform, progress=progress, executor=tasks)
    _write_state(marker, record, complete=True)
    LOG.info("simulated archive: %d AGRI, %d GMI, %d DPR, %d CLDAS files in %.0f s", len(archive.agri),
             len(archive.gmi), len(archive.dpr), len(archive.cldas), time.perf_counter() - started)
    return folder


def build(config: TrainingConfig, sources: str | os.PathLike | Sources, data: str | os.PathLike, *,
          progress: bool = True, workers: int | None = 0, scheduler: str | None = None) -> BuildReport:
    """Build (or resume building) the training stores from the files under ``sources``.

    ``workers`` and ``scheduler`` choose where the units are computed (:func:`satpy_prenet.parallel.executor`;
    default: serially in this process); the stores are the same.
    """
    with executor(workers=workers, scheduler=scheduler) as tasks:
        return _build(config, sources, data, tasks, progress)


def _build(config: TrainingConfig, sources: str | os.PathLike | Sources, data: str | os.PathLike, tasks: Executor,
           progress: bool) -> BuildReport:
    """:func:`build` on an open executor."""
    found = sources if isinstance(sources, Sources) else discover_sources(sources)
    report = build_datasets(found, data, build_config(config), progress=progress, executor=tasks)
    LOG.info("datasets: %s (skipped: %s)", report.tiles, report.skipped)
    return report


def run_all(config: TrainingConfig, workdir: str | os.PathLike, *, sources: str | os.PathLike | None = None,
            simulate: bool = False, heads: Sequence[str] = HEADS, resume: bool = False, device: str = "auto",
            progress: bool = True, on_step: Callable[[str, float], None] | None = None, workers: int | None = 0,
            scheduler: str | None = None) -> dict[str, Any]:
    """Run the whole training and return the bundle path and the time each step took.

    Args:
        config: The training configuration.
        workdir: Work directory (see the module notes).
        sources: Folder of the source files; with ``simulate`` the simulated archive is written there
            (default ``<workdir>/archive``).
        simulate: Simulate the archive of the configuration's ``simulate`` section first.
        heads: Heads to train.
        resume: Continue an interrupted run.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        progress: Show progress bars.
        on_step: Called with each step's name and duration in seconds.
        workers: Worker processes simulating and building (None: one per CPU; 0: serially in this process).
        scheduler: Address of a running dask scheduler to simulate and build on instead (excludes ``workers``).

    Raises:
        ConfigError: If neither ``sources`` nor ``simulate`` is given.
    """
    workdir = Path(workdir)
    if sources is None and not simulate:
        raise ConfigError("give the source files' folder, or simulate them")
    sources = Path(sources) if sources is not None else workdir / "archive"
    seconds: dict[str, float] = {}

    record = {"command": "satpy-prenet-train all", "config_file": str(config.source) if config.source else None,
              "simulate": simulate, "sources": str(sources), "seconds": seconds}

    def timed(name: str, step: Callable[[], Any]) -> Any:
        started = time.perf_counter()
        result = step()
        seconds[name] = round(time.perf_counter() - started, 1)
        LOG.info("%s took %.1f s", name, seconds[name])
        with atomic_path(workdir / PIPELINE_RECORD) as partial:  # read by export into the bundle's provenance
            Path(partial).write_text(json.dumps(record, indent=1))
        if on_step is not None:
            on_step(name, seconds[name])
        return result

    data = default_data(workdir)
    with executor(workers=workers, scheduler=scheduler) as tasks:  # closed before the training stages
        if simulate:
            timed("simulate", lambda: _simulate(config, sources, tasks, progress))
        timed("build", lambda: _build(config, sources, data, tasks, progress))
    result: dict[str, Any] = {}
    for name in PIPELINE:
        result = timed(name, lambda name=name: run_stage(name, config, workdir, data=data, heads=heads,
                                                         resume=resume, device=device))
    return {"bundle": result["bundle"], "seconds": seconds}


def _write_state(marker: Path, record: dict[str, str], *, complete: bool) -> None:
    """Record (atomically) the settings of the simulated archive in ``marker`` and whether it is complete."""
    marker.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(marker) as partial:
        Path(partial).write_text(json.dumps({"simulate": record, "complete": complete}))
