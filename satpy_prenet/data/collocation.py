# SPDX-License-Identifier: GPL-3.0-or-later
"""Bringing the training sources onto the sample grids: the DPR Ku footprints (Swath-MPR) and the AGRI disc (Full-IPR).

Every function here is pure (arrays in, arrays out) apart from :func:`load_agri_ir`, which reads an AGRI file with
satpy. Methods and their reasons:

* **AGRI IR at the footprints** (:func:`agri_at_footprints`): the AGRI pixel whose 4 km cell contains the footprint
  centre (pyresample ``AreaDefinition.get_array_indices_from_lonlat``: exact nearest on the native grid, no k-d tree
  over millions of disc pixels). A footprint off the file's area, or whose pixel is off the Earth disc, gets NaN.
  No distance limit is applied: the containing cell is by definition the nearest pixel, and AGRI pixels at high
  viewing angles reach 9-14 km from their centre to their corners, so any fixed limit would blank valid footprints.
* **GMI at the footprints** (:func:`gmi_at_footprints`): nearest S1 footprint and, separately, nearest S2 footprint
  (pyresample ``kd_tree`` between ``SwathDefinition`` s), within :data:`GMI_RADIUS_M`, 9 + 4 = 13 channels in file
  order; GMI footprints with ``Quality`` < 0, missing geolocation or any NaN Tc of their swath are not used.
* **DPR profiles** (:func:`dpr_profiles`): ``zFactorFinal`` transposed to (bin, scan, ray). In a valid footprint
  (:func:`footprint_valid`: scan time, geolocation, ``rain_type`` not missing, Ku ``qualityFlag`` not bad) a fill
  bin above the surface holds "no echo" and gets :data:`PR_NO_ECHO_DBZ`; bins below ``binRealSurface`` (under the
  ground) and every bin of an invalid footprint are NaN (missing).
* **CLDAS labels** (:func:`label_at`): the value of the 0.0625-degree cell containing the point, NaN outside the
  grid. :func:`cldas_data_time` picks the hour: CLDAS names an hour by its END (data time 08 = 07:00-08:00 UTC, the
  reader's assumption), and the label of an AGRI scan is the hour whose period [end - 1 h, end) contains the scan's
  nominal start time, so data time = start time floored to the hour + 1 h.
* **Geo channels** (:func:`geo_channels`): DEM elevation (bilinear) and the footprint latitude and longitude.
* **Time matching** (:func:`match_agri_file`): an AGRI file serves a block of scans when its nominal scan start is
  within ``max_difference`` of every scan of the block and its area holds the block's footprints.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from pathlib import Path

import h5py
import numpy as np
import xarray as xr
from pyresample import kd_tree
from pyresample.geometry import AreaDefinition, SwathDefinition

from satpy_prenet.channels import READERS, channel_name
from satpy_prenet.data.elevation import elevation_at

LOG = logging.getLogger(__name__)

#: Reflectivity (dBZ) written where DPR saw no echo. Ku's minimum detectable reflectivity is about 12-15 dBZ, so
#: 0 dBZ lies below every real echo and stays distinct from it, while it is close enough to the echo range that
#: normalisation is not dominated by the floor (unlike -9999 or -30).
PR_NO_ECHO_DBZ = 0.0
#: Search radius (m) for the nearest GMI footprint: S1 samples about 13.5 km along and 4-11 km across track.
GMI_RADIUS_M = 15000.0
#: Geo channels of Swath-MPR, in order.
GEO_CHANNELS = ("elevation", "latitude", "longitude")
#: Number of full-disc lines / columns of the 4 km AGRI grid; the disc centre lies between pixels 1373 and 1374.
DISC_SIZE = 2748


def load_agri_ir(path: str | Path, bands: Sequence[str], platform: str) -> xr.DataArray:
    """Read the IR bands of an AGRI L1 4 km file with satpy, values as its reader returns them (K).

    Args:
        path: The AGRI file.
        bands: Band keys (:mod:`satpy_prenet.channels`).
        platform: ``FY-4A`` or ``FY-4B`` (from the file name).

    Returns:
        Lazy (dask) float32 DataArray (band, y, x), band coordinate = band keys; nothing is computed, so slicing it
        reads only the pixels needed. ``attrs``: ``area`` (pyresample AreaDefinition), ``platform``, ``start_time``,
        ``end_time`` (naive UTC datetimes), ``line0`` and ``column0`` (global 0-based position of the file's first
        line and column on the full disc, :func:`disc_offsets`), ``source_file`` and, for a simulated file,
        ``simulation`` (its root ``Simulation`` attribute).
    """
    from satpy import Scene  # satpy is slow to import; only the builder needs it

    names = [channel_name(key, platform) for key in bands]
    scene = Scene(reader=READERS[platform], filenames=[str(path)])
    scene.load(names)
    arrays = [scene[name] for name in names]
    area = arrays[0].attrs["area"]
    line0, column0 = disc_offsets(area)
    stacked = xr.concat([array.astype(np.float32).drop_vars(["crs"], errors="ignore") for array in arrays],
                        dim="band")
    attrs = {"area": area, "platform": platform, "start_time": arrays[0].attrs["start_time"],
             "end_time": arrays[0].attrs["end_time"], "line0": line0, "column0": column0, "source_file": str(path),
             **_simulation(path)}
    return xr.DataArray(stacked.data, dims=("band", "y", "x"), coords={"band": list(bands)}, attrs=attrs)


def _simulation(path: str | Path) -> dict[str, str]:
    """``{"simulation": text}`` for an HDF5 file with a root ``Simulation`` attribute, else empty."""
    with h5py.File(path, "r") as h5:
        for key, value in h5.attrs.items():
            if key.lower() == "simulation":
                value = np.squeeze(value)
                value = value.item() if isinstance(value, np.ndarray) else value
                return {"simulation": value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)}
    return {}


def disc_offsets(area: AreaDefinition, disc_size: int = DISC_SIZE) -> tuple[int, int]:
    """Global 0-based line and column of an AGRI area's first (northernmost, westernmost) pixel on the full disc.

    The full disc is ``disc_size`` pixels square and centred on the sub-satellite point, so its area extent is
    symmetric; a regional file's area is a window of it with the same pixel size.
    """
    x0, _, _, y1 = area.area_extent
    column0 = int(round(x0 / area.pixel_size_x + disc_size / 2))
    line0 = int(round(disc_size / 2 - y1 / area.pixel_size_y))
    return line0, column0


def agri_indices(area: AreaDefinition, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Row and column of the AGRI pixel containing each point, and where that is valid.

    Returns:
        ``(rows, cols, valid)`` of the shape of ``lon``; ``valid`` is False off the area, for NaN points and where
        the containing pixel's centre is off the Earth disc (no finite longitude / latitude).
    """
    lon = np.asarray(lon, dtype=np.float64)
    lat = np.asarray(lat, dtype=np.float64)
    finite = np.isfinite(lon) & np.isfinite(lat)
    rows = np.zeros(lon.shape, np.intp)
    cols = np.zeros(lon.shape, np.intp)
    valid = np.zeros(lon.shape, bool)
    if not finite.any():
        return rows, cols, valid
    col, row = area.get_array_indices_from_lonlat(lon[finite], lat[finite])
    inside = ~np.ma.getmaskarray(col) & ~np.ma.getmaskarray(row)
    col, row = np.ma.getdata(col).astype(np.intp), np.ma.getdata(row).astype(np.intp)
    on_disc = np.zeros(inside.shape, bool)
    if inside.any():
        centre_lon, centre_lat = area.get_lonlat_from_array_coordinates(col[inside], row[inside])
        on_disc[inside] = np.isfinite(centre_lon) & np.isfinite(centre_lat) & (np.abs(centre_lat) <= 90)
    rows[finite], cols[finite], valid[finite] = np.where(on_disc, row, 0), np.where(on_disc, col, 0), on_disc
    return rows, cols, valid


def agri_at_footprints(ir: np.ndarray | xr.DataArray, area: AreaDefinition, lon: np.ndarray,
                       lat: np.ndarray) -> np.ndarray:
    """AGRI IR (band, y, x) at footprints (scan, ray) -> (band, scan, ray), NaN off the area or the disc.

    Only the bounding box of the footprints' pixels is taken from ``ir``, so a lazy (dask) array reads just that.

    Args:
        ir: Values on ``area`` (band, y, x), as :func:`load_agri_ir` returns them (lazy or computed).
        area: The AGRI file's area.
        lon: Footprint longitudes (scan, ray).
        lat: Footprint latitudes (scan, ray).
    """
    rows, cols, valid = agri_indices(area, lon, lat)
    out = np.full((ir.shape[0], *np.shape(lon)), np.nan, np.float32)
    if valid.any():
        row0, col0 = rows[valid].min(), cols[valid].min()
        box = np.asarray(ir[:, row0:rows[valid].max() + 1, col0:cols[valid].max() + 1], dtype=np.float32)
        out[:, valid] = box[:, rows[valid] - row0, cols[valid] - col0]
    return out


def swath_nearest(source_lon: np.ndarray, source_lat: np.ndarray, values: np.ndarray, lon: np.ndarray,
                  lat: np.ndarray, radius_m: float) -> np.ndarray:
    """Nearest-neighbour values of one swath at the points of another (pyresample kd_tree).

    Args:
        source_lon: Source longitudes (scan, pixel); NaN marks missing footprints, which are never used.
        source_lat: Source latitudes.
        values: Source values (scan, pixel, channel); footprints with any NaN value are never used either.
        lon: Target longitudes (scan, ray); NaN gives NaN.
        lat: Target latitudes.
        radius_m: Search radius.

    Returns:
        float32 (channel, scan, ray); NaN where no valid source footprint lies within ``radius_m``.
    """
    channels = values.shape[-1]
    out = np.full((channels, *np.shape(lon)), np.nan, np.float32)
    good_source = np.isfinite(source_lon) & np.isfinite(source_lat) & np.isfinite(values).all(axis=-1)
    good_target = np.isfinite(lon) & np.isfinite(lat)
    if not good_source.any() or not good_target.any():
        return out
    source = SwathDefinition(np.asarray(source_lon, np.float64)[good_source],
                             np.asarray(source_lat, np.float64)[good_source])
    target = SwathDefinition(np.asarray(lon, np.float64)[good_target], np.asarray(lat, np.float64)[good_target])
    sampled = kd_tree.resample_nearest(source, np.asarray(values, np.float32)[good_source], target,
                                       radius_of_influence=radius_m, fill_value=np.nan)
    out[:, good_target] = np.asarray(sampled, np.float32).reshape(-1, channels).T
    return out


def gmi_at_footprints(gmi: xr.Dataset, lon: np.ndarray, lat: np.ndarray,
                      radius_m: float = GMI_RADIUS_M) -> np.ndarray:
    """GMI Tc of S1 and S2 (each from its own nearest footprint) at DPR footprints -> (13 channels, scan, ray).

    Footprints with ``Quality`` < 0 or a NaN Tc are skipped, so the nearest usable footprint is taken.

    Args:
        gmi: As :func:`satpy_prenet.data.gpm.read_gmi_1c` returns (may be cut to a range of scans).
        lon: Footprint longitudes (scan, ray).
        lat: Footprint latitudes.
        radius_m: Search radius.
    """
    parts = []
    for swath in ("S1", "S2"):
        usable = gmi[f"{swath}_Quality"].values >= 0
        tc = np.where(usable[..., None], gmi[f"{swath}_Tc"].values, np.float32(np.nan))
        parts.append(swath_nearest(gmi[f"{swath}_Longitude"].values, gmi[f"{swath}_Latitude"].values, tc, lon, lat,
                                   radius_m))
    return np.concatenate(parts, axis=0)


def gmi_channel_labels(gmi: xr.Dataset) -> list[str]:
    """The 13 channel labels (``10.65V`` ... ``183.31+-7V``) of a GMI dataset, S1 then S2."""
    return [str(label) for swath in ("S1", "S2") for label in gmi[gmi[f"{swath}_Tc"].dims[-1]].values]


def dpr_profiles(dpr: xr.Dataset, floor_dbz: float = PR_NO_ECHO_DBZ) -> np.ndarray:
    """Ku reflectivity profiles (scan, ray, bin) -> (bin, scan, ray) with "no echo" set to ``floor_dbz``.

    In a valid footprint (:func:`footprint_valid`) a fill bin above the surface means the algorithm found no
    precipitation echo (``rain_type`` no_rain, or above the storm top / in the clutter) and gets the floor. Bins
    below ``binRealSurface`` (under the ground) and all bins of an invalid footprint are NaN (missing).

    Args:
        dpr: As :func:`satpy_prenet.data.gpm.read_dpr_2a` returns (may be cut to a range of scans).
        floor_dbz: The "no echo" value.
    """
    profile = dpr["zFactorFinal"].transpose("nscan", "nray", "nbin").values.astype(np.float32)
    valid = footprint_valid(dpr)
    profile = np.where(valid[..., None] & ~np.isfinite(profile), np.float32(floor_dbz), profile)
    profile[~valid] = np.nan
    if "binRealSurface" in dpr:
        surface = dpr["binRealSurface"].transpose("nscan", "nray").values
        with np.errstate(invalid="ignore"):
            profile[dpr["nbin"].values[None, None, :] > surface[..., None]] = np.nan
    return np.ascontiguousarray(np.moveaxis(profile, -1, 0))


def footprint_valid(dpr: xr.Dataset) -> np.ndarray:
    """True for DPR footprints (scan, ray) that hold data.

    That is: a scan time, finite geolocation, ``rain_type`` not missing (-1) and, where the dataset has it, a Ku
    ``qualityFlag`` of 0 or 1 (2 = bad, -99 = fill).
    """
    time_ok = ~np.isnat(dpr["time"].values)
    valid = (np.isfinite(dpr["Latitude"].values) & np.isfinite(dpr["Longitude"].values) & time_ok[:, None]
             & (dpr["rain_type"].values >= 0))
    if "qualityFlag" in dpr:
        valid &= np.isin(dpr["qualityFlag"].values, (0, 1))
    return valid


def cldas_data_time(scan_start: dt.datetime) -> dt.datetime:
    """CLDAS data time (end of the accumulation hour) of the hour containing an AGRI scan's nominal start."""
    return scan_start.replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)


def label_at(label: xr.DataArray, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Value of the regular lat/lon cell containing each point (CLDAS, ascending ``lat``/``lon``), NaN outside.

    Args:
        label: As :func:`satpy_prenet.data.cldas.read_cldas_precipitation` returns.
        lon: Longitudes (any shape; taken modulo 360 into the grid's range).
        lat: Latitudes.
    """
    lon = np.asarray(lon, dtype=np.float64)
    lat = np.asarray(lat, dtype=np.float64)
    grid_lat, grid_lon = label["lat"].values, label["lon"].values
    step_lat = (grid_lat[-1] - grid_lat[0]) / (grid_lat.size - 1)
    step_lon = (grid_lon[-1] - grid_lon[0]) / (grid_lon.size - 1)
    west = grid_lon[0] - step_lon / 2
    with np.errstate(invalid="ignore"):
        row = np.floor((lat - (grid_lat[0] - step_lat / 2)) / step_lat)
        col = np.floor((np.mod(lon - west, 360.0)) / step_lon)
    inside = (row >= 0) & (row < grid_lat.size) & (col >= 0) & (col < grid_lon.size)
    out = np.full(lon.shape, np.nan, np.float32)
    out[inside] = label.values[row[inside].astype(np.intp), col[inside].astype(np.intp)]
    return out


def geo_channels(dem: xr.DataArray, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Elevation (m, bilinear from the DEM), latitude and longitude (degrees) at points -> (3, ...) float32.

    Longitude is returned in [-180, 180).
    """
    lon = np.asarray(lon, dtype=np.float64)
    wrapped = np.mod(lon + 180.0, 360.0) - 180.0
    return np.stack([elevation_at(dem, lon, lat), np.asarray(lat, np.float32), wrapped.astype(np.float32)])


def match_agri_file(scan_times: np.ndarray, lon: np.ndarray, lat: np.ndarray,
                    candidates: Sequence[tuple[dt.datetime, AreaDefinition]],
                    max_difference: dt.timedelta, min_fraction: float = 0.0) -> int | None:
    """Index of the AGRI file that serves a block of DPR scans, or None.

    A candidate serves when its nominal scan start is within ``max_difference`` of every valid scan time of the
    block and its area (on the disc) holds at least ``min_fraction`` of the footprints (and at least one). Among
    those, the one closest in time wins (then the one holding most footprints, then the first).

    Args:
        scan_times: Scan times of the block (datetime64; NaT ignored).
        lon: Footprint longitudes (scan, ray).
        lat: Footprint latitudes.
        candidates: (nominal scan start, area) of each AGRI file.
        max_difference: Largest allowed time difference.
        min_fraction: Least fraction of the block's footprints the file must hold.
    """
    times = np.asarray(scan_times, dtype="datetime64[ns]")
    times = times[~np.isnat(times)]
    if times.size == 0:
        return None
    best, best_key = None, None
    for index, (start, area) in enumerate(candidates):
        offset = np.abs(times - np.datetime64(start, "ns")).max().astype("timedelta64[ms]").astype(np.int64)
        if offset > max_difference / dt.timedelta(milliseconds=1):
            continue
        covered = int(agri_indices(area, lon, lat)[2].sum())
        if covered == 0 or covered < min_fraction * np.size(lon):
            continue
        key = (offset, -covered, index)
        if best_key is None or key < best_key:
            best, best_key = index, key
    return best


def scan_blocks(usable: np.ndarray, length: int) -> list[tuple[int, int]]:
    """Blocks ``(start, stop)`` of ``length`` consecutive usable scans, cut from the start of each run of them.

    A run shorter than ``length`` gives no block; the remainder of a longer run is dropped.
    """
    blocks = []
    padded = np.concatenate([[False], np.asarray(usable, bool), [False]])
    edges = np.flatnonzero(np.diff(padded.astype(np.int8)))
    for start, stop in zip(edges[::2], edges[1::2], strict=True):
        blocks.extend((first, first + length) for first in range(int(start), int(stop) - length + 1, length))
    return blocks
