# SPDX-License-Identifier: GPL-3.0-or-later
"""GPM's orbit and the scan geometry of GMI and DPR: ground tracks, footprints, overpasses of a region.

The orbit is circular (65 degree inclination, 407 km) over a spherical Earth (mean radius 6371 km) that rotates
under it, with the J2 precession of the ascending node. Its nodal period and the timing of the granules come from
the real granules in ``tests/data/gpm``: granule 79 of GMI starts at its southernmost point on 2014-03-04
17:59:32.154 UTC and crosses the equator northbound at 35.23 W, granule 144 of DPR crosses it at 116.15 W, 65 orbits
later; the model gives 116.1 W (period 5547.98 s, 92.47 min, and one orbit moves the node 23.40 degrees west).
Granule numbers are counted from that epoch with a constant period, so they are right for 2014 and drift slowly
afterwards (the real orbit was raised in November 2023). A seed shifts the longitude of the ascending node
(uniformly over 360 degrees), so that different seeds give swaths crossing a region at other places and angles
while the granule times and numbers stay those of the real schedule.

Scan geometry (from the real files and the instruments' descriptions):

- GMI ``S1`` (10-89 GHz): a conical scan looking forward, Earth incidence angle 52.8 degrees, i.e. the footprints
  lie on an arc 480.5 km from nadir; 221 pixels over the 140-degree active sector (swath 904 km); one scan every
  1.875 s (about 13.5 km along track); pixel 0 on the right of the flight direction.
- GMI ``S2`` (166-183 GHz): same scan, incidence 49.2 degrees, arc 429 km, swath 806 km, 221 pixels.
- DPR Ku ``FS``: 49 rays across track at nadir over 245 km (5.1 km apart), one scan every 0.7 s (about 5 km);
  ray 0 on the right, ray 24 at nadir. DPR therefore sees a spot about 67 s after GMI's swath centre did.

Every footprint of a scan gets the scan's time (GMI's 1.9 s rotation is ignored).
"""

from __future__ import annotations

import datetime as dt
import logging
import math
from dataclasses import dataclass

import numpy as np

from satpy_prenet.synthetic.fields import rng_for
from satpy_prenet.synthetic.geometry import EARTH_RADIUS_KM

logger = logging.getLogger(__name__)

#: Mean Earth radius of the spherical ground-track model (km).
#: Equatorial radius (km) and J2, for the nodal precession.
_EQUATORIAL_RADIUS_KM = 6378.137
_J2 = 1.08263e-3
_MU_KM3 = 398600.4418
#: Earth's sidereal rotation rate (rad/s).
EARTH_ROTATION = 7.2921159e-5
#: GPM's orbit.
INCLINATION_DEG = 65.0
ALTITUDE_KM = 407.0
#: Nodal period (s), from the real granules 79 and 144 (2014).
ORBIT_PERIOD_S = 5547.98
#: Granule counting epoch: granule 79 starts at its southernmost point at this time (real 1C-GMI file).
EPOCH_GRANULE = 79
EPOCH_START = dt.datetime(2014, 3, 4, 17, 59, 32, 154000)
#: Longitude of the ascending node of the epoch granule (degrees east; real NavigationRecord).
EPOCH_NODE_LON = -35.231869

_SEED_KEY = 4242


@dataclass(frozen=True)
class ScanPattern:
    """How one instrument swath samples the ground.

    Attributes:
        name: Swath name in the files (``S1``, ``S2``, ``FS``).
        pixels: Footprints per scan.
        scan_period: Seconds between scans.
        conical: True for GMI's forward conical scan, False for DPR's cross-track scan at nadir.
        radius_km: Ground distance from nadir of the conical arc (conical scans).
        sector_deg: Azimuth range of the conical arc, centred on the flight direction (conical scans).
        swath_km: Width of the cross-track scan (cross-track scans).
        incidence_deg: Nominal Earth incidence angle of a conical scan (written as ``incidenceAngle``).
    """

    name: str
    pixels: int
    scan_period: float
    conical: bool
    radius_km: float = 0.0
    sector_deg: float = 0.0
    swath_km: float = 0.0
    incidence_deg: float = 0.0

    @property
    def scans_per_orbit(self) -> int:
        """Scans in a whole granule (``NumberScansGranule`` of the real files: 2959 for GMI, 7925 for DPR)."""
        return int(ORBIT_PERIOD_S // self.scan_period)

    def offsets_km(self) -> tuple[np.ndarray, np.ndarray]:
        """Along-track (forward) and cross-track (to the right) ground offsets of each footprint from nadir (km)."""
        k = np.arange(self.pixels, dtype=np.float64)
        if self.conical:
            azimuth = np.deg2rad(self.sector_deg / 2.0 - self.sector_deg * k / (self.pixels - 1))
            return self.radius_km * np.cos(azimuth), self.radius_km * np.sin(azimuth)
        centre = (self.pixels - 1) / 2.0
        return np.zeros_like(k), (centre - k) * self.swath_km / (self.pixels - 1)

    @property
    def swath_width_km(self) -> float:
        """Distance between the outermost footprints across track."""
        _, right = self.offsets_km()
        return float(right.max() - right.min())


#: GMI low-frequency swath (10.65-89 GHz).
GMI_S1 = ScanPattern("S1", 221, 1.875, True, radius_km=480.5, sector_deg=140.0, incidence_deg=52.8)
#: GMI high-frequency swath (166-183 GHz).
GMI_S2 = ScanPattern("S2", 221, 1.875, True, radius_km=429.0, sector_deg=140.0, incidence_deg=49.2)
#: DPR Ku full swath.
DPR_FS = ScanPattern("FS", 49, 0.7, False, swath_km=245.0)


@dataclass(frozen=True)
class Swath:
    """The scans of one instrument swath during an overpass.

    Attributes:
        pattern: The scan pattern.
        scan_index: Scan number within the granule (0-based; the file holds these scans only).
        time: Scan times, ``datetime64[ms]`` (UTC).
        lon, lat: Footprint centres (degrees, float64), shape (nscan, pixels); longitude in [-180, 180).
        sc_lon, sc_lat: Sub-satellite point per scan (degrees).
        sc_position: Spacecraft position, Earth-fixed (km), shape (nscan, 3).
        sc_velocity: Spacecraft velocity, Earth-fixed (km/s), shape (nscan, 3).
        heading: Ground-track heading (degrees clockwise from north) per scan.
    """

    pattern: ScanPattern
    scan_index: np.ndarray
    time: np.ndarray
    lon: np.ndarray
    lat: np.ndarray
    sc_lon: np.ndarray
    sc_lat: np.ndarray
    sc_position: np.ndarray
    sc_velocity: np.ndarray
    heading: np.ndarray

    @property
    def nscan(self) -> int:
        """Number of scans."""
        return int(self.scan_index.size)

    def view_angle(self) -> np.ndarray:
        """Local zenith angle of the line of sight at each footprint (degrees, float64)."""
        radius = EARTH_RADIUS_KM
        ground = unit_vectors(self.lon, self.lat) * radius
        to_sc = self.sc_position[:, None, :] - ground
        cos_zenith = np.sum(to_sc * ground, axis=-1) / (np.linalg.norm(to_sc, axis=-1) * radius)
        return np.rad2deg(np.arccos(np.clip(cos_zenith, -1.0, 1.0)))

    def subset(self, scans: slice | np.ndarray) -> Swath:
        """The swath restricted to some of its scans."""
        return Swath(self.pattern, self.scan_index[scans], self.time[scans], self.lon[scans], self.lat[scans],
                     self.sc_lon[scans], self.sc_lat[scans], self.sc_position[scans], self.sc_velocity[scans],
                     self.heading[scans])


@dataclass(frozen=True)
class Overpass:
    """One pass of GPM over a region: the scans of GMI (S1, S2) and DPR (FS) that see it.

    Attributes:
        granule: Granule (orbit) number, counted from the real schedule (see module notes).
        granule_start, granule_end: Start and end of the whole orbit (southernmost point to southernmost point).
        node_lon: Longitude of the orbit's ascending node (degrees east).
        ascending: Whether the satellite moves northward over the region.
        s1, s2, fs: The swaths; ``fs`` may have no scans where only GMI's wide swath touches the region.
        region: ``(lon_min, lon_max, lat_min, lat_max)`` the overpass was selected for.
    """

    granule: int
    granule_start: dt.datetime
    granule_end: dt.datetime
    node_lon: float
    ascending: bool
    s1: Swath
    s2: Swath
    fs: Swath
    region: tuple[float, float, float, float]

    @property
    def start_time(self) -> dt.datetime:
        """Time of the first scan of either instrument."""
        return to_datetimes(min(sw.time[0] for sw in (self.s1, self.fs) if sw.nscan))[0]

    @property
    def end_time(self) -> dt.datetime:
        """Time of the last scan of either instrument."""
        return to_datetimes(max(sw.time[-1] for sw in (self.s1, self.fs) if sw.nscan))[0]

    @property
    def label(self) -> str:
        """Short unique name, e.g. ``g055123_a_0412`` (granule, direction, first GMI scan)."""
        return f"g{self.granule:06d}_{'a' if self.ascending else 'd'}_{int(self.s1.scan_index[0]):04d}"


def to_datetimes(times: np.ndarray) -> list[dt.datetime]:
    """Naive UTC datetimes (millisecond precision) of ``datetime64`` values."""
    epoch = dt.datetime(1970, 1, 1)
    millis = np.atleast_1d(np.asarray(times).astype("datetime64[ms]").astype(np.int64))
    return [epoch + dt.timedelta(milliseconds=int(v)) for v in millis]


def unit_vectors(lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Earth-fixed unit vectors of points (degrees)."""
    lam, phi = np.deg2rad(lon), np.deg2rad(lat)
    return np.stack([np.cos(phi) * np.cos(lam), np.cos(phi) * np.sin(lam), np.sin(phi)], axis=-1)


def node_precession() -> float:
    """Precession rate of the ascending node from J2 (rad/s; negative: westward)."""
    a = _EQUATORIAL_RADIUS_KM + ALTITUDE_KM
    n = math.sqrt(_MU_KM3 / a**3)
    return -1.5 * n * _J2 * (_EQUATORIAL_RADIUS_KM / a) ** 2 * math.cos(math.radians(INCLINATION_DEG))


def node_offset(seed: int | None) -> float:
    """Shift of the ascending-node longitude (degrees) for a seed; 0 for ``None`` (the real 2014 schedule)."""
    if seed is None:
        return 0.0
    return float(rng_for(seed, _SEED_KEY).uniform(0.0, 360.0))


def granule_number(time: dt.datetime) -> int:
    """Granule (orbit) number of a time: orbits start at the southernmost point."""
    return EPOCH_GRANULE + math.floor((time - EPOCH_START).total_seconds() / ORBIT_PERIOD_S)


def granule_start(granule: int) -> dt.datetime:
    """Start of a granule (its southernmost point), rounded to the millisecond."""
    seconds = (granule - EPOCH_GRANULE) * ORBIT_PERIOD_S
    return EPOCH_START + dt.timedelta(milliseconds=round(seconds * 1000.0))


def _seconds_since_epoch(time: dt.datetime) -> float:
    return (time - EPOCH_START).total_seconds()


def spacecraft_state(seconds: np.ndarray, seed: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Earth-fixed position (km) and velocity (km/s) at times given in seconds since :data:`EPOCH_START`."""
    t = np.asarray(seconds, dtype=np.float64)
    n = 2.0 * np.pi / ORBIT_PERIOD_S
    u = n * t - np.pi / 2.0  # argument of latitude: -90 degrees at the southernmost point
    rate = node_precession() - EARTH_ROTATION
    node = np.deg2rad(EPOCH_NODE_LON + node_offset(seed)) + rate * (t - ORBIT_PERIOD_S / 4.0)
    inc = np.deg2rad(INCLINATION_DEG)
    radius = EARTH_RADIUS_KM + ALTITUDE_KM
    x, y, z = np.cos(u), np.sin(u) * np.cos(inc), np.sin(u) * np.sin(inc)
    dx, dy, dz = -np.sin(u) * n, np.cos(u) * np.cos(inc) * n, np.cos(u) * np.sin(inc) * n
    cos_n, sin_n = np.cos(node), np.sin(node)
    pos = np.stack([x * cos_n - y * sin_n, x * sin_n + y * cos_n, z], axis=-1)
    vel = np.stack([dx * cos_n - dy * sin_n - rate * pos[..., 1], dx * sin_n + dy * cos_n + rate * pos[..., 0], dz],
                   axis=-1)
    return pos * radius, vel * radius


def footprints(pattern: ScanPattern, position: np.ndarray, velocity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Footprint lon/lat (degrees) of scans from the spacecraft state; shapes (nscan, pixels)."""
    nadir = position / np.linalg.norm(position, axis=-1, keepdims=True)
    forward = velocity - np.sum(velocity * nadir, axis=-1, keepdims=True) * nadir
    forward /= np.linalg.norm(forward, axis=-1, keepdims=True)
    right = np.cross(forward, nadir)
    along, across = pattern.offsets_km()
    distance = np.hypot(along, across)
    angle = distance / EARTH_RADIUS_KM
    with np.errstate(invalid="ignore", divide="ignore"):
        a = np.where(distance > 0, along / distance, 0.0)
        c = np.where(distance > 0, across / distance, 0.0)
    direction = a[None, :, None] * forward[:, None, :] + c[None, :, None] * right[:, None, :]
    point = nadir[:, None, :] * np.cos(angle)[None, :, None] + direction * np.sin(angle)[None, :, None]
    lon = np.rad2deg(np.arctan2(point[..., 1], point[..., 0]))
    lat = np.rad2deg(np.arcsin(np.clip(point[..., 2], -1.0, 1.0)))
    return lon, lat


def _heading(position: np.ndarray, velocity: np.ndarray) -> np.ndarray:
    """Ground-track heading, degrees clockwise from north."""
    nadir = position / np.linalg.norm(position, axis=-1, keepdims=True)
    east = np.cross(np.array([0.0, 0.0, 1.0]), nadir)
    east /= np.linalg.norm(east, axis=-1, keepdims=True)
    north = np.cross(nadir, east)
    return np.mod(np.rad2deg(np.arctan2(np.sum(velocity * east, -1), np.sum(velocity * north, -1))), 360.0)


def swath(pattern: ScanPattern, granule: int, scans: np.ndarray, seed: int | None) -> Swath:
    """Geometry of scans ``scans`` (0-based numbers within the granule) of one swath."""
    scans = np.asarray(scans, dtype=np.int64)
    start = _seconds_since_epoch(granule_start(granule))
    seconds = start + (scans + 0.5) * pattern.scan_period
    position, velocity = spacecraft_state(seconds, seed)
    lon, lat = footprints(pattern, position, velocity)
    nadir = position / np.linalg.norm(position, axis=-1, keepdims=True)
    milliseconds = np.round(seconds * 1000.0).astype(np.int64)
    time = np.datetime64(EPOCH_START, "ms") + milliseconds.astype("timedelta64[ms]")
    return Swath(pattern, scans, time, lon, lat, np.rad2deg(np.arctan2(nadir[:, 1], nadir[:, 0])),
                 np.rad2deg(np.arcsin(nadir[:, 2])), position, velocity, _heading(position, velocity))


def in_region(lon: np.ndarray, lat: np.ndarray, region: tuple[float, float, float, float]) -> np.ndarray:
    """Points inside ``(lon_min, lon_max, lat_min, lat_max)`` (longitudes compared modulo 360)."""
    lon_min, lon_max, lat_min, lat_max = region
    rel = np.mod(lon - lon_min, 360.0)
    return (rel <= np.mod(lon_max - lon_min, 360.0) + (lon_max - lon_min >= 360.0) * 360.0) & (lat >= lat_min) & (
        lat <= lat_max)


def _runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """``(start, stop)`` of the runs of True in a 1-D mask."""
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(), strict=True))


def _scan_range(pattern: ScanPattern, granule: int, start: dt.datetime, end: dt.datetime) -> np.ndarray:
    """Scans of a granule whose times fall in ``[start, end)``."""
    offset_start = (start - granule_start(granule)).total_seconds() / pattern.scan_period - 0.5
    offset_end = (end - granule_start(granule)).total_seconds() / pattern.scan_period - 0.5
    first = max(0, math.ceil(offset_start))
    last = min(pattern.scans_per_orbit, math.ceil(offset_end))
    return np.arange(first, max(first, last))


def _scans_over(pattern: ScanPattern, granule: int, scans: np.ndarray, seed: int | None,
                region: tuple[float, float, float, float]) -> np.ndarray:
    """Boolean mask of ``scans`` with at least one footprint in the region (nadir pre-selection first)."""
    if scans.size == 0:
        return np.zeros(0, bool)
    start = _seconds_since_epoch(granule_start(granule))
    position, _ = spacecraft_state(start + (scans + 0.5) * pattern.scan_period, seed)
    lon = np.rad2deg(np.arctan2(position[:, 1], position[:, 0]))
    lat = np.rad2deg(np.arcsin(position[:, 2] / np.linalg.norm(position, axis=-1)))
    # Footprints lie within this many degrees (great circle) of nadir; widen the region by as much.
    margin = np.rad2deg((pattern.radius_km + pattern.swath_km) / EARTH_RADIUS_KM) + 0.5
    lon_min, lon_max, lat_min, lat_max = region
    lon_margin = np.minimum(margin / np.maximum(np.cos(np.deg2rad(np.abs(lat) + margin)), 0.05), 180.0)
    rel = np.mod(lon - (lon_min - lon_margin), 360.0)
    near = (lat >= lat_min - margin) & (lat <= lat_max + margin) & (
        rel <= (lon_max - lon_min) + 2 * lon_margin)
    mask = np.zeros(scans.size, bool)
    if near.any():
        geometry = swath(pattern, granule, scans[near], seed)
        mask[near] = in_region(geometry.lon, geometry.lat, region).any(axis=1)
    return mask


def gpm_overpasses(start: dt.datetime, end: dt.datetime, *, region: tuple[float, float, float, float] = (
        60.0, 160.0, 0.0, 65.0), seed: int | None = 0, min_scans: int = 10) -> list[Overpass]:
    """The passes of GPM over a region between two times, with GMI and DPR scan geometry.

    A pass is a run of consecutive GMI S1 scans with at least one footprint inside the region; the DPR scans of
    the pass are those within the same time span plus 3 minutes on either side with a ray inside the region.
    The S2 swath has the same scans as S1.

    Args:
        start: Start of the time range (naive UTC, inclusive).
        end: End of the time range (exclusive).
        region: ``(lon_min, lon_max, lat_min, lat_max)`` in degrees.
        seed: Seed of the ascending-node shift (see module notes); ``None`` keeps the real 2014 node longitudes.
        min_scans: Passes with fewer GMI scans in the region are dropped.

    Returns:
        The overpasses in time order.
    """
    passes = []
    for granule in range(granule_number(start), granule_number(end - dt.timedelta(microseconds=1)) + 1):
        scans = _scan_range(GMI_S1, granule, start, end)
        mask = _scans_over(GMI_S1, granule, scans, seed, region)
        for first, stop in _runs(mask):
            if stop - first < min_scans:
                continue
            passes.append(_make_overpass(granule, scans[first:stop], seed, region, start, end))
    logger.debug("%d GPM overpasses over %s between %s and %s", len(passes), region, start, end)
    return passes


def _make_overpass(granule: int, gmi_scans: np.ndarray, seed: int | None,
                   region: tuple[float, float, float, float], start: dt.datetime, end: dt.datetime) -> Overpass:
    s1 = swath(GMI_S1, granule, gmi_scans, seed)
    s2 = swath(GMI_S2, granule, gmi_scans, seed)
    margin = dt.timedelta(minutes=3)
    span_start = max(start, to_datetimes(s1.time[0])[0] - margin)
    span_end = min(end, to_datetimes(s1.time[-1])[0] + margin)
    dpr_scans = _scan_range(DPR_FS, granule, span_start, span_end)
    mask = _scans_over(DPR_FS, granule, dpr_scans, seed, region)
    runs = _runs(mask)
    if runs:
        first, stop = max(runs, key=lambda run: run[1] - run[0])
        dpr_scans = dpr_scans[first:stop]
    else:
        dpr_scans = dpr_scans[:0]
    fs = swath(DPR_FS, granule, dpr_scans, seed)
    ascending = bool(s1.sc_lat[-1] > s1.sc_lat[0])
    node_lon = float(np.mod(EPOCH_NODE_LON + node_offset(seed) + np.rad2deg(
        (node_precession() - EARTH_ROTATION) * (granule - EPOCH_GRANULE) * ORBIT_PERIOD_S) + 180.0, 360.0) - 180.0)
    return Overpass(granule, granule_start(granule), granule_start(granule + 1), node_lon, ascending, s1, s2, fs,
                    tuple(float(v) for v in region))
