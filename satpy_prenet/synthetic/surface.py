# SPDX-License-Identifier: GPL-3.0-or-later
"""The Earth-fixed surface: land/sea, elevation (a high plateau and ranges), bare soil, seeded per world.

Continents sit roughly where the real ones are (so FY-4A and FY-4B see a large northern landmass with a
high plateau to the north-west of the sub-satellite point, open ocean to the east and a southern
continent), with coastlines and relief from power-law noise. The fields live on a global 0.125 degree
grid and are sampled bilinearly at pixel longitude/latitude, so both platforms see the same surface.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass

import numpy as np

from satpy_prenet.synthetic.fields import powerlaw_field, rng_for

logger = logging.getLogger(__name__)

#: Grid spacing of the global surface grid (degrees).
GRID_STEP = 0.125
_NLON = int(round(360 / GRID_STEP))
_NLAT = int(round(180 / GRID_STEP))
_EARTH_RADIUS_M = 6371000.0

# (lat, lon, lat semi-axis, lon semi-axis, rotation deg) of land blobs, coarse real-world geography.
_CONTINENTS = (
    (52, 85, 18, 55, 0), (35, 100, 15, 25, 0), (60, 130, 12, 30, 0), (48, 20, 12, 25, 0),
    (20, 78, 11, 9, 0), (16, 102, 10, 6, 0), (24, 47, 9, 11, 0), (30, 113, 12, 11, 0),
    (5, 20, 28, 22, 0), (-15, 27, 14, 13, 0), (-25, 134, 11, 17, 0), (-42, 146, 2, 2, 0),
    (0, 114, 4, 4, 0), (-1, 101, 6, 2, 45), (-5, 141, 3, 8, 0), (12, 123, 6, 3, 0),
    (36, 137, 8, 2.5, 40), (64, 160, 8, 14, 0), (-41, 173, 5, 2, 35), (-8, 115, 1.2, 8, 0),
    (45, -100, 18, 30, 0), (62, -150, 8, 16, 0), (-15, -60, 25, 15, 0), (-86, 0, 9, 400, 0),
    (75, -40, 8, 20, 0),
)
# High plateau (lat, lon, lat semi-axis, lon semi-axis, height km) - a Tibet-like block.
_PLATEAUS = ((33.5, 87, 5.5, 14, 4.7), (42, 100, 6, 12, 1.4), (-25, 27, 6, 6, 1.2), (38, -110, 6, 8, 1.8))
# Mountain belts (lat, lon, lat semi-axis, lon semi-axis, rotation deg, ridge height km).
_BELTS = (
    (28.5, 88, 1.8, 15, -8, 4.0), (37, 75, 4, 9, 0, 3.5), (42, 85, 2.5, 12, 0, 3.0), (47, 10, 3, 10, 0, 2.0),
    (28, 103, 7, 3, 0, 2.5), (36, 137, 5, 1.5, 40, 2.0), (50, -118, 12, 4, 0, 2.5), (-20, -68, 25, 3, 0, 4.0),
    (-5, 141, 1.5, 6, 0, 3.0), (40, 45, 4, 10, 0, 2.5), (-1, 101, 4, 1.2, 45, 2.0),
)
# Deserts (lat, lon, lat semi-axis, lon semi-axis): bare soil (bright, low 8.5 um emissivity).
_DESERTS = ((23, 10, 8, 22), (23, 47, 7, 8), (42, 103, 4, 10), (39, 83, 3, 7), (-25, 128, 7, 10), (40, 60, 5, 8))


@dataclass(frozen=True)
class GlobalSurface:
    """Global surface grids (rows from south to north, columns from 180 W eastwards)."""

    land: np.ndarray  # continuous land indicator, > 0 is land
    elevation: np.ndarray  # km above sea level (0 over sea)
    bare: np.ndarray  # bare-soil fraction 0-1
    dhdx: np.ndarray  # eastward elevation slope (m/m)
    dhdy: np.ndarray  # northward elevation slope (m/m)

    def sample(self, name: str, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
        """Bilinear value of grid ``name`` at points (NaN-safe: NaN points give 0)."""
        return bilinear(getattr(self, name), lon, lat)


def _grid_coords() -> tuple[np.ndarray, np.ndarray]:
    lon = -180.0 + GRID_STEP * (np.arange(_NLON) + 0.5)
    lat = -90.0 + GRID_STEP * (np.arange(_NLAT) + 0.5)
    return lon.astype(np.float32), lat.astype(np.float32)


def _max_of_blobs(specs, lon: np.ndarray, lat: np.ndarray, *, rotated: bool, profile=None) -> np.ndarray:
    """Maximum over Gaussian-like bumps on the lon/lat grid, each computed inside its 3-sigma box.

    ``profile(bump, spec)`` maps a bump (0-1) to the value it contributes (default: the bump itself).
    """
    out = np.zeros((lat.size, lon.size), np.float32)
    step = lon[1] - lon[0]
    for spec in specs:
        lat0, lon0, a_lat, a_lon = spec[:4]
        rot = np.deg2rad(spec[4]) if rotated else 0.0
        coslat = max(np.cos(np.deg2rad(lat0)), 1e-3)
        lon_axis = a_lon * coslat
        reach = 3.2 * max(a_lat, a_lon)
        rows = np.nonzero(np.abs(lat - lat0) <= reach)[0]
        ncols = min(lon.size, int(2 * reach / step) + 3)
        cols = (np.searchsorted(lon, lon0) - ncols // 2 + np.arange(ncols)) % lon.size
        dlon = ((np.mod(lon[cols] - lon0 + 180.0, 360.0) - 180.0) * coslat)[None, :]
        dlat = (lat[rows] - lat0)[:, None]
        u = dlon * np.cos(rot) + dlat * np.sin(rot)
        v = -dlon * np.sin(rot) + dlat * np.cos(rot)
        bump = np.exp(-((u / lon_axis) ** 2 + (v / a_lat) ** 2)).astype(np.float32)
        value = bump if profile is None else profile(bump, spec).astype(np.float32)
        box = np.ix_(rows, cols)
        out[box] = np.maximum(out[box], value)
    return out


@functools.lru_cache(maxsize=2)
def global_surface(seed: int) -> GlobalSurface:
    """Build (once per seed) the global surface grids."""
    lon, lat = _grid_coords()
    rng = rng_for(seed, 101)
    shape = (_NLAT, _NLON)
    coast_noise = powerlaw_field(rng, shape, 3.0, min_scale=2.0, max_scale=240.0)
    relief_noise = powerlaw_field(rng, shape, 3.0, min_scale=2.0, max_scale=120.0)
    ridge_noise = powerlaw_field(rng, shape, 2.6, min_scale=2.0, max_scale=60.0)
    continent = _max_of_blobs(_CONTINENTS, lon, lat, rotated=True)
    # Coastline noise fades out far from the continents (no specks of land in mid-ocean).
    coast_weight = np.clip(continent * np.float32(2.5), np.float32(0.12), np.float32(1.0))
    land = (continent - np.float32(0.45) + np.float32(0.22) * coast_weight * coast_noise).astype(np.float32)
    on_land = np.clip(land * 8.0, 0.0, 1.0).astype(np.float32)
    # Flat-topped plateaus: a steep logistic of the bump gives a high plain with sharp rims.
    plateau = _max_of_blobs(_PLATEAUS, lon, lat, rotated=False,
                            profile=lambda bump, spec: spec[4] / (1.0 + np.exp(-18.0 * (bump - 0.45))))
    belts = _max_of_blobs(_BELTS, lon, lat, rotated=True, profile=lambda bump, spec: spec[5] * bump)
    ridges = (1.0 - np.abs(ridge_noise) / 2.5).clip(0.0, 1.0) ** 3
    lowland = 0.25 + 0.35 * np.clip(relief_noise + 1.0, 0.0, None)
    elevation = on_land * (lowland + plateau * (1.0 + 0.06 * relief_noise) + belts * ridges * (0.6 + 0.4 * on_land))
    elevation = np.clip(elevation, 0.0, 8.5).astype(np.float32)

    bare = _max_of_blobs(_DESERTS, lon, lat, rotated=False)
    bare = (np.clip((bare + 0.15 * coast_noise - 0.35) * 2.5, 0.0, 1.0) * on_land).astype(np.float32)

    dy = np.float32(np.deg2rad(GRID_STEP) * _EARTH_RADIUS_M)
    dx = (dy * np.maximum(np.cos(np.deg2rad(lat)), 0.2)[:, None]).astype(np.float32)
    # Slopes that drive orographic rain: of the relief smoothed over about 30 km (not grid-scale noise).
    elev_m = _smooth(elevation, passes=8) * np.float32(1000.0)
    dhdx = ((np.roll(elev_m, -1, axis=1) - np.roll(elev_m, 1, axis=1)) / (2 * dx)).astype(np.float32)
    dhdy = np.gradient(elev_m, dy, axis=0).astype(np.float32)
    logger.debug("Built global surface for seed %d (land fraction %.2f)", seed, float((land > 0).mean()))
    return GlobalSurface(land=land, elevation=elevation, bare=bare, dhdx=dhdx, dhdy=dhdy)


def _smooth(grid: np.ndarray, passes: int) -> np.ndarray:
    """Repeated 1-2-1 smoothing (about a Gaussian of sigma sqrt(passes / 2) cells); longitude wraps."""
    out = grid.astype(np.float32, copy=True)
    for _ in range(passes):
        out = (np.roll(out, 1, axis=1) + 2 * out + np.roll(out, -1, axis=1)) * np.float32(0.25)
        padded = np.concatenate([out[:1], out, out[-1:]], axis=0)
        out = (padded[:-2] + 2 * padded[1:-1] + padded[2:]) * np.float32(0.25)
    return out


def bilinear(grid: np.ndarray, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Bilinear interpolation of a global grid (rows south to north) at points, longitude wrapping."""
    nlat, nlon = grid.shape
    step_lon = np.float32(360.0 / nlon)
    step_lat = np.float32(180.0 / nlat)
    lon = np.nan_to_num(np.asarray(lon, dtype=np.float32))
    lat = np.nan_to_num(np.asarray(lat, dtype=np.float32))
    fx = (lon + np.float32(180.0)) / step_lon - np.float32(0.5)
    fy = np.clip((lat + np.float32(90.0)) / step_lat - np.float32(0.5), 0.0, nlat - 1.001)
    ix = np.floor(fx)
    iy = np.floor(fy)
    wx = (fx - ix).astype(np.float32)
    wy = (fy - iy).astype(np.float32)
    ix = ix.astype(np.intp) % nlon
    iy = iy.astype(np.intp)
    ix1 = (ix + 1) % nlon
    flat = grid.ravel()
    row0 = iy * nlon
    row1 = row0 + nlon
    top = flat[row0 + ix] * (1 - wx) + flat[row0 + ix1] * wx
    bottom = flat[row1 + ix] * (1 - wx) + flat[row1 + ix1] * wx
    return (top * (1 - wy) + bottom * wy).astype(np.float32)
