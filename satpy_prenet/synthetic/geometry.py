# SPDX-License-Identifier: GPL-3.0-or-later
"""AGRI 4 km full-disc geometry: grid constants, windows, lon/lat, viewing and solar angles."""

from __future__ import annotations

import datetime as dt
import functools
import logging
from dataclasses import dataclass

import numpy as np
import pyproj
from pyresample.geometry import AreaDefinition

logger = logging.getLogger(__name__)

#: Sub-satellite longitude of each platform (degrees east).
SUBSATELLITE_LON = {"FY-4A": 104.7, "FY-4B": 133.0}
#: Lines and columns of the 4 km full disc.
DISC_SIZE = 2748
#: CGMS column/line scaling factor and offset of the 4 km grid (as in satpy's FY-4 reader).
CFAC = 10233137.0
COFF = 1373.5
#: Earth ellipsoid of the AGRI files: equatorial radius (m) and inverse flattening.
EQUATOR_RADIUS = 6378140.0
INVERSE_FLATTENING = 298.257223563
POLAR_RADIUS = EQUATOR_RADIUS * (1.0 - 1.0 / INVERSE_FLATTENING)
#: Mean Earth radius (km) of the spherical Earth of the GPM orbit and footprint models.
EARTH_RADIUS_KM = 6371.0
#: Satellite height above the equator (m), as the files' ``NOMSatHeight`` gives it.
SATELLITE_HEIGHT = 35786000.0
#: Angle between two pixel centres (radians); about 112 microradians.
PIXEL_ANGLE = np.deg2rad(2.0**16 / CFAC)
#: Pixel size at the sub-satellite point, in projection metres (about 4000 m).
PIXEL_SIZE = PIXEL_ANGLE * SATELLITE_HEIGHT


@dataclass(frozen=True)
class Window:
    """A rectangle of the full disc: lines ``line0 <= l < line1`` and columns ``col0 <= c < col1``.

    Line 0 is the northernmost line and column 0 the westernmost column, as in the L1 files.
    """

    line0: int
    line1: int
    col0: int
    col1: int

    def __post_init__(self) -> None:
        """Validate the bounds."""
        if not (0 <= self.line0 < self.line1 <= DISC_SIZE and 0 <= self.col0 < self.col1 <= DISC_SIZE):
            raise ValueError(f"Invalid window {tuple(self)} for a {DISC_SIZE} x {DISC_SIZE} disc")

    def __iter__(self):
        """Unpack as ``(line0, line1, col0, col1)``."""
        return iter((self.line0, self.line1, self.col0, self.col1))

    @classmethod
    def full(cls) -> Window:
        """The whole disc."""
        return cls(0, DISC_SIZE, 0, DISC_SIZE)

    @classmethod
    def coerce(cls, window: Window | tuple[int, int, int, int] | None) -> Window:
        """Turn ``None`` (full disc), a tuple or a window into a window."""
        if window is None:
            return cls.full()
        if isinstance(window, Window):
            return window
        return cls(*(int(v) for v in window))

    @property
    def shape(self) -> tuple[int, int]:
        """``(lines, columns)``."""
        return (self.line1 - self.line0, self.col1 - self.col0)

    @property
    def is_full_disc(self) -> bool:
        """Whether this is the whole disc."""
        return self == Window.full()

    @property
    def slices(self) -> tuple[slice, slice]:
        """Slices selecting this window from a full-disc array."""
        return (slice(self.line0, self.line1), slice(self.col0, self.col1))

    def relative_to(self, outer: Window) -> tuple[slice, slice]:
        """Slices selecting this window from an array covering ``outer`` (which must contain it)."""
        if not (outer.line0 <= self.line0 and self.line1 <= outer.line1
                and outer.col0 <= self.col0 and self.col1 <= outer.col1):
            raise ValueError(f"Window {tuple(self)} is not inside {tuple(outer)}")
        return (slice(self.line0 - outer.line0, self.line1 - outer.line0),
                slice(self.col0 - outer.col0, self.col1 - outer.col0))

    def lines(self) -> np.ndarray:
        """Global line indices."""
        return np.arange(self.line0, self.line1)

    def cols(self) -> np.ndarray:
        """Global column indices."""
        return np.arange(self.col0, self.col1)


def check_platform(platform: str) -> str:
    """Return ``platform`` if it is supported, else raise a clear error."""
    if platform not in SUBSATELLITE_LON:
        raise ValueError(f"Unsupported platform {platform!r}; supported are {list(SUBSATELLITE_LON)}")
    return platform


def projection_dict(platform: str) -> dict[str, float | str]:
    """PROJ parameters of the platform's geostationary projection (as satpy's reader builds them)."""
    return {"a": EQUATOR_RADIUS, "b": POLAR_RADIUS, "lon_0": SUBSATELLITE_LON[check_platform(platform)],
            "h": SATELLITE_HEIGHT, "proj": "geos", "units": "m"}


def disc_area(platform: str, window: Window | tuple[int, int, int, int] | None = None) -> AreaDefinition:
    """Area definition of the 4 km full disc, or of a window of it."""
    half = DISC_SIZE / 2 * PIXEL_SIZE
    area = AreaDefinition(
        "DISK_4000m", f"{platform} AGRI 4 km full disc", "FY-4, 4000m", projection_dict(platform),
        DISC_SIZE, DISC_SIZE, (-half, -half, half, half),
    )
    window = Window.coerce(window)
    return area if window.is_full_disc else area[window.slices]


def pixel_xy(lines: np.ndarray, cols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Projection coordinates (m) of pixel centres at global line/column indices (may be fractional)."""
    x = (np.asarray(cols, dtype=np.float64) - COFF) * PIXEL_SIZE
    y = (COFF - np.asarray(lines, dtype=np.float64)) * PIXEL_SIZE
    return x, y


@functools.lru_cache(maxsize=4)
def _transformers(platform: str) -> tuple[pyproj.Transformer, pyproj.Transformer]:
    crs = pyproj.CRS.from_dict(projection_dict(platform))
    inverse = pyproj.Transformer.from_crs(crs, crs.geodetic_crs, always_xy=True)
    forward = pyproj.Transformer.from_crs(crs.geodetic_crs, crs, always_xy=True)
    return inverse, forward


@functools.lru_cache(maxsize=6)
def window_lonlat(platform: str, window: Window) -> tuple[np.ndarray, np.ndarray]:
    """Longitude/latitude (degrees, float32, read-only) of the window's pixels; NaN off the disc.

    Values depend only on the global pixel index, so a window equals the same slice of the full disc.
    """
    inverse, _ = _transformers(check_platform(platform))
    x, y = pixel_xy(window.lines()[:, None], window.cols()[None, :])
    x, y = np.broadcast_arrays(x, y)
    lon, lat = inverse.transform(x, y, errcheck=False)
    lon = np.asarray(lon, dtype=np.float64)
    lat = np.asarray(lat, dtype=np.float64)
    bad = ~(np.isfinite(lon) & np.isfinite(lat))
    lon = np.where(bad, np.nan, lon).astype(np.float32)
    lat = np.where(bad, np.nan, lat).astype(np.float32)
    lon.flags.writeable = False
    lat.flags.writeable = False
    return lon, lat


def lonlat_to_pixel(platform: str, lon: np.ndarray, lat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Fractional global (line, column) of points; NaN where the satellite does not see them."""
    _, forward = _transformers(check_platform(platform))
    x, y = forward.transform(np.asarray(lon, dtype=np.float64), np.asarray(lat, dtype=np.float64), errcheck=False)
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    bad = ~(np.isfinite(x) & np.isfinite(y))
    col = np.where(bad, np.nan, x / PIXEL_SIZE + COFF)
    line = np.where(bad, np.nan, COFF - y / PIXEL_SIZE)
    return line, col


def cos_satellite_zenith(platform: str, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Cosine of the satellite zenith angle (float32; NaN off the disc), spherical Earth."""
    lon0 = np.deg2rad(SUBSATELLITE_LON[check_platform(platform)])
    cos_gamma = np.cos(np.deg2rad(lat, dtype=np.float64)) * np.cos(np.deg2rad(lon, dtype=np.float64) - lon0)
    ratio = EQUATOR_RADIUS / (EQUATOR_RADIUS + SATELLITE_HEIGHT)
    sin_gamma = np.sqrt(np.clip(1.0 - cos_gamma**2, 0.0, 1.0))
    # Zenith angle theta: tan(theta) = sin(gamma) / (cos(gamma) - R / (R + h)).
    denom = cos_gamma - ratio
    cos_theta = denom / np.sqrt(denom**2 + sin_gamma**2)
    return cos_theta.astype(np.float32)


def solar_position(time: dt.datetime) -> tuple[float, float]:
    """Solar declination (radians) and the equation of time (minutes) at ``time`` (UTC), NOAA formulae."""
    day = time.timetuple().tm_yday
    hour = time.hour + time.minute / 60.0 + time.second / 3600.0
    gamma = 2.0 * np.pi / 365.0 * (day - 1 + (hour - 12.0) / 24.0)
    eqtime = 229.18 * (0.000075 + 0.001868 * np.cos(gamma) - 0.032077 * np.sin(gamma)
                       - 0.014615 * np.cos(2 * gamma) - 0.040849 * np.sin(2 * gamma))
    decl = (0.006918 - 0.399912 * np.cos(gamma) + 0.070257 * np.sin(gamma) - 0.006758 * np.cos(2 * gamma)
            + 0.000907 * np.sin(2 * gamma) - 0.002697 * np.cos(3 * gamma) + 0.00148 * np.sin(3 * gamma))
    return float(decl), float(eqtime)


def local_solar_hour(time: dt.datetime, lon: np.ndarray) -> np.ndarray:
    """True local solar time in hours (0-24) at longitudes ``lon`` (float32)."""
    _, eqtime = solar_position(time)
    minutes = time.hour * 60.0 + time.minute + time.second / 60.0 + eqtime
    return np.mod(np.float32(minutes / 60.0) + np.asarray(lon, dtype=np.float32) / np.float32(15.0), 24.0)


def cos_solar_zenith(time: dt.datetime, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Cosine of the solar zenith angle at ``time`` (UTC) for each point (float32)."""
    decl, _ = solar_position(time)
    hour_angle = np.deg2rad((local_solar_hour(time, lon) - np.float32(12.0)) * np.float32(15.0))
    phi = np.deg2rad(np.asarray(lat, dtype=np.float32))
    return (np.sin(phi) * np.float32(np.sin(decl))
            + np.cos(phi) * np.float32(np.cos(decl)) * np.cos(hour_angle)).astype(np.float32)


def parallax_per_km(platform: str, lon: np.ndarray, lat: np.ndarray, height_km: float = 10.0) -> tuple[
        np.ndarray, np.ndarray]:
    """Apparent displacement (global lines, columns per km of cloud height) of a cloud top seen from the satellite.

    A cloud top at height h above a ground point is seen along the line of sight that reaches the surface farther
    from the sub-satellite point, ``h tan(satellite zenith)`` away (spherical Earth). The displacement is computed
    for ``height_km`` and divided by it (it is linear in h to well within a pixel below 20 km). Where the line of
    sight through the raised point misses the Earth (the extreme limb) the displacement is 0.

    Args:
        platform: ``"FY-4A"`` or ``"FY-4B"``.
        lon: Longitudes of the ground points (degrees).
        lat: Latitudes (degrees).
        height_km: Height used to compute the displacement.

    Returns:
        float32 (lines per km, columns per km), NaN where the ground point is not seen.
    """
    radius = EARTH_RADIUS_KM
    lon0 = np.deg2rad(SUBSATELLITE_LON[check_platform(platform)])
    distance = (EQUATOR_RADIUS + SATELLITE_HEIGHT) / 1000.0
    lam = np.deg2rad(np.asarray(lon, dtype=np.float64)) - lon0
    phi = np.deg2rad(np.asarray(lat, dtype=np.float64))
    top = (radius + height_km) * np.stack([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)])
    ray = top - np.array([distance, 0.0, 0.0]).reshape((3,) + (1,) * phi.ndim)
    # Entry point of the ray satellite -> raised cloud top into the sphere: |S + t d| = R, smallest root.
    sd = distance * ray[0]
    dd = np.sum(ray * ray, axis=0)
    disc = sd * sd - dd * (distance * distance - radius * radius)
    t = (-sd - np.sqrt(np.maximum(disc, 0.0))) / dd
    ground = ray * t
    ground[0] += distance
    seen_lon = np.rad2deg(np.arctan2(ground[1], ground[0]) + lon0)
    seen_lat = np.rad2deg(np.arcsin(np.clip(ground[2] / radius, -1.0, 1.0)))
    line, col = lonlat_to_pixel(platform, lon, lat)
    seen_line, seen_col = lonlat_to_pixel(platform, seen_lon, seen_lat)
    hit = disc >= 0
    dline = np.where(hit, np.nan_to_num(seen_line - line), 0.0) / height_km
    dcol = np.where(hit, np.nan_to_num(seen_col - col), 0.0) / height_km
    unseen = ~np.isfinite(line)
    dline[unseen] = np.nan
    dcol[unseen] = np.nan
    return dline.astype(np.float32), dcol.astype(np.float32)
