# SPDX-License-Identifier: GPL-3.0-or-later
"""Indexes of the build's sources (GPM granules, CLDAS hours, AGRI names) and the split boundaries."""

from __future__ import annotations

import datetime as dt
import logging
from pathlib import Path

import numpy as np

from satpy_prenet.agri_files import AGRIFileError, AGRIName, parse_agri_name
from satpy_prenet.data.cldas import parse_cldas_name
from satpy_prenet.data.gpm import parse_gpm_filename
from satpy_prenet.training.builder.config import BuildConfig, BuildError

LOG = logging.getLogger(__name__)


def agri_name(path: Path) -> AGRIName:
    """Parse an AGRI file name, turning a bad name (e.g. an unsupported satellite) into a BuildError."""
    try:
        return parse_agri_name(path)
    except AGRIFileError as err:
        raise BuildError(path, str(err).removeprefix(f"{path}: ")) from err


def gpm_start(path: Path) -> dt.datetime:
    """Start time of a GPM file from its name (the granule start)."""
    return _gpm_name(path).start


def _gpm_name(path: Path):
    try:
        return parse_gpm_filename(path.name)
    except ValueError as err:
        raise BuildError(path, str(err)) from err


def newest_by_granule(paths: list[Path]) -> dict[int, Path]:
    """GPM files by granule number (from the name); of several files of one granule the newest product version.

    Duplicates (V06 and V07 of one orbit, or a reprocessed copy) are dropped with a WARNING naming the file; among
    files of equal version the last by name and path is kept.
    """
    chosen: dict[int, Path] = {}
    for path in sorted(paths, key=lambda item: (_gpm_name(item).version, item.name, str(item))):
        granule = _gpm_name(path).granule
        if granule in chosen:
            LOG.warning("%s: another file of granule %s (%s) is as new or newer; this one is not used",
                        chosen[granule], granule, path)
        chosen[granule] = path
    return chosen


def cldas_index(paths: list[Path]) -> dict[dt.datetime, Path]:
    """CLDAS files by data time; of several for one hour, NRT is preferred to RT, then the latest production."""
    chosen: dict[dt.datetime, tuple[tuple, Path]] = {}
    for path in paths:
        name = parse_cldas_name(path)
        rank = (name.product == "NRT", name.production_time)
        if name.data_time not in chosen or rank > chosen[name.data_time][0]:
            chosen[name.data_time] = (rank, path)
    return {data_time: path for data_time, (_, path) in chosen.items()}


def split_boundaries(config: BuildConfig, times: list[dt.datetime]) -> dict[str, dt.datetime]:
    """Start times of the validation and test splits: given, or at fractions of the sources' time span.

    ``times`` are the source times (AGRI nominal starts from the names, GPM granule starts). A fraction of 0 gives
    an empty split: its boundary lies after the last source.
    """
    first, last = (min(times), max(times)) if times else (dt.datetime(2000, 1, 1), dt.datetime(2000, 1, 1))
    span, after_last = last - first, last + dt.timedelta(seconds=1)
    test = after_last if config.test_fraction == 0 else _after(first + span * (1.0 - config.test_fraction), first)
    validation = test if config.validation_fraction == 0 else \
        _after(first + span * (1.0 - config.validation_fraction - config.test_fraction), first)
    if config.validation_from is not None:
        validation = dt.datetime.fromisoformat(config.validation_from)
    if config.test_from is not None:
        test = dt.datetime.fromisoformat(config.test_from)
    if test < validation:
        raise BuildError("<config>", f"test_from {test} lies before validation_from {validation}")
    return {"validation_from": validation.replace(microsecond=0), "test_from": test.replace(microsecond=0)}


def _after(value: dt.datetime, first: dt.datetime) -> dt.datetime:
    """Push a fraction boundary past the first source time, so the earliest source always trains."""
    return max(value, first + dt.timedelta(seconds=1))


def to_datetime(value: np.datetime64) -> dt.datetime:
    """A datetime64 as a naive datetime (UTC)."""
    return dt.datetime(1970, 1, 1) + dt.timedelta(microseconds=int(value.astype("datetime64[us]").astype(np.int64)))
