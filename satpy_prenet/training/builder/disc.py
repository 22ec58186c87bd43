# SPDX-License-Identifier: GPL-3.0-or-later
"""Full-IPR units: the disc tiles of one AGRI file (with the CLDAS field of its hour)."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from satpy_prenet.data import collocation as col
from satpy_prenet.data import stores
from satpy_prenet.training.builder.inputs import Inputs, rain_fraction
from satpy_prenet.training.builder.tiles import Unit, one_tile

LOG = logging.getLogger(__name__)


def disc_unit(inputs: Inputs, agri_path: Path) -> Unit:
    """Full-IPR tiles of one AGRI file.

    The file's nominal start (from its name) gives the tiles' ``time``, sample id, split and label hour.
    """
    config, report = inputs.config, inputs.report
    name = inputs.agri_names[agri_path]
    label_time = col.cldas_data_time(name.start_time)
    if inputs.label(label_time) is None:
        LOG.warning("%s: no CLDAS file for the hour ending %s; file skipped", agri_path, label_time)
        return Unit.skipped(report, "no_label")
    values = inputs.agri_values(agri_path)
    if values is None:
        return Unit({})
    if inputs.in_gap(name.start_time):
        report.skip("split_gap")
        return Unit({})
    area = inputs.agri(agri_path).attrs["area"]
    lons, lats = area.get_lonlats()
    label = col.label_at(inputs.label(label_time), np.where(np.isfinite(lons), lons, np.nan),
                         np.where(np.isfinite(lats), lats, np.nan))
    kept = []
    for line, column in _positions(values.shape[1:], config.disc_tile_size, config.disc_tile_stride):
        window = _window(line, column, config.disc_tile_size)
        reason = inputs.tile_filter(label[window], values[(slice(None), *window)])
        if reason:
            report.skip(reason)
        else:
            kept.append((line, column, rain_fraction(label[window])))
    kept = _limit(kept, config.max_disc_tiles_per_file, report)
    line0, column0 = col.disc_offsets(area)
    tiles = []
    for line, column, _ in kept:
        window = _window(line, column, config.disc_tile_size)
        disc_line, disc_column = line0 + line, column0 + column
        per_tile = {"sample_id": f"disc:{name.platform}:{name.start_time:%Y%m%dT%H%M}:{disc_line}:{disc_column}",
                    "time": np.datetime64(name.start_time, "ns"), "platform": name.platform,
                    "line": np.int32(disc_line), "column": np.int32(disc_column),
                    "agri_file": agri_path.name, "label_file": inputs.label_name(label_time)}
        data = {"ir": (("ir_band", "y", "x"), values[(slice(None), *window)].astype(np.float32)),
                "label": (("y", "x"), label[window].astype(np.float32))}
        tiles.append(one_tile(data, {"ir_band": list(config.bands)}, per_tile))
    return Unit({(stores.FULL_IPR, inputs.split_of(name.start_time)): tiles})


def _window(line: int, column: int, size: int) -> tuple[slice, slice]:
    """File-relative slices of the disc tile starting at (line, column)."""
    return slice(line, line + size), slice(column, column + size)


def _positions(shape: tuple[int, int], size: int, stride: int | None) -> Iterator[tuple[int, int]]:
    """File-relative (line, column) of the disc tiles that fit in an AGRI file."""
    stride = stride or size
    for line in range(0, shape[0] - size + 1, stride):
        for column in range(0, shape[1] - size + 1, stride):
            yield line, column


def _limit(kept: list[tuple[int, int, float]], limit: int | None, report) -> list[tuple[int, int, float]]:
    """At most ``limit`` tiles, the rainiest (by labelled-pixel rain fraction), back in raster order."""
    if limit is None or len(kept) <= limit:
        return kept
    report.skip("tile_limit", len(kept) - limit)
    rainiest = sorted(kept, key=lambda item: (-item[2], item[0], item[1]))[:limit]
    return sorted(rainiest)

