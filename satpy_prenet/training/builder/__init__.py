# SPDX-License-Identifier: GPL-3.0-or-later
"""Building the training datasets (Swath-MPR and Full-IPR stores) from AGRI, GMI, DPR, CLDAS and DEM files.

The layout written is the one of docs/training-data.md (via :mod:`satpy_prenet.data.stores`); the collocation
methods are those of :mod:`satpy_prenet.data.collocation`. The build works in source units, each committed on its
own, in time order: one unit per DPR granule (its swath tiles, at the granule start) and one per AGRI file (its disc
tiles, at its nominal start). After each unit the tile count of every store is written to ``<root>/progress.json``
(atomically, :mod:`.progress`); a rerun first cuts every store back to the last recorded counts (undoing a
half-written unit) and skips the finished units, so that an interrupted build resumes to exactly the stores an
uninterrupted one writes. Units that missed a partner file are retried by the next run.

Modules: :mod:`.config` (settings, inputs, report), :mod:`.indexes` (source indexes, splits), :mod:`.progress`
(commit record, resume), :mod:`.inputs` (shared inputs and caches), :mod:`.swath` and :mod:`.disc` (the units).

Skip or abort (see docs/training-data.md, "Builder behaviour"): a file that cannot be read as its product, or that
is of the wrong satellite, aborts the build with a :class:`BuildError` (or the reader's
:class:`~satpy_prenet.data.errors.SourceFileError`) naming it, because a bad archive should be repaired, not silently
thinned. Missing partners and empty data skip the unit or tile with a logged WARNING and a count in the
:class:`BuildReport`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path

import xarray as xr
from tqdm import tqdm

from satpy_prenet.channels import bands
from satpy_prenet.data import collocation as col
from satpy_prenet.data import stores
from satpy_prenet.training.builder.config import (
    RAIN_THRESHOLD,
    BuildConfig,
    BuildError,
    BuildReport,
    Sources,
    discover_sources,
)
from satpy_prenet.training.builder.disc import disc_unit
from satpy_prenet.training.builder.indexes import gpm_start, newest_by_granule
from satpy_prenet.training.builder.inputs import Inputs
from satpy_prenet.training.builder.progress import PROGRESS_FILE, Progress, counts
from satpy_prenet.training.builder.swath import swath_unit
from satpy_prenet.training.builder.tiles import Unit

__all__ = ["PROGRESS_FILE", "RAIN_THRESHOLD", "BuildConfig", "BuildError", "BuildReport", "Sources",
           "build_datasets", "discover_sources"]

LOG = logging.getLogger(__name__)


def build_datasets(sources: Sources, root: str | Path, config: BuildConfig | None = None, *,
                   progress: bool = True) -> BuildReport:
    """Build (or resume building) the Swath-MPR and Full-IPR stores under ``root``.

    Args:
        sources: The input files (:func:`discover_sources`).
        root: Dataset root; stores go to ``<root>/<kind>/<split>.zarr``.
        config: Build settings (default :class:`BuildConfig`).
        progress: Show a tqdm progress bar over the source units.

    Returns:
        What the build did.

    Raises:
        BuildError: For unusable inputs (see the module notes), for a root that was started with other
            settings or other split boundaries, and for a store that lost committed tiles.
        SourceFileError: A reader's error for a malformed GPM, CLDAS or DEM file.
    """
    started = time.monotonic()
    config = config or BuildConfig()
    report, root = BuildReport(), Path(root)
    inputs = Inputs(sources, config, report, set())
    attrs = {"ir_wavelengths_um": [band.wavelength for band in bands(config.bands)],
             "build_config": config.to_dict(), "rain_threshold_mm_h": RAIN_THRESHOLD,
             "split_boundaries": {key: value.isoformat() for key, value in inputs.boundaries.items()}}
    record = Progress(root, {"config": config.to_dict(), "split_boundaries": attrs["split_boundaries"]})
    inputs.simulation.update(record.simulation)
    units = _units(inputs, sources)
    for unit_id, run in tqdm(units, desc="building training tiles", unit="source", disable=not progress):
        if record.finished(unit_id):
            report.units_resumed += 1
            continue
        written = record.written(unit_id)
        unit = run()
        written |= _append(root, unit, written, attrs, report)
        record.commit(unit_id, unit.missing, written, inputs.simulation)
        report.units_done += 1
    _mark_simulated(root, inputs.simulation)
    report.tiles = counts(root)
    report.seconds = time.monotonic() - started
    LOG.info("Build finished: %s tiles, %s skipped", report.tiles, report.skipped)
    return report


def _units(inputs: Inputs, sources: Sources) -> list[tuple[str, Callable[[], Unit]]]:
    """The source units (id, run) in time order: DPR granules at their start, AGRI files at their nominal start."""
    gmi = newest_by_granule(sources.gmi)
    units = [(gpm_start(path), f"swath:{path.name}", lambda path=path, granule=granule:
              swath_unit(inputs, path, gmi.get(granule)))
             for granule, path in newest_by_granule(sources.dpr).items()]
    units += [(name.start_time, f"disc:{path.name}", lambda path=path: disc_unit(inputs, path))
              for path, name in inputs.agri_names.items()]
    return [(unit_id, run) for _, unit_id, run in sorted(units, key=lambda item: item[:2])]


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
