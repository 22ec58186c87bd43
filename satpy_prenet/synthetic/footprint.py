# SPDX-License-Identifier: GPL-3.0-or-later
"""Where GPM footprints fall on simulated AGRI scenes: nearest scene in time, pixel indices, footprint blur."""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from scipy import ndimage

from satpy_prenet.synthetic.geometry import lonlat_to_pixel
from satpy_prenet.synthetic.world import SimulatedScene

logger = logging.getLogger(__name__)

#: FWHM of a Gaussian is this many standard deviations.
FWHM_PER_SIGMA = 2.0 * np.sqrt(2.0 * np.log(2.0))


def nearest_scene(times: np.ndarray, scenes: Sequence[SimulatedScene]) -> np.ndarray:
    """Index into ``scenes`` of the scene whose start time is nearest to each time (``datetime64``).

    Raises:
        ValueError: If there are no scenes.
    """
    if not scenes:
        raise ValueError("no simulated scenes to observe")
    starts = np.array([np.datetime64(scene.start_time, "ms") for scene in scenes])
    gap = np.abs((np.asarray(times, dtype="datetime64[ms]")[:, None] - starts[None, :]).astype(np.int64))
    return np.argmin(gap, axis=1)


def pixel_index(scene: SimulatedScene, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Nearest pixel of the scene's window to each point: local ``(rows, cols)`` and a mask of usable points.

    A point is usable when the satellite sees it, it falls inside the window and the pixel is on the disc.
    Rows and columns of unusable points are 0.
    """
    line, col = lonlat_to_pixel(scene.platform, lon, lat)
    rows = np.rint(np.nan_to_num(line, nan=-1.0)).astype(np.int64) - scene.window.line0
    cols = np.rint(np.nan_to_num(col, nan=-1.0)).astype(np.int64) - scene.window.col0
    nlines, ncols = scene.window.shape
    valid = np.isfinite(line) & (rows >= 0) & (rows < nlines) & (cols >= 0) & (cols < ncols)
    rows = np.where(valid, rows, 0)
    cols = np.where(valid, cols, 0)
    valid &= np.isfinite(scene.lat[rows, cols])
    return rows, cols, valid


def pixel_size_km(scene: SimulatedScene) -> tuple[float, float]:
    """Median distance (km) between neighbouring pixels along lines and along columns of the window."""
    lat = np.deg2rad(scene.lat.astype(np.float64))
    lon = np.deg2rad(scene.lon.astype(np.float64))
    radius = 6371.0

    def spacing(axis: int) -> float:
        dlat = np.diff(lat, axis=axis)
        dlon = np.diff(lon, axis=axis)
        mean_lat = (lat[:-1, :] + lat[1:, :]) / 2 if axis == 0 else (lat[:, :-1] + lat[:, 1:]) / 2
        dist = radius * np.hypot(dlat, dlon * np.cos(mean_lat))
        dist = dist[np.isfinite(dist)]
        return float(np.median(dist)) if dist.size else 4.0

    return spacing(0), spacing(1)


def gaussian_blur(field: np.ndarray, fwhm_km: float, pixel_km: tuple[float, float]) -> np.ndarray:
    """Average a field with a Gaussian footprint of the given FWHM (km); NaN pixels (space) carry no weight."""
    sigma = tuple(fwhm_km / FWHM_PER_SIGMA / size for size in pixel_km)
    if max(sigma) < 0.3:
        return field
    finite = np.isfinite(field)
    weight = ndimage.gaussian_filter(finite.astype(np.float32), sigma, mode="nearest")
    total = ndimage.gaussian_filter(np.where(finite, field, 0.0).astype(np.float32), sigma, mode="nearest")
    with np.errstate(invalid="ignore", divide="ignore"):
        out = total / weight
    out[~finite] = np.nan
    return out.astype(np.float32)
