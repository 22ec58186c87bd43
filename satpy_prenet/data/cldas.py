# SPDX-License-Identifier: GPL-3.0-or-later
"""Reading CLDAS-V2.0 hourly precipitation files (CMA, Asia domain, 0.0625 degree), the PRE-Net ground truth.

What is known of the product (see the project's design notes, SOURCES.md section 6):

* File names follow ``Z_NAFP_C_BABJ_<production time YYYYMMDDhhmmss>_P_CLDAS_<RT|NRT>_<region>_0P0625_HOR-PRE-
  <data time YYYYMMDDHH>.nc``; :func:`parse_cldas_name` reads them and :func:`cldas_filename` writes them. All
  times are UTC.
* The NetCDF file holds the coordinate variables ``LAT`` and ``LON`` and the precipitation ``PRCP``.
* The Asia (``ASI``) grid covers 0-65 N, 60-160 E at 0.0625 degree: 1040 x 1600 cells whose centres lie at
  k * 0.0625 + 0.03125 degrees (:data:`ASI_LAT`, :data:`ASI_LON`).

Not confirmed, so the reader is tolerant there and states its assumptions:

* **Latitude order**: ascending or descending in the file (longitude too); the result is sorted to ascending.
* **Time dimension**: ``PRCP`` may be (LAT, LON) or have a leading dimension of length 1 (e.g. ``time``), which is
  dropped. Longer leading dimensions are an error.
* **dtype**: float32 or float64 (or a packed integer with ``scale_factor``); the result is float32.
* **Missing values**: ``_FillValue`` and ``missing_value`` attributes are honoured by CF decoding; in addition,
  values < 0 or >= 9e20 (the candidate fill values -9999 and 9.999e20) are treated as missing. Missing is NaN.
* **Units**: assumed to be the hourly accumulation in mm, i.e. a mean rate in mm/h; the file's own ``units``
  attribute, if any, is kept in ``attrs["units_in_file"]`` but not used to convert.
* **Accumulation period**: the data time of the file name is assumed to be the END of the accumulation hour
  (data time 08 = rain from 07:00 to 08:00 UTC). ``attrs`` carry both ends so that a caller can shift them if
  this turns out wrong.

The grid must be regular at 0.0625 degree with centres at k * 0.0625 + 0.03125; it need not cover the whole ASI
domain (a ``CHN`` file, for instance, covers less).
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from pathlib import Path
from typing import NamedTuple

import numpy as np
import xarray as xr

from satpy_prenet.data.errors import SourceFileError

LOG = logging.getLogger(__name__)

#: Grid spacing of the 0.0625-degree CLDAS products (degrees).
RESOLUTION = 0.0625
#: Offset of the cell centres from multiples of :data:`RESOLUTION` (degrees): centres at k * 0.0625 + 0.03125.
CENTRE_OFFSET = RESOLUTION / 2
#: Cell centres of the Asia domain, 0-65 N and 60-160 E, ascending (1040 and 1600 values).
ASI_LAT = np.arange(1040) * RESOLUTION + CENTRE_OFFSET
ASI_LON = 60.0 + np.arange(1600) * RESOLUTION + CENTRE_OFFSET
#: Values at or above this are fill (candidate fill 9.999e20), as are negative values (candidate fill -9999).
LARGE_FILL_THRESHOLD = 9e20
#: Tolerance (degrees) of the regular-grid check.
GRID_TOLERANCE = 1e-4

_NAME_RE = re.compile(
    r"^Z_NAFP_C_(?P<centre>[A-Z]{4})_(?P<production>\d{14})_P_CLDAS_(?P<product>RT|NRT)_(?P<region>[A-Z]+)_"
    r"(?P<resolution>0P0625)_HOR-PRE-(?P<data>\d{10})\.nc$")
_NETCDF_SIGNATURES = (b"\x89HDF\r\n\x1a\n", b"CDF\x01", b"CDF\x02", b"CDF\x05")


class CLDASFileError(SourceFileError):
    """A CLDAS file that cannot be read as hourly precipitation; the message names the file and the problem."""


class CLDASName(NamedTuple):
    """The parts of a CLDAS precipitation file name; times are naive datetimes in UTC."""

    centre: str
    production_time: dt.datetime
    product: str
    region: str
    resolution: str
    data_time: dt.datetime


def cldas_filename(data_time: dt.datetime, production_time: dt.datetime, product: str = "NRT",
                   region: str = "ASI") -> str:
    """Return the name of a CLDAS-V2.0 0.0625-degree hourly precipitation NetCDF file.

    Args:
        data_time: Data time (naive UTC; minutes and seconds must be zero).
        production_time: When the file was produced (naive UTC).
        product: ``"RT"`` or ``"NRT"``.
        region: Region code, ``"ASI"`` or ``"CHN"``.

    Returns:
        E.g. ``Z_NAFP_C_BABJ_20220714020018_P_CLDAS_NRT_ASI_0P0625_HOR-PRE-2022071202.nc``.

    Raises:
        ValueError: If the product is not RT/NRT or the data time is not on the hour.
    """
    if product not in ("RT", "NRT"):
        raise ValueError(f"CLDAS product must be 'RT' or 'NRT', not {product!r}")
    if data_time.minute or data_time.second or data_time.microsecond:
        raise ValueError(f"CLDAS data time must be on the hour, not {data_time:%Y-%m-%d %H:%M:%S}")
    return (f"Z_NAFP_C_BABJ_{production_time:%Y%m%d%H%M%S}_P_CLDAS_{product}_{region}_0P0625_"
            f"HOR-PRE-{data_time:%Y%m%d%H}.nc")


def parse_cldas_name(path: str | Path) -> CLDASName:
    """Parse the name of a CLDAS-V2.0 0.0625-degree hourly precipitation NetCDF file.

    Args:
        path: The file or its name (the directory part is ignored).

    Returns:
        The parts of the name.

    Raises:
        CLDASFileError: If the name is not that of a CLDAS 0.0625-degree hourly precipitation (``HOR-PRE``) file.
    """
    match = _NAME_RE.match(Path(path).name)
    if match is None:
        raise CLDASFileError(path, "not a CLDAS hourly precipitation file name (expected "
                                   "Z_NAFP_C_BABJ_<YYYYMMDDhhmmss>_P_CLDAS_<RT|NRT>_<region>_0P0625_HOR-PRE-"
                                   "<YYYYMMDDHH>.nc)")
    try:
        production = dt.datetime.strptime(match["production"], "%Y%m%d%H%M%S")
        data_time = dt.datetime.strptime(match["data"], "%Y%m%d%H")
    except ValueError as err:
        raise CLDASFileError(path, f"impossible date in the file name ({err})") from err
    return CLDASName(match["centre"], production, match["product"], match["region"], match["resolution"], data_time)


def read_cldas_precipitation(path: str | Path) -> xr.DataArray:
    """Read the hourly precipitation of a CLDAS-V2.0 file as a (lat, lon) field in mm/h, both axes ascending.

    See the module notes for what is assumed where the format is not confirmed.

    Args:
        path: The NetCDF file, named as CMA names them.

    Returns:
        float32 DataArray named ``precipitation`` with dims and coordinates ``lat``, ``lon`` (degrees, ascending,
        from ``LAT``/``LON``), NaN where missing. ``attrs``: ``units`` (``mm/h``), ``data_time`` (ISO, UTC),
        ``start_time`` and ``end_time`` of the accumulation hour (ISO, UTC; end = data time, an assumption),
        ``production_time``, ``product`` (RT/NRT), ``region``, ``units_in_file`` (the file's ``units`` or ""),
        ``source_file`` and ``assumptions``.

    Raises:
        CLDASFileError: If the file is missing, empty, not NetCDF, truncated, not named as a CLDAS precipitation
            file, lacks ``PRCP``, ``LAT`` or ``LON``, or is not on the regular 0.0625-degree grid.
    """
    path = Path(path)
    _check_file(path)
    name = parse_cldas_name(path)
    LOG.debug("Opening %s", path)
    try:
        with xr.open_dataset(path, engine="netcdf4", decode_times=False) as ds:
            prcp, lat, lon = _variables(path, ds)
            values = prcp.values
    except (OSError, RuntimeError) as err:
        raise CLDASFileError(path, f"cannot be read as NetCDF, truncated or corrupt ({err})") from err
    lat_order, lon_order = np.argsort(lat), np.argsort(lon)
    values = values[lat_order][:, lon_order].astype(np.float32)
    values[(values < 0) | (values >= LARGE_FILL_THRESHOLD)] = np.nan
    start = name.data_time - dt.timedelta(hours=1)
    attrs = {
        "long_name": "hourly precipitation (CLDAS-V2.0)",
        "units": "mm/h",
        "data_time": name.data_time.isoformat(),
        "start_time": start.isoformat(),
        "end_time": name.data_time.isoformat(),
        "production_time": name.production_time.isoformat(),
        "product": name.product,
        "region": name.region,
        "units_in_file": str(prcp.attrs.get("units", "")),
        "source_file": str(path),
        "assumptions": "hourly accumulation in mm taken as the mean rate in mm/h; data time taken as the end of "
                       "the accumulation hour",
    }
    return xr.DataArray(values, dims=("lat", "lon"), name="precipitation", attrs=attrs,
                        coords={"lat": ("lat", lat[lat_order], {"units": "degrees_north"}),
                                "lon": ("lon", lon[lon_order], {"units": "degrees_east"})})


def _check_file(path: Path) -> None:
    """Raise a CLDASFileError unless the path is a non-empty file with a NetCDF (classic or HDF5) signature."""
    if not path.exists():
        raise CLDASFileError(path, "no such file")
    if not path.is_file():
        raise CLDASFileError(path, "not a regular file")
    if path.stat().st_size == 0:
        raise CLDASFileError(path, "empty file (0 bytes)")
    with path.open("rb") as handle:
        head = handle.read(8)
    if not head.startswith(_NETCDF_SIGNATURES):
        raise CLDASFileError(path, "not a NetCDF file (no NetCDF or HDF5 signature)")


def _variables(path: Path, ds: xr.Dataset) -> tuple[xr.DataArray, np.ndarray, np.ndarray]:
    """Return PRCP as (LAT dim, LON dim) with any length-1 leading dimension dropped, and the LAT, LON values."""
    for key in ("PRCP", "LAT", "LON"):
        if key not in ds.variables:
            raise CLDASFileError(path, f"no {key} variable")
    lat, lon = (_axis(path, ds[key]) for key in ("LAT", "LON"))
    prcp = ds["PRCP"]
    grid_dims = (ds["LAT"].dims[0], ds["LON"].dims[0])
    extra = [dim for dim in prcp.dims if dim not in grid_dims]
    if set(prcp.dims) & set(grid_dims) != set(grid_dims) or any(prcp.sizes[dim] != 1 for dim in extra):
        raise CLDASFileError(path, f"PRCP has dimensions {dict(prcp.sizes)}, expected ({', '.join(grid_dims)}) "
                                   "with at most leading dimensions of length 1")
    if extra:
        LOG.debug("%s: dropping the length-1 dimensions %s of PRCP", path, extra)
    return prcp.isel({dim: 0 for dim in extra}).transpose(*grid_dims), lat, lon


def _axis(path: Path, variable: xr.DataArray) -> np.ndarray:
    """Return a 1-D coordinate as float64 after checking it is a regular 0.0625-degree axis of cell centres."""
    key = variable.name
    values = np.asarray(variable.values, dtype=np.float64)
    if values.ndim != 1 or values.size < 2:
        raise CLDASFileError(path, f"{key} is not a 1-D axis of at least 2 values (shape {values.shape})")
    steps = np.abs(np.diff(values))
    if not np.all(np.isfinite(values)) or np.any(np.abs(steps - RESOLUTION) > GRID_TOLERANCE):
        raise CLDASFileError(path, f"{key} is not a regular {RESOLUTION}-degree axis (steps "
                                   f"{np.nanmin(steps):g} to {np.nanmax(steps):g})")
    if not (np.all(np.diff(values) > 0) or np.all(np.diff(values) < 0)):
        raise CLDASFileError(path, f"{key} is not monotonic")
    offset = np.abs((values - CENTRE_OFFSET) / RESOLUTION - np.round((values - CENTRE_OFFSET) / RESOLUTION))
    if np.any(offset * RESOLUTION > GRID_TOLERANCE):
        raise CLDASFileError(path, f"{key} centres are not at k * {RESOLUTION} + {CENTRE_OFFSET} degrees "
                                   f"(first {values[0]:g})")
    return values
