# SPDX-License-Identifier: GPL-3.0-or-later
"""Reading a digital elevation model (DEM), the teacher's ``elevation`` geo channel.

The expected file is a GeoTIFF on a regular latitude/longitude grid (EPSG:4326 or another geographic CRS) as
GMTED2010 and ETOPO 2022 are distributed: one band of surface height in metres (GMTED: Int16 with nodata -32768;
ETOPO: float32, bathymetry negative), a north-up affine transform (no rotation). :func:`read_elevation` returns it
as a float32 DataArray with ascending ``latitude`` and ``longitude`` (cell centres) and NaN where the file has
nodata; :func:`elevation_at` samples it at points (bilinear, NaN outside the grid).

Heights below 0 (ETOPO's bathymetry) are clipped to 0 m: the geo channel is the height of the surface seen from
above, and over water that is the sea surface. A global DEM is large (ETOPO 2022 at 15 arc seconds is 86400 x 43200
cells), so :func:`read_elevation` reads only a window when given ``bounds``; :func:`elevation_info` checks a file
and returns its attributes without reading the grid.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import rasterio
import xarray as xr
from rasterio.errors import RasterioIOError
from rasterio.windows import Window

from satpy_prenet.data.errors import SourceFileError

LOG = logging.getLogger(__name__)

_TIFF_SIGNATURES = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


class ElevationFileError(SourceFileError):
    """A DEM file that cannot be read as elevation on a geographic grid; the message names the file and the problem."""


def elevation_info(path: str | Path) -> dict[str, object]:
    """Check a DEM GeoTIFF without reading its grid and return the ``attrs`` :func:`read_elevation` would give.

    Raises:
        ElevationFileError: As :func:`read_elevation`.
    """
    path = Path(path)
    _check_file(path)
    try:
        with rasterio.open(path) as src:
            _check_dataset(path, src)
            return _attrs(path, src)
    except RasterioIOError as err:
        raise ElevationFileError(path, f"cannot be read as a GeoTIFF, truncated or corrupt ({err})") from err


def read_elevation(path: str | Path, bounds: tuple[float, float, float, float] | None = None) -> xr.DataArray:
    """Read the first band of a geographic DEM GeoTIFF as elevation in metres (negative heights clipped to 0).

    Args:
        path: The GeoTIFF (EPSG:4326 or another geographic CRS, north-up).
        bounds: ``(west, south, east, north)`` in degrees: read only the cells covering this box (plus one cell
            around, for bilinear sampling at its edge). ``west`` may be given in any 360-degree frame; ``east`` must
            not be below ``west`` (a box across the DEM's seam reads the full longitude range). None reads all.

    Returns:
        float32 DataArray ``elevation`` with dims ``latitude``, ``longitude`` (cell centres in degrees, both
        ascending), NaN where the file has its nodata value (or a non-finite value). ``attrs``: ``units`` (``m``),
        ``crs`` (WKT), ``resolution`` (degrees, (lat, lon)), ``source_file``, the file's own tags (e.g.
        ``simulated`` for the simulator's files) and ``simulation`` (the text of a ``Simulation`` tag, if any).

    Raises:
        ElevationFileError: If the file is missing, empty, not a (readable) GeoTIFF, has no band, no or a
            projected CRS, or a rotated transform.
    """
    path = Path(path)
    _check_file(path)
    LOG.debug("Opening %s", path)
    try:
        with rasterio.open(path) as src:
            _check_dataset(path, src)
            window = _window(src, bounds)
            values = src.read(1, masked=True, window=window)
            transform, attrs = src.transform, _attrs(path, src)
    except RasterioIOError as err:
        raise ElevationFileError(path, f"cannot be read as a GeoTIFF, truncated or corrupt ({err})") from err
    data = np.ma.filled(values.astype(np.float32), np.nan)
    data[~np.isfinite(data)] = np.nan
    np.maximum(data, 0.0, out=data, where=np.isfinite(data))
    rows, cols = data.shape
    lon = transform.c + transform.a * (window.col_off + np.arange(cols) + 0.5)
    lat = transform.f + transform.e * (window.row_off + np.arange(rows) + 0.5)
    if transform.e < 0:
        data, lat = data[::-1], lat[::-1]
    if transform.a < 0:
        data, lon = data[:, ::-1], lon[::-1]
    return xr.DataArray(np.ascontiguousarray(data), dims=("latitude", "longitude"), name="elevation", attrs=attrs,
                        coords={"latitude": ("latitude", lat, {"units": "degrees_north"}),
                                "longitude": ("longitude", lon, {"units": "degrees_east"})})


def _attrs(path: Path, src) -> dict[str, object]:
    """The attributes of the DataArray :func:`read_elevation` returns, from the open raster."""
    tags = src.tags()
    simulation = [value for key, value in tags.items() if key.lower() == "simulation"]
    transform = src.transform
    return {**tags, "units": "m", "crs": src.crs.to_wkt(), "resolution": (abs(transform.e), abs(transform.a)),
            "source_file": str(path), **({"simulation": simulation[0]} if simulation else {})}


def _window(src, bounds: tuple[float, float, float, float] | None) -> Window:
    """The raster window covering ``bounds`` with one cell to spare (the whole raster for None)."""
    full = Window(0, 0, src.width, src.height)
    if bounds is None:
        return full
    west, south, east, north = bounds
    transform = src.transform
    left = min(transform.c, transform.c + transform.a * src.width)
    mapped = np.mod(west - left, 360.0) + left  # into the DEM's own longitude frame
    west, east = mapped, mapped + (east - west)
    span = abs(transform.a) * src.width
    if east > left + span and span >= 360.0 - 1e-6:
        west, east = left, left + span  # across the seam of a global grid: all longitudes
    cols = sorted(((west - transform.c) / transform.a, (east - transform.c) / transform.a))
    rows = sorted(((north - transform.f) / transform.e, (south - transform.f) / transform.e))
    col0, row0 = max(int(np.floor(cols[0])) - 1, 0), max(int(np.floor(rows[0])) - 1, 0)
    col1, row1 = min(int(np.ceil(cols[1])) + 1, src.width), min(int(np.ceil(rows[1])) + 1, src.height)
    if col1 <= col0 or row1 <= row0:  # the box lies outside the DEM: a corner, where every point samples NaN
        col0, row0, col1, row1 = 0, 0, min(2, src.width), min(2, src.height)
    return Window(col0, row0, col1 - col0, row1 - row0).intersection(full)


def _check_file(path: Path) -> None:
    """Raise an ElevationFileError unless ``path`` is a non-empty file with a TIFF signature."""
    if not path.exists():
        raise ElevationFileError(path, "no such file")
    if not path.is_file():
        raise ElevationFileError(path, "not a regular file")
    if path.stat().st_size == 0:
        raise ElevationFileError(path, "empty file (0 bytes)")
    with path.open("rb") as handle:
        head = handle.read(4)
    if head not in _TIFF_SIGNATURES:
        raise ElevationFileError(path, "not a GeoTIFF (no TIFF signature)")


def _check_dataset(path: Path, src) -> None:
    """Raise an ElevationFileError unless the open raster has a band, a geographic CRS and a north-up grid."""
    if src.count < 1:
        raise ElevationFileError(path, "has no raster band")
    if src.crs is None:
        raise ElevationFileError(path, "has no coordinate reference system (expected EPSG:4326)")
    if not src.crs.is_geographic:
        raise ElevationFileError(path, f"is in the projected CRS {src.crs.to_string()}, expected a geographic "
                                       "latitude/longitude grid (EPSG:4326)")
    transform = src.transform
    if transform.b != 0 or transform.d != 0:
        raise ElevationFileError(path, f"has a rotated or sheared grid (transform {tuple(transform)[:6]}); "
                                       "expected north-up")
    if transform.a == 0 or transform.e == 0:
        raise ElevationFileError(path, "has a degenerate transform (zero pixel size)")


def elevation_at(dem: xr.DataArray, lon: np.ndarray, lat: np.ndarray, *, method: str = "linear") -> np.ndarray:
    """Elevation of the DEM at points.

    Longitudes are compared in the DEM's own range (a point at -170 matches a 0-360 grid's 190). A point whose
    4 surrounding cell centres include nodata gets NaN with ``method="linear"``.

    Args:
        dem: As :func:`read_elevation` returns (dims ``latitude``, ``longitude``, ascending).
        lon: Longitudes in degrees (any shape; NaN gives NaN).
        lat: Latitudes in degrees, same shape.
        method: ``"linear"`` (bilinear between cell centres) or ``"nearest"``.

    Returns:
        float32 elevations in metres, the shape of ``lon``; NaN outside the grid (beyond the outer cell centres
        for bilinear, beyond the outer cell edges for nearest) and where the DEM has nodata.
    """
    lon = np.asarray(lon, dtype=np.float64)
    lat = np.asarray(lat, dtype=np.float64)
    grid_lon = dem["longitude"].values
    west = grid_lon[0] - abs(grid_lon[1] - grid_lon[0]) / 2 if grid_lon.size > 1 else grid_lon[0]
    lon = np.mod(lon - west, 360.0) + west  # into [west, west + 360)
    points = {"latitude": xr.DataArray(lat.ravel(), dims="point"),
              "longitude": xr.DataArray(lon.ravel(), dims="point")}
    if method == "nearest":
        values = _nearest(dem, lon.ravel(), lat.ravel())
    elif method == "linear":
        values = dem.interp(points, method="linear").values
    else:
        raise ValueError(f"method must be 'linear' or 'nearest', not {method!r}")
    return np.asarray(values, dtype=np.float32).reshape(lon.shape)


def _nearest(dem: xr.DataArray, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Value of the cell containing each point (regular grid), NaN outside the grid."""
    out = np.full(lon.shape, np.nan, np.float32)
    indices = []
    for name, points in (("latitude", lat), ("longitude", lon)):
        axis = dem[name].values
        step = (axis[-1] - axis[0]) / (axis.size - 1) if axis.size > 1 else 1.0
        with np.errstate(invalid="ignore"):
            index = np.floor((points - (axis[0] - step / 2)) / step)
        indices.append(index)
    row, col = indices
    inside = (row >= 0) & (row < dem.sizes["latitude"]) & (col >= 0) & (col < dem.sizes["longitude"])
    out[inside] = dem.values[row[inside].astype(np.intp), col[inside].astype(np.intp)]
    return out
