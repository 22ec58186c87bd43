# SPDX-License-Identifier: GPL-3.0-or-later
"""Simulated CLDAS-V2.0 hourly precipitation (the PRE-Net ground truth) and a writer in the real file layout.

:func:`hourly_truth` turns the simulated scenes of one hour (typically the four 15-minute AGRI slots) into what
CLDAS would report: the true surface rain rate averaged over the hour and over each 0.0625-degree cell of the Asia
grid, with a small, spatially smooth gauge-merging error (SIMULATION.md, "Ground truth").

:func:`write_cldas` writes such a field as a NetCDF4 file named and laid out as the CMA files are known to be
(``LAT``, ``LON``, ``PRCP``; see :mod:`satpy_prenet.data.cldas`). Where the real layout is not confirmed the
writer makes a stated choice: latitude ascending, ``PRCP`` float32 (LAT, LON) without a time dimension, units
``mm`` (the hourly accumulation), ``_FillValue`` -9999.0. The reader accepts the other plausible variants too.

Files are written to a hidden temporary name in the target directory and renamed when complete.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from collections.abc import Iterable
from pathlib import Path

import netCDF4
import numpy as np
import xarray as xr

from satpy_prenet.atomic import atomic_path
from satpy_prenet.data.cldas import ASI_LAT, ASI_LON, RESOLUTION, cldas_filename
from satpy_prenet.synthetic.fields import powerlaw_field, rng_for
from satpy_prenet.synthetic.world import SimulatedScene

logger = logging.getLogger(__name__)

#: Default gauge-merging error: sigma of the log of the multiplicative factor (about 10 % at one sigma).
GAUGE_ERROR_SIGMA = 0.1
#: Shortest and longest wavelengths (grid cells of 0.0625 degree) of the smooth error field: 0.5 to 10 degrees,
#: the scales over which a merged analysis leans on the same few gauges.
GAUGE_ERROR_SCALES = (8.0, 160.0)
#: Fill value written for cells without data (assumed; -9999 is one of the candidates of the real files).
FILL_VALUE = np.float32(-9999.0)
#: Delay from the data time to the production time of the real example files (RT about 41 min, NRT 2 days).
PRODUCTION_DELAY = {"RT": dt.timedelta(minutes=41, seconds=25), "NRT": dt.timedelta(days=2, seconds=18)}

_GAUGE_KEY = 6061
_HOUR = dt.timedelta(hours=1)


def hourly_truth(scenes: Iterable[SimulatedScene], *, seed: int,
                 gauge_error: float = GAUGE_ERROR_SIGMA) -> xr.DataArray:
    """CLDAS-like hourly rain (mm/h) on the 0.0625-degree Asia grid from the simulated scenes of one hour.

    Each scene's true ``rain_rate`` is averaged over the pixels whose centres fall in a cell; the hourly value is
    the mean of these cell means over the scenes that cover the cell. Cells that no scene pixel falls in are NaN,
    so a window of the disc gives a field that is missing outside it. The result is then multiplied by a seeded
    lognormal factor ``exp(gauge_error * z - gauge_error**2 / 2)`` (mean 1), where ``z`` is a smooth unit-variance
    field with wavelengths of 0.5-10 degrees (:data:`GAUGE_ERROR_SCALES`), different for each hour; zeros stay
    zero.

    Args:
        scenes: Scenes whose start times lie within one clock hour (e.g. hh:00, hh:15, hh:30, hh:45).
        seed: Seed of the gauge-merging error.
        gauge_error: Sigma of the log of the error factor; 0 gives the exact hourly cell mean.

    Returns:
        float32 DataArray ``precipitation`` with dims ``lat`` (1040) and ``lon`` (1600), both ascending. ``attrs``:
        ``units`` (mm/h), ``start_time`` and ``end_time`` of the hour and ``data_time`` (= end time, as CLDAS
        names the hour; ISO, UTC), ``seed``, ``gauge_error``, ``scene_count`` and ``source``.

    Raises:
        ValueError: If there are no scenes, their start times span more than one clock hour, or ``gauge_error``
            is negative.
    """
    scenes = list(scenes)
    if not scenes:
        raise ValueError("hourly_truth needs at least one scene")
    if gauge_error < 0:
        raise ValueError(f"gauge_error must be >= 0, not {gauge_error}")
    start = min(scene.start_time for scene in scenes).replace(minute=0, second=0, microsecond=0)
    if any(scene.start_time >= start + _HOUR for scene in scenes):
        raise ValueError(f"scenes span more than the hour from {start:%Y-%m-%d %H:%M}: "
                         f"{sorted(f'{scene.start_time:%H:%M}' for scene in scenes)}")
    cells = ASI_LAT.size * ASI_LON.size
    mean_sum = np.zeros(cells)
    covered = np.zeros(cells)
    for scene in scenes:
        index, rain = _cell_samples(scene)
        count = np.bincount(index, minlength=cells)
        total = np.bincount(index, weights=rain, minlength=cells)
        has = count > 0
        mean_sum[has] += total[has] / count[has]
        covered += has
    truth = np.full(cells, np.nan)
    np.divide(mean_sum, covered, out=truth, where=covered > 0)
    truth = truth.reshape(ASI_LAT.size, ASI_LON.size)
    if gauge_error > 0:
        truth *= _gauge_factor(seed, start, gauge_error)
    end = start + _HOUR
    logger.debug("Hourly truth %s-%s from %d scenes: %d cells with data", start, end, len(scenes),
                 np.count_nonzero(covered))
    attrs = {"long_name": "simulated CLDAS-like hourly precipitation", "units": "mm/h",
             "start_time": start.isoformat(), "end_time": end.isoformat(), "data_time": end.isoformat(),
             "seed": seed, "gauge_error": gauge_error, "scene_count": len(scenes),
             "source": "satpy-prenet simulator (not real data)"}
    return xr.DataArray(truth.astype(np.float32), dims=("lat", "lon"), name="precipitation", attrs=attrs,
                        coords={"lat": ("lat", ASI_LAT, {"units": "degrees_north"}),
                                "lon": ("lon", ASI_LON, {"units": "degrees_east"})})


def _cell_samples(scene: SimulatedScene) -> tuple[np.ndarray, np.ndarray]:
    """Flat ASI cell index and rain rate of each scene pixel with data whose centre lies in the ASI domain.

    The cell of a pixel is found by flooring its coordinates on the regular latitude/longitude grid, and the
    averages are then made with ``np.bincount``. This is what pyresample's ``BucketResampler.get_average`` does
    too, but the grid needs no projection and bincount stays in numpy (no dask graph for a 1.7 M-cell target),
    exact and fast.
    """
    lat = scene.lat.ravel().astype(np.float64)
    lon = np.mod(scene.lon.ravel().astype(np.float64), 360.0)
    rain = scene.rain_rate.ravel().astype(np.float64)
    row = np.floor((lat - (ASI_LAT[0] - RESOLUTION / 2)) / RESOLUTION)
    col = np.floor((lon - (ASI_LON[0] - RESOLUTION / 2)) / RESOLUTION)
    keep = (np.isfinite(rain) & (row >= 0) & (row < ASI_LAT.size) & (col >= 0) & (col < ASI_LON.size))
    return (row[keep] * ASI_LON.size + col[keep]).astype(np.int64), rain[keep]


def _gauge_factor(seed: int, hour_start: dt.datetime, sigma: float) -> np.ndarray:
    """Smooth lognormal factor of mean 1 on the ASI grid, seeded by the seed and the hour."""
    hour = int((hour_start - dt.datetime(1970, 1, 1)) // _HOUR)
    rng = rng_for(seed, _GAUGE_KEY, hour)
    low, high = GAUGE_ERROR_SCALES
    z = powerlaw_field(rng, (ASI_LAT.size, ASI_LON.size), min_scale=low, max_scale=high).astype(np.float64)
    return np.exp(sigma * z - sigma**2 / 2)


def write_cldas(truth: xr.DataArray, out_dir: str | os.PathLike, *, data_time: dt.datetime,
                production_time: dt.datetime | None = None, product: str = "NRT") -> Path:
    """Write an hourly field on the ASI grid as a CLDAS-V2.0 precipitation NetCDF4 file named as CMA names them.

    Layout: dimensions and coordinate variables ``LAT`` (1040, ascending: the real order is not confirmed) and
    ``LON`` (1600), ``PRCP`` float32 (LAT, LON) in ``mm`` (the hourly accumulation, assumed), ``_FillValue``
    -9999.0 (assumed) where the field is NaN, zlib-compressed; global attributes saying the file is simulated.

    Args:
        truth: (lat, lon) field in mm/h on the ASI grid, as :func:`hourly_truth` returns.
        out_dir: Directory (created if missing).
        data_time: Data time of the file name (naive UTC, on the hour; CLDAS's hour is assumed to end there).
        production_time: Production time of the file name; default: the data time plus the delay of the real
            example files (:data:`PRODUCTION_DELAY`).
        product: ``"RT"`` or ``"NRT"``.

    Returns:
        Path of the complete file.

    Raises:
        ValueError: If the field is not on the ASI grid, the product is unknown or the data time is not on the
            hour.
    """
    if truth.dims != ("lat", "lon") or truth.shape != (ASI_LAT.size, ASI_LON.size):
        raise ValueError(f"truth must be (lat, lon) of shape {(ASI_LAT.size, ASI_LON.size)}, not "
                         f"{truth.dims} {truth.shape}")
    if not (np.allclose(truth["lat"], ASI_LAT) and np.allclose(truth["lon"], ASI_LON)):
        raise ValueError("truth is not on the CLDAS ASI grid (ascending centres at k * 0.0625 + 0.03125)")
    if product not in PRODUCTION_DELAY:
        raise ValueError(f"CLDAS product must be 'RT' or 'NRT', not {product!r}")
    production_time = production_time or data_time + PRODUCTION_DELAY[product]
    name = cldas_filename(data_time, production_time, product)
    final = Path(out_dir) / name
    with atomic_path(final) as partial, netCDF4.Dataset(partial, "w", format="NETCDF4") as nc:
        _write_contents(nc, truth, data_time, product)
    logger.info("Wrote %s", final)
    return final


def _write_contents(nc: netCDF4.Dataset, truth: xr.DataArray, data_time: dt.datetime, product: str) -> None:
    """Fill an open NetCDF4 file with LAT, LON, PRCP and the global attributes."""
    nc.setncatts({
        "title": f"CLDAS-V2.0 {product} hourly precipitation, Asia 0.0625 degree (SIMULATED)",
        "source": "satpy-prenet simulator: synthetic world, not CMA data",
        "comment": "Written by satpy-prenet's simulator (satpy_prenet.synthetic.cldas_file) in the layout of the "
                   "CMA CLDAS-V2.0 files as far as it is known. Assumed, not confirmed: latitude ascending, "
                   "PRCP float32 without time dimension, units mm (hourly accumulation), _FillValue -9999, "
                   "data time = end of the accumulation hour.",
        "data_time": f"{data_time:%Y-%m-%d %H:%M:%S} UTC",
        "simulation": f"seed={truth.attrs.get('seed', '')}, gauge_error={truth.attrs.get('gauge_error', '')}",
    })
    for key, values, units in (("LAT", ASI_LAT, "degrees_north"), ("LON", ASI_LON, "degrees_east")):
        nc.createDimension(key, values.size)
        axis = nc.createVariable(key, "f4", (key,))
        axis.setncatts({"long_name": "latitude" if key == "LAT" else "longitude", "units": units})
        axis[:] = values
    prcp = nc.createVariable("PRCP", "f4", ("LAT", "LON"), zlib=True, complevel=4, fill_value=FILL_VALUE)
    prcp.setncatts({"long_name": "hourly precipitation", "units": "mm"})
    prcp[:] = np.ma.masked_invalid(truth.values.astype(np.float32))
