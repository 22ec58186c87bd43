# SPDX-License-Identifier: GPL-3.0-or-later
"""What a source unit gives back: its tiles by store, and whether it is to be retried for a missing partner."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from satpy_prenet.data import stores
from satpy_prenet.training.builder.config import BuildReport


@dataclass
class Unit:
    """The result of running one source unit.

    Attributes:
        tiles: Tiles by (kind, split).
        missing: The skip reason of a missing partner file (:data:`~.progress.RETRIED`) when the unit, or some of
            its tiles, are to be retried by the next run; None when the unit is finished.
    """

    tiles: dict[tuple[str, str], list[xr.Dataset]]
    missing: str | None = None

    @classmethod
    def skipped(cls, report: BuildReport, reason: str) -> Unit:
        """A unit skipped whole for a missing partner (counted in the report, retried by the next run)."""
        report.skip(reason)
        return cls({}, reason)


def one_tile(data: dict, axes: dict, per_tile: dict) -> xr.Dataset:
    """A dataset of one tile: variables and per-tile coordinates get a leading ``tile`` dimension of length 1."""
    variables = {name: ((stores.TILE_DIM, *dims), np.asarray(values)[None]) for name, (dims, values) in data.items()}
    coords = {**axes, **{name: (stores.TILE_DIM, np.asarray([value])) for name, value in per_tile.items()}}
    return xr.Dataset(variables, coords=coords)
