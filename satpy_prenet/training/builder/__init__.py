# SPDX-License-Identifier: GPL-3.0-or-later
"""Building the training datasets (Swath-MPR and Full-IPR stores) from AGRI, GMI, DPR, CLDAS and DEM files.

The layout written is the one of docs/training-data.md (via :mod:`satpy_prenet.data.stores`); the collocation
methods are those of :mod:`satpy_prenet.data.collocation`. The build works in source units, each committed on its
own, in time order: one unit per DPR granule (its swath tiles, at the granule start) and one per AGRI file (its disc
tiles, at its nominal start). After each unit the tile count of every store is written to ``<root>/progress.json``
(atomically, :mod:`.progress`); a rerun first cuts every store back to the last recorded counts (undoing a
half-written unit) and skips the finished units, so that an interrupted build resumes to exactly the stores an
uninterrupted one writes. Units that missed a partner file are retried by the next run.

The units can run in parallel (on dask.distributed, :mod:`satpy_prenet.parallel`): workers compute them, this process
appends and commits them in the order above, so the stores and the record are those of a serial build.

Modules: :mod:`.config` (settings, inputs, report), :mod:`.indexes` (source indexes, splits), :mod:`.progress`
(commit record, resume), :mod:`.inputs` (shared inputs and caches), :mod:`.swath` and :mod:`.disc` (the units),
:mod:`.units` (a unit as a task).

Skip or abort (see docs/training-data.md, "Builder behaviour"): a file that cannot be read as its product, or that
is of the wrong satellite, aborts the build with a :class:`BuildError` (or the reader's
:class:`~satpy_prenet.data.errors.SourceFileError`) naming it, because a bad archive should be repaired, not silently
thinned. Missing partners and empty data skip the unit or tile with a logged WARNING and a count in the
:class:`BuildReport`.
"""

from __future__ import annotations

import collections
import itertools
import logging
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import xarray as xr
from tqdm import tqdm

from satpy_prenet.channels import bands
from satpy_prenet.data import collocation as col
from satpy_prenet.data import stores
from satpy_prenet.evaluation.metrics import RAIN_THRESHOLD
from satpy_prenet.parallel import Executor, SerialExecutor
from satpy_prenet.training.builder.config import (
    BuildConfig,
    BuildError,
    BuildReport,
    Sources,
    discover_sources,
)
from satpy_prenet.training.builder.indexes import gpm_start, newest_by_granule
from satpy_prenet.training.builder.inputs import Inputs
from satpy_prenet.training.builder.progress import PROGRESS_FILE, Progress, counts
from satpy_prenet.training.builder.tiles import Unit
from satpy_prenet.training.builder.units import UnitResult, UnitSpec, forget, run_unit

__all__ = ["PROGRESS_FILE", "BuildConfig", "BuildError", "BuildReport", "Sources",
           "build_datasets", "discover_sources"]

LOG = logging.getLogger(__name__)


def build_datasets(sources: Sources, root: str | Path, config: BuildConfig | None = None, *,
                   progress: bool = True, executor: Executor | None = None) -> BuildReport:
    """Build (or resume building) the Swath-MPR and Full-IPR stores under ``root``.

    The executor's tasks compute the units (a few ahead of the one being written); this process appends them to the
    stores and commits them in time order, so the stores and the commit record are those of a serial build.

    Args:
        sources: The input files (:func:`discover_sources`).
        root: Dataset root; stores go to ``<root>/<kind>/<split>.zarr``.
        config: Build settings (default :class:`BuildConfig`).
        progress: Show a tqdm progress bar over the source units.
        executor: Runs the units (:func:`satpy_prenet.parallel.executor`); default: serially in this process.

    Returns:
        What the build did.

    Raises:
        BuildError: For unusable inputs (see the module notes), for a root that was started with other
            settings or other split boundaries, and for a store that lost committed tiles.
        SourceFileError: A reader's error for a malformed GPM, CLDAS or DEM file.
    """
    started = time.monotonic()
    config = config or BuildConfig()
    executor = executor or SerialExecutor()
    report, root = BuildReport(), Path(root)
    inputs = Inputs(sources, config, report, set())
    attrs = {"ir_wavelengths_um": [band.wavelength for band in bands(config.bands)],
             "build_config": config.to_dict(), "rain_threshold_mm_h": RAIN_THRESHOLD,
             "split_boundaries": {key: value.isoformat() for key, value in inputs.boundaries.items()}}
    record = Progress(root, {"config": config.to_dict(), "split_boundaries": attrs["split_boundaries"]})
    inputs.simulation.update(record.simulation)
    units = _units(inputs, sources)
    todo = [(unit_id, spec) for unit_id, spec in units if not record.finished(unit_id)]
    report.units_resumed = len(units) - len(todo)
    token = uuid.uuid4().hex
    results = _ahead(executor, [(token, sources, config, spec) for _, spec in todo])
    try:
        for (unit_id, _), result in tqdm(zip(todo, results, strict=True), total=len(todo),
                                         desc="building training tiles", unit="source", disable=not progress):
            for reason, count in result.skipped.items():
                report.skip(reason, count)
            inputs.simulation.update(result.simulation)
            written = record.written(unit_id)
            written |= _append(root, result.unit, written, attrs, report)
            record.commit(unit_id, result.unit.missing, written, inputs.simulation)
            report.units_done += 1
    finally:
        forget(token)
    _mark_simulated(root, inputs.simulation)
    report.tiles = counts(root)
    report.seconds = time.monotonic() - started
    LOG.info("Build finished: %s tiles, %s skipped", report.tiles, report.skipped)
    return report


def _ahead(executor: Executor, calls: list[tuple]) -> Iterator[UnitResult]:
    """The results of :func:`run_unit` for each call, in order, with ``executor.ahead`` more tasks submitted."""
    calls_left = iter(calls)
    pending = collections.deque(executor.submit(run_unit, *args)
                                for args in itertools.islice(calls_left, executor.ahead + 1))
    while pending:
        yield pending.popleft().result()
        pending.extend(executor.submit(run_unit, *args) for args in itertools.islice(calls_left, 1))


def _units(inputs: Inputs, sources: Sources) -> list[tuple[str, UnitSpec]]:
    """The source units (id, spec) in time order: DPR granules at their start, AGRI files at their nominal start."""
    gmi = newest_by_granule(sources.gmi)
    units = [(gpm_start(path), f"swath:{path.name}", UnitSpec("swath", path, gmi.get(granule)))
             for granule, path in newest_by_granule(sources.dpr).items()]
    units += [(name.start_time, f"disc:{path.name}", UnitSpec("disc", path))
              for path, name in inputs.agri_names.items()]
    return [(unit_id, spec) for _, unit_id, spec in sorted(units, key=lambda item: item[:2])]


def _append(root: Path, unit: Unit, written: set[str], attrs: dict, report: BuildReport) -> set[str]:
    """Append a unit's tiles (leaving out those an earlier run of the unit wrote); return the ids appended."""
    appended = set()
    for (kind, split), tiles in sorted(unit.tiles.items()):
        tiles = [tile for tile in tiles if str(tile["sample_id"].values[0]) not in written]
        if not tiles:
            continue
        store_attrs = {**attrs, "split": split}
        if kind == stores.SWATH_MPR:
            store_attrs["pr_no_echo_dbz"] = col.PR_NO_ECHO_DBZ
        stores.append_tiles(stores.store_path(root, kind, split), xr.concat(tiles, dim=stores.TILE_DIM), kind=kind,
                            attrs=store_attrs)
        appended.update(str(tile["sample_id"].values[0]) for tile in tiles)
        key = f"{kind}/{split}"
        report.added[key] = report.added.get(key, 0) + len(tiles)
    return appended


def _mark_simulated(root: Path, simulation: set[str]) -> None:
    """Mark every store as simulated, with the inputs' simulation texts, when any input was simulated."""
    if not simulation:
        return
    for kind in stores.KINDS:
        for split in stores.SPLITS:
            path = stores.store_path(root, kind, split)
            if stores.tile_count(path) is not None:
                stores.update_attrs(path, {"simulated": True, "simulation": sorted(simulation)})
