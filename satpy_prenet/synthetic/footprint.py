# SPDX-License-Identifier: GPL-3.0-or-later
"""Where GPM footprints fall on simulated AGRI scenes: nearest scene in time, pixel indices, footprint averaging."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence

import numpy as np
from scipy import ndimage

from satpy_prenet.synthetic.geometry import EARTH_RADIUS_KM, lonlat_to_pixel
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
    radius = EARTH_RADIUS_KM

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


def stencil(rows: np.ndarray, cols: np.ndarray, shape: tuple[int, int], fwhm_km: float,
            pixel_km: tuple[float, float]) -> Iterator[tuple[np.ndarray, np.ndarray, float]]:
    """Pixels and weights of a Gaussian footprint of the given FWHM (km) around pixels ``(rows, cols)``.

    Yields, for each offset of the stencil (out to 2.5 sigma), the offset pixels (clipped to ``shape``) and the
    weight, unnormalised; a FWHM of 0 yields the centre pixels alone. Averaging a field at a few footprints this
    way is much cheaper than blurring the whole grid.
    """
    if fwhm_km <= 0:
        yield rows, cols, 1.0
        return
    sigma = [fwhm_km / FWHM_PER_SIGMA / size for size in pixel_km]
    half = [int(np.ceil(2.5 * s)) for s in sigma]
    for di in range(-half[0], half[0] + 1):
        for dj in range(-half[1], half[1] + 1):
            weight = float(np.exp(-0.5 * ((di / sigma[0]) ** 2 + (dj / sigma[1]) ** 2)))
            yield np.clip(rows + di, 0, shape[0] - 1), np.clip(cols + dj, 0, shape[1] - 1), weight


def crop(scene: SimulatedScene, rows: np.ndarray, cols: np.ndarray,
         margin: int) -> tuple[SimulatedScene, tuple[int, int]]:
    """The part of a scene around some pixels (local indices), with a margin; and its offset in the scene."""
    nlines, ncols = scene.window.shape
    r0, r1 = max(int(rows.min()) - margin, 0), min(int(rows.max()) + margin + 1, nlines)
    c0, c1 = max(int(cols.min()) - margin, 0), min(int(cols.max()) + margin + 1, ncols)
    win = scene.window
    return scene.subset((win.line0 + r0, win.line0 + r1, win.col0 + c0, win.col0 + c1)), (r0, c0)
