# SPDX-License-Identifier: GPL-3.0-or-later
"""Cloud systems as objects with a life cycle, and the surface rain they produce.

Four kinds of object are born at random (a Poisson process in space and time, thinned by a
climatology: ITCZ, monsoon land, storm tracks, subtropical oceans, an afternoon peak over land), drift
with a latitude-dependent steering wind, grow, mature and decay:

- deep convective systems: a few small cores (tops at or above the tropopause, 190-220 K, heavy rain under
  a cold dome wider than the rain shaft) under a wide cold anvil that does not rain away from the cores; a
  stratiform rain area grows under the inner anvil (60 % of its radius). The rain peaks early in the life
  cycle (cores until 25-60 % of the life, stratiform rain until 50-70 %), while the anvil keeps growing
  until half of the life and stays cold, slowly thinning, after the rain has stopped;
- stratiform shields (fronts, monsoon depressions): mid-level tops (230-260 K), widespread light to
  moderate rain with embedded bands; two in ten never rain (altostratus);
- cirrus: thin, very cold, no rain;
- low warm clouds (tops 270-288 K): broken fields, drizzle where thicker than an optical depth of about 3,
  intermittent (set by drop sizes the cloud top does not show), orographic rain on upslopes.

Each object carries its own offsets into periodic power-law textures (spectral slope -3), so its
internal structure moves with it and evolves over its own time scales. Rendering writes into per-layer
accumulators of a window of the disc; every value depends only on the global pixel index and the
object, so a window equals the same slice of the full disc.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from dataclasses import dataclass, fields

import numpy as np

from satpy_prenet.synthetic import atmosphere
from satpy_prenet.synthetic.atmosphere import Profile
from satpy_prenet.synthetic.config import WorldConfig
from satpy_prenet.synthetic.fields import TEXTURE_SIZE, EvolvingTexture, rng_for
from satpy_prenet.synthetic.geometry import Window, lonlat_to_pixel
from satpy_prenet.synthetic.surface import global_surface

logger = logging.getLogger(__name__)

DEEP, STRATIFORM, CIRRUS, LOW = range(4)
KINDS = ("deep", "stratiform", "cirrus", "low")
#: Births are drawn per hour bin, so a scene only depends on its own time, never on the scenes before.
BIN_SECONDS = 3600.0
#: Longest life of each kind (hours): how far back births are drawn.
MAX_LIFE_HOURS = (16, 40, 24, 36)
_EARTH_RADIUS_KM = 6371.0
_KM_PER_DEG = np.pi * _EARTH_RADIUS_KM / 180.0


def smoothstep(edge0: float, edge1: float, x):
    """Cubic Hermite step from 0 at ``edge0`` to 1 at ``edge1``."""
    t = np.clip((np.asarray(x, dtype=np.float32) - edge0) / (edge1 - edge0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


@dataclass
class Objects:
    """A set of cloud objects (one entry per object in every array)."""

    ident: np.ndarray  # int64, unique per seed
    kind: np.ndarray  # int8
    t_birth: np.ndarray  # seconds since the epoch
    life: np.ndarray  # seconds
    lon0: np.ndarray  # position at birth (degrees)
    lat0: np.ndarray
    u: np.ndarray  # drift (m/s) east / north
    v: np.ndarray
    axis_a: np.ndarray  # semi-axes at maturity (km)
    axis_b: np.ndarray
    angle: np.ndarray  # orientation of the major axis, radians counter-clockwise from east
    params: np.ndarray  # (n, 4) kind-specific parameters
    tex_r: np.ndarray  # texture offsets (pixels)
    tex_c: np.ndarray
    phase: np.ndarray  # texture evolution phase (radians)

    def __len__(self) -> int:
        """Number of objects."""
        return int(self.ident.size)

    def select(self, mask: np.ndarray) -> Objects:
        """The objects where ``mask`` is true."""
        return Objects(**{f.name: getattr(self, f.name)[mask] for f in fields(self)})

    @classmethod
    def concatenate(cls, parts: list[Objects]) -> Objects:
        """Join several sets."""
        return cls(**{f.name: np.concatenate([getattr(p, f.name) for p in parts]) for f in fields(cls)})

    def position(self, t: float) -> tuple[np.ndarray, np.ndarray]:
        """Longitude/latitude (degrees) at time ``t`` (seconds since the epoch)."""
        age_km = (t - self.t_birth) / 1000.0
        lat = np.clip(self.lat0 + self.v * age_km / _KM_PER_DEG, -85.0, 85.0)
        coslat = np.cos(np.deg2rad(0.5 * (lat + self.lat0)))
        lon = np.mod(self.lon0 + self.u * age_km / (_KM_PER_DEG * coslat) + 180.0, 360.0) - 180.0
        return lon, lat


def _acceptance(kind: int, lon, lat, land, elevation, env, when: dt.datetime, hour_utc) -> np.ndarray:
    """Climatological probability (0-1) that a candidate object of ``kind`` is born at these points."""
    itcz = atmosphere.itcz_latitude(when)
    sea = atmosphere.season(when)
    summer = 0.5 + 0.5 * sea * np.sign(lat)
    rel = lat - itcz
    local_hour = np.mod(hour_utc + lon / 15.0, 24.0)
    if kind == DEEP:
        clim = (0.04 + 0.9 * np.exp(-((rel / 9.0) ** 2))
                + 0.6 * land * summer * np.exp(-(((np.abs(lat) - 22.0) / 10.0) ** 2))
                + 0.3 * summer * np.exp(-(((np.abs(lat) - 38.0) / 9.0) ** 2)))
        diurnal_land = 0.3 + 1.4 * np.maximum(np.cos(2 * np.pi * (local_hour - 15.5) / 24.0), 0.0) ** 1.5
        diurnal_sea = 0.85 + 0.3 * np.cos(2 * np.pi * (local_hour - 5.0) / 24.0)
        diurnal = land * diurnal_land + (1 - land) * diurnal_sea
        return np.clip(clim * diurnal * np.exp(0.6 * env - 0.2) * np.where(elevation > 3.0, 0.6, 1.0), 0, 1)
    if kind == STRATIFORM:
        clim = (0.15 * np.exp(-((rel / 10.0) ** 2))
                + 0.8 * (1.2 - 0.4 * summer) * np.exp(-(((np.abs(lat) - 47.0) / 11.0) ** 2))
                + 0.5 * max(sea, 0.0) * np.exp(-(((lat - 28.0 - 4.0 * sea) / 6.0) ** 2)))
        return np.clip(clim * np.exp(0.35 * env - 0.06), 0, 1)
    if kind == CIRRUS:
        clim = 0.6 * np.exp(-((rel / 14.0) ** 2)) + 0.5 * np.exp(-(((np.abs(lat) - 35.0) / 10.0) ** 2))
        return np.clip(clim * np.exp(0.5 * env - 0.1), 0, 1)
    clim = ((1 - land) * (0.9 * np.exp(-(((np.abs(lat) - 24.0) / 9.0) ** 2))
                          + 0.7 * np.exp(-(((np.abs(lat) - 52.0) / 10.0) ** 2)))
            + land * 0.3 * np.exp(-(((np.abs(lat) - 35.0) / 20.0) ** 2)))
    return np.clip(clim * np.exp(-0.3 * env), 0, 1)


def _draw_shapes(kind: int, rng: np.random.Generator, n: int, lat: np.ndarray):
    """Life (s), semi-axes (km), orientation and the four kind-specific parameters."""
    if kind == DEEP:
        a = np.clip(rng.lognormal(np.log(60.0), 0.7, n), 12.0, 400.0)
        b = a / rng.uniform(1.0, 1.6, n)
        life = np.clip(1.5 + 4.5 * (a / 80.0) ** 0.8 * rng.lognormal(0.0, 0.3, n), 1.0, MAX_LIFE_HOURS[DEEP])
        angle = rng.uniform(0.0, np.pi, n)
        params = np.stack([rng.lognormal(0.0, 0.35, n),  # updraft strength
                           rng.lognormal(0.0, 0.35, n),  # moisture / efficiency scatter
                           rng.uniform(0.5, 2.5, n),  # anvil top depth below the tropopause (km)
                           rng.lognormal(np.log(25.0), 0.4, n)], axis=1)  # anvil optical depth
    elif kind == STRATIFORM:
        a = np.clip(rng.lognormal(np.log(330.0), 0.45, n), 120.0, 1300.0)
        b = a / rng.uniform(1.8, 4.5, n)
        life = rng.uniform(12.0, MAX_LIFE_HOURS[STRATIFORM], n)
        angle = np.sign(lat) * rng.normal(0.5, 0.35, n)
        params = np.stack([rng.uniform(232.0, 258.0, n),  # cloud-top temperature (K)
                           rng.lognormal(np.log(22.0), 0.4, n),  # optical depth
                           # median rain (mm/h); two in ten shields never rain (altostratus)
                           rng.lognormal(np.log(0.8), 0.45, n) * (rng.uniform(0.0, 1.0, n) < 0.8),
                           rng.uniform(0.35, 0.7, n)], axis=1)  # raining part of the shield
    elif kind == CIRRUS:
        a = np.clip(rng.lognormal(np.log(250.0), 0.5, n), 60.0, 1000.0)
        b = a / rng.uniform(2.0, 6.0, n)
        life = rng.uniform(6.0, MAX_LIFE_HOURS[CIRRUS], n)
        angle = rng.normal(0.0, 0.35, n)
        params = np.stack([rng.uniform(1.0, 5.0, n),  # depth below the tropopause (km)
                           rng.lognormal(np.log(0.7), 0.7, n),  # optical depth
                           np.zeros(n), np.zeros(n)], axis=1)
    else:
        a = np.clip(rng.lognormal(np.log(320.0), 0.5, n), 80.0, 1100.0)
        b = a / rng.uniform(1.0, 2.5, n)
        life = rng.uniform(8.0, MAX_LIFE_HOURS[LOW], n)
        angle = rng.uniform(0.0, np.pi, n)
        params = np.stack([rng.uniform(271.0, 288.0, n),  # cloud-top temperature (K)
                           rng.lognormal(np.log(8.0), 0.4, n),  # optical depth
                           rng.uniform(0.3, 1.0, n),  # cover
                           rng.uniform(0.0, 1.0, n)], axis=1)  # drizzle propensity
    return life * 3600.0, a, b, angle, params


_RATE_FIELDS = ("deep_rate", "stratiform_rate", "cirrus_rate", "low_rate")


@functools.lru_cache(maxsize=512)
def births(seed: int, kind: int, hour_bin: int, rate: float) -> Objects:
    """Objects of ``kind`` born during hour ``hour_bin`` (hours since the epoch), for this seed."""
    rng = rng_for(seed, 303, kind, hour_bin + 10_000_000)
    n = rng.poisson(rate)
    if n > 20_000:
        raise ValueError(f"Birth rate {rate} per hour is too high (object identifiers have 16 bits per kind)")
    t_birth = (hour_bin + rng.uniform(0.0, 1.0, n)) * BIN_SECONDS
    lon = rng.uniform(-180.0, 180.0, n)
    lat = np.rad2deg(np.arcsin(rng.uniform(-0.985, 0.985, n)))
    when = atmosphere.EPOCH + dt.timedelta(seconds=(hour_bin + 0.5) * BIN_SECONDS)
    surface = global_surface(seed)
    land = (surface.sample("land", lon, lat) > 0).astype(np.float64)
    elevation = surface.sample("elevation", lon, lat).astype(np.float64)
    env = atmosphere.environment(seed, when, lon, lat).astype(np.float64)
    hour_utc = np.mod(t_birth / 3600.0, 24.0)
    keep = rng.uniform(0.0, 1.0, n) < _acceptance(kind, lon, lat, land, elevation, env, when, hour_utc)
    life, a, b, angle, params = _draw_shapes(kind, rng, n, lat)
    steer = atmosphere.steering_wind(lat, when).astype(np.float64)
    u = steer + rng.normal(0.0, 3.0, n)
    v = rng.normal(0.0, 2.0, n) + (1.5 * np.sign(lat) if kind == STRATIFORM else 0.0)
    objects = Objects(
        ident=(np.int64(hour_bin) << 20) + (kind << 16) + np.arange(n, dtype=np.int64),
        kind=np.full(n, kind, np.int8), t_birth=t_birth, life=life, lon0=lon, lat0=lat, u=u, v=v,
        axis_a=a, axis_b=b, angle=angle, params=params,
        tex_r=rng.integers(0, TEXTURE_SIZE, n), tex_c=rng.integers(0, TEXTURE_SIZE, n),
        phase=rng.uniform(0.0, 2.0 * np.pi, n),
    ).select(keep)
    if kind == DEEP and len(objects):
        objects = Objects.concatenate([objects, _offspring(rng, objects, hour_bin, n, when)])
    return objects


def _offspring(rng: np.random.Generator, parents: Objects, hour_bin: int, first_index: int,
               when: dt.datetime) -> Objects:
    """Deep systems organise in clusters: each parent triggers a few neighbours over the next hours."""
    count = rng.poisson(1.4, len(parents))
    source = np.repeat(np.arange(len(parents)), count)
    n = source.size
    lat = np.clip(parents.lat0[source] + rng.normal(0.0, 1.6, n), -80.0, 80.0)
    lon = parents.lon0[source] + rng.normal(0.0, 1.6, n) / np.maximum(np.cos(np.deg2rad(lat)), 0.2)
    lon = np.mod(lon + 180.0, 360.0) - 180.0
    t_birth = parents.t_birth[source] + rng.uniform(0.0, 2.5, n) * 3600.0
    life, a, b, angle, params = _draw_shapes(DEEP, rng, n, lat)
    # Every object of this bin must have died before the bin drops out of :func:`population`'s look-back.
    life = np.minimum(life, (hour_bin + MAX_LIFE_HOURS[DEEP] + 1) * BIN_SECONDS - t_birth)
    steer = atmosphere.steering_wind(lat, when).astype(np.float64)
    return Objects(
        ident=(np.int64(hour_bin) << 20) + (DEEP << 16) + first_index + np.arange(n, dtype=np.int64),
        kind=np.full(n, DEEP, np.int8), t_birth=t_birth, life=life, lon0=lon, lat0=lat,
        u=steer + rng.normal(0.0, 3.0, n), v=rng.normal(0.0, 2.0, n), axis_a=a, axis_b=b, angle=angle,
        params=params, tex_r=rng.integers(0, TEXTURE_SIZE, n), tex_c=rng.integers(0, TEXTURE_SIZE, n),
        phase=rng.uniform(0.0, 2.0 * np.pi, n),
    )


def population(seed: int, t: float, config: WorldConfig) -> Objects:
    """All objects alive at time ``t`` (seconds since the epoch), in a fixed order."""
    parts = []
    last = int(np.floor(t / BIN_SECONDS))
    for kind in range(4):
        rate = getattr(config, _RATE_FIELDS[kind])
        for hour_bin in range(last - MAX_LIFE_HOURS[kind], last + 1):
            born = births(seed, kind, hour_bin, rate)
            alive = (born.t_birth <= t) & (t < born.t_birth + born.life)
            if alive.any():
                parts.append(born.select(alive))
    if not parts:
        return births(seed, 0, last, 0.0)
    return Objects.concatenate(parts)


@dataclass(frozen=True)
class ObjectTextures:
    """Periodic textures the objects sample (coarse structure, fine structure, rain scatter)."""

    coarse: EvolvingTexture
    fine: EvolvingTexture
    rain: EvolvingTexture


@functools.lru_cache(maxsize=2)
def object_textures(seed: int) -> ObjectTextures:
    """Textures of the cloud objects for a seed (spectral slope 3, i.e. power ~ k**-3)."""
    rng = rng_for(seed, 404)
    return ObjectTextures(
        coarse=EvolvingTexture.make(rng, size=TEXTURE_SIZE, slope=3.0, min_scale=6.0, max_scale=256.0,
                                    timescale=3.0 * 3600.0),
        fine=EvolvingTexture.make(rng, size=TEXTURE_SIZE, slope=3.0, min_scale=2.0, max_scale=24.0,
                                  timescale=0.6 * 3600.0),
        rain=EvolvingTexture.make(rng, size=TEXTURE_SIZE, slope=3.0, min_scale=2.0, max_scale=96.0,
                                  timescale=0.8 * 3600.0),
    )


@dataclass
class CloudFields:
    """Per-layer accumulators of a window (float32 arrays of the window's shape).

    Optical depths are visible optical depths; ``*_tz`` hold optical-depth-weighted top heights (km), so
    overlapping objects of one layer combine into a mean top height weighted by their opacity.
    """

    tau_low: np.ndarray
    tz_low: np.ndarray
    tau_mid: np.ndarray
    tz_mid: np.ndarray
    tau_ice: np.ndarray
    tz_ice: np.ndarray
    rain_convective: np.ndarray
    rain_stratiform: np.ndarray
    rain_warm: np.ndarray
    moistening: np.ndarray  # upper-tropospheric humidity added by anvils (0-1)

    @classmethod
    def zeros(cls, shape: tuple[int, int]) -> CloudFields:
        """Empty accumulators."""
        return cls(**{f.name: np.zeros(shape, np.float32) for f in fields(cls)})

    def block(self, index: tuple[slice, slice]) -> CloudFields:
        """The accumulators at ``array[index]`` (views)."""
        return CloudFields(**{f.name: getattr(self, f.name)[index] for f in fields(self)})

    @staticmethod
    def top_height(tau: np.ndarray, tz: np.ndarray) -> np.ndarray:
        """Mean top height of a layer (km), 0 where the layer is empty."""
        return np.divide(tz, tau, out=np.zeros_like(tz), where=tau > 0)


@dataclass
class RenderContext:
    """What the renderer needs about the window: time, background atmosphere and surface."""

    seed: int
    platform: str
    window: Window
    t: float
    config: WorldConfig
    profile: Profile
    elevation: np.ndarray  # km
    land: np.ndarray  # float32 0/1
    dhdx: np.ndarray  # m/m
    dhdy: np.ndarray
    tcwv: np.ndarray  # cm
    textures: ObjectTextures


@dataclass
class _Patch:
    """The part of the window one object covers, in the object's own frame."""

    index: tuple[slice, slice]  # into window arrays
    line0: int  # global line / column of the patch's first pixel
    col0: int
    along: np.ndarray  # km along the major axis
    across: np.ndarray  # km along the minor axis
    rows: np.ndarray  # texture rows / cols (moving with the object)
    cols: np.ndarray


def _pixel_jacobians(platform: str, lon: np.ndarray, lat: np.ndarray):
    """Centres (line, col) and d(line, col)/d(east, north km) of objects; NaN where not visible."""
    step = 0.2
    line, col = lonlat_to_pixel(platform, lon, lat)
    coslat = np.maximum(np.cos(np.deg2rad(lat)), 0.05)
    line_e, col_e = lonlat_to_pixel(platform, lon + step / coslat, lat)
    line_n, col_n = lonlat_to_pixel(platform, lon, np.clip(lat + step, -89.9, 89.9))
    km = step * _KM_PER_DEG
    jac = np.empty((lon.size, 2, 2))
    jac[:, 0, 0] = (col_e - col) / km
    jac[:, 0, 1] = (col_n - col) / km
    jac[:, 1, 0] = (line_e - line) / km
    jac[:, 1, 1] = (line_n - line) / km
    return line, col, jac


def _make_patch(ctx: RenderContext, line_c, col_c, jac, half_a, half_b, angle, tex_r, tex_c) -> _Patch | None:
    """Cut the object's bounding box (semi-axes ``half_a``/``half_b`` km) out of the window."""
    ca, sa = np.cos(angle), np.sin(angle)
    ext_e = np.hypot(half_a * ca, half_b * sa)
    ext_n = np.hypot(half_a * sa, half_b * ca)
    corners = np.array([[ext_e, ext_n], [ext_e, -ext_n], [-ext_e, ext_n], [-ext_e, -ext_n]])
    pix = corners @ jac.T  # (4, 2): (col, line) offsets
    w = ctx.window
    l_lo = max(int(np.floor(line_c + pix[:, 1].min())), w.line0)
    l_hi = min(int(np.ceil(line_c + pix[:, 1].max())) + 1, w.line1)
    c_lo = max(int(np.floor(col_c + pix[:, 0].min())), w.col0)
    c_hi = min(int(np.ceil(col_c + pix[:, 0].max())) + 1, w.col1)
    if l_lo >= l_hi or c_lo >= c_hi:
        return None
    rows = np.arange(l_lo, l_hi)
    cols = np.arange(c_lo, c_hi)
    inv = np.linalg.inv(jac)  # km per pixel
    dl = (rows - line_c).astype(np.float32)[:, None]
    dc = (cols - col_c).astype(np.float32)[None, :]
    east = np.float32(inv[0, 0]) * dc + np.float32(inv[0, 1]) * dl
    north = np.float32(inv[1, 0]) * dc + np.float32(inv[1, 1]) * dl
    along = east * np.float32(ca) + north * np.float32(sa)
    across = north * np.float32(ca) - east * np.float32(sa)
    return _Patch(
        index=(slice(l_lo - w.line0, l_hi - w.line0), slice(c_lo - w.col0, c_hi - w.col0)),
        line0=l_lo, col0=c_lo, along=along, across=across,
        rows=rows - int(np.rint(line_c)) + int(tex_r), cols=cols - int(np.rint(col_c)) + int(tex_c),
    )


def render(objects: Objects, ctx: RenderContext) -> CloudFields:
    """Render the objects that touch the window into per-layer accumulators."""
    out = CloudFields.zeros(ctx.window.shape)
    if len(objects) == 0:
        return out
    lon, lat = objects.position(ctx.t)
    line, col, jac = _pixel_jacobians(ctx.platform, lon, lat)
    visible = np.isfinite(line) & np.isfinite(jac).all(axis=(1, 2))
    for k in np.nonzero(visible)[0]:
        kind = int(objects.kind[k])
        phi = float((ctx.t - objects.t_birth[k]) / objects.life[k])
        renderer = _RENDERERS[kind]
        renderer(ctx, out, objects, k, phi, line[k], col[k], jac[k])
    return out


def _envelope(patch: _Patch, axis_a: float, axis_b: float, coarse: np.ndarray, roughness: float):
    """Normalised radius and the parabolic envelope (1 at the centre, 0 beyond the fractal edge)."""
    rho = np.sqrt((patch.along / np.float32(axis_a)) ** 2 + (patch.across / np.float32(axis_b)) ** 2)
    rho_edge = rho * np.exp(np.float32(-roughness) * np.clip(coarse, -2.0, 2.0))
    return rho, rho_edge, np.clip(1.0 - rho_edge * rho_edge, 0.0, 1.0)


def _scatter(ctx: RenderContext, coarse: np.ndarray, rain_tex: np.ndarray) -> np.ndarray:
    """Log-normal rain scatter (mean 1), partly shared with the cloud-top texture."""
    c = np.float32(ctx.config.ir_rain_coupling)
    sigma = np.float32(ctx.config.rain_spread)
    mixed = c * np.clip(coarse, -3, 3) + np.sqrt(np.float32(1.0) - c * c) * rain_tex
    return np.exp(sigma * mixed - np.float32(0.5) * sigma * sigma)


def _orographic(ctx: RenderContext, patch: _Patch, objects: Objects, k: int) -> np.ndarray:
    """Orographic rain (mm/h) from the upslope component of the object's drift wind over land."""
    idx = patch.index
    upslope = np.float32(objects.u[k]) * ctx.dhdx[idx] + np.float32(objects.v[k]) * ctx.dhdy[idx]
    moist = ctx.tcwv[idx] / np.float32(5.0)
    return np.float32(ctx.config.orographic_rain) * np.maximum(upslope, 0.0) * moist * ctx.land[idx]


def _textures(ctx: RenderContext, patch: _Patch, objects: Objects, k: int):
    phase = float(objects.phase[k])
    tex = ctx.textures
    coarse = tex.coarse.sample(patch.rows, patch.cols, ctx.t, phase)
    fine = tex.fine.sample(patch.rows, patch.cols, ctx.t, phase)
    rain = tex.rain.sample(patch.rows, patch.cols, ctx.t, phase)
    return coarse, fine, rain


def _core_box(patch: _Patch, line_c, col_c, jac, angle, along_c, across_c, radius_km):
    """Slices of the patch within ``radius_km`` of a core (in global pixels, so windows agree)."""
    east = along_c * np.cos(angle) - across_c * np.sin(angle)
    north = along_c * np.sin(angle) + across_c * np.cos(angle)
    col = col_c + jac[0, 0] * east + jac[0, 1] * north
    line = line_c + jac[1, 0] * east + jac[1, 1] * north
    half = radius_km * np.abs(jac).max() + 2.0
    l_lo = max(int(np.floor(line - half)), patch.line0)
    l_hi = min(int(np.ceil(line + half)) + 1, patch.line0 + patch.along.shape[0])
    c_lo = max(int(np.floor(col - half)), patch.col0)
    c_hi = min(int(np.ceil(col + half)) + 1, patch.col0 + patch.along.shape[1])
    if l_lo >= l_hi or c_lo >= c_hi:
        return None
    return (slice(l_lo - patch.line0, l_hi - patch.line0), slice(c_lo - patch.col0, c_hi - patch.col0))


def _render_deep(ctx: RenderContext, out: CloudFields, objects: Objects, k: int, phi: float, line_c, col_c, jac):
    growth = float(smoothstep(0.0, 0.5, phi))
    decay = float(smoothstep(0.75, 1.0, phi))
    size = 0.3 + 0.7 * growth
    axis_a, axis_b = objects.axis_a[k] * size, objects.axis_b[k] * size
    reach = 1.9  # the moistening of the upper troposphere reaches beyond the anvil
    patch = _make_patch(ctx, line_c, col_c, jac, reach * objects.axis_a[k], reach * objects.axis_b[k],
                        objects.angle[k], objects.tex_r[k], objects.tex_c[k])
    if patch is None:
        return
    updraft, moisture, depth, tau_anvil = objects.params[k]
    coarse, fine, rain_tex = _textures(ctx, patch, objects, k)
    rho, rho_edge, env = _envelope(patch, axis_a, axis_b, coarse + np.float32(0.4) * fine, 0.4)
    idx = patch.index
    prof = ctx.profile.subset(idx)

    tau = np.float32(tau_anvil * (1.0 - 0.6 * decay)) * env * env * np.exp(np.float32(0.35) * fine)
    z_top = (prof.tropopause - np.float32(depth + 0.6 * decay) - np.float32(1.2) * (1.0 - env)
             + np.float32(0.25) * coarse)

    # Convective cores: small, pulsing, strongest early in the life cycle.
    rng = rng_for(ctx.seed, 505, int(objects.ident[k]) & 0x7FFFFFFFFFFF)
    n_cores = 1 + rng.poisson(objects.axis_a[k] / 12.0)
    activity = float(smoothstep(0.0, 0.08, phi) * (1.0 - smoothstep(0.25, 0.6, phi)))
    age_h = (ctx.t - objects.t_birth[k]) / 3600.0
    core = np.zeros_like(tau)
    overshoot = np.zeros_like(tau)
    conv_rain = np.zeros_like(tau)
    distortion = np.exp(np.float32(0.3) * fine)
    angle = objects.angle[k]
    for _ in range(n_cores):
        radius_frac, theta = np.sqrt(rng.uniform(0.0, 1.0)) * 0.45, rng.uniform(0.0, 2.0 * np.pi)
        r_core = float(np.clip(rng.lognormal(np.log(8.0), 0.35), 3.0, 18.0))
        period, psi = rng.uniform(0.8, 2.0), rng.uniform(0.0, 2.0 * np.pi)
        # A stronger updraft overshoots higher and rains harder: the same draw sets both.
        vigour = rng.uniform(0.2, 1.2)
        top_km = min(vigour * updraft, 1.6)
        peak = min(rng.lognormal(np.log(32.0), 0.35) * vigour / 0.7 * updraft * moisture, 200.0)
        pulse = 0.3 + 0.7 * max(np.sin(2.0 * np.pi * age_h / period + psi), 0.0) ** 0.5
        act = activity * pulse
        if act <= 0.01:
            continue
        along_c = radius_frac * axis_a * np.cos(theta)
        across_c = radius_frac * axis_b * np.sin(theta)
        box = _core_box(patch, line_c, col_c, jac, angle, along_c, across_c, 4.0 * r_core)
        if box is None:
            continue
        d2 = (patch.along[box] - np.float32(along_c)) ** 2 + (patch.across[box] - np.float32(across_c)) ** 2
        shape = np.exp(-d2 * distortion[box] / np.float32(r_core * r_core)) * np.float32(act)
        # The updraft's cold dome spreads wider than its rain shaft (radius x 1.5).
        dome = np.exp(-d2 * distortion[box] / np.float32(2.25 * r_core * r_core)) * np.float32(act)
        np.maximum(core[box], dome, out=core[box])
        np.maximum(overshoot[box], dome * np.float32(top_km), out=overshoot[box])
        conv_rain[box] += np.float32(peak) * shape ** np.float32(1.6)
    z_core = prof.tropopause - np.float32(0.8) + overshoot
    z_top = z_top + core * np.maximum(z_core - z_top, 0.0)
    tau = tau + np.float32(120.0) * core
    out.tau_ice[idx] += tau
    out.tz_ice[idx] += tau * z_top

    moist = (ctx.tcwv[idx] / np.float32(4.5)) ** np.float32(1.3) * np.float32(ctx.config.rain_scale)
    scatter = _scatter(ctx, coarse, rain_tex)
    out.rain_convective[idx] += conv_rain * moist * np.exp(np.float32(0.3) * rain_tex - np.float32(0.045))
    stratiform = float(smoothstep(0.1, 0.35, phi) * (1.0 - smoothstep(0.5, 0.7, phi)))
    if stratiform > 0:
        inner = np.clip(1.0 - (rho_edge / np.float32(0.6)) ** 2, 0.0, 1.0)
        out.rain_stratiform[idx] += (np.float32(2.6 * stratiform * moisture) * np.sqrt(inner) * scatter * moist
                                     + _orographic(ctx, patch, objects, k) * inner)
    out.moistening[idx] = np.maximum(
        out.moistening[idx], np.float32(0.35 * (0.5 + 0.5 * growth)) * np.clip(1.0 - (rho / reach) ** 2, 0.0, 1.0))


def _life_amplitude(phi: float) -> float:
    return float(smoothstep(0.0, 0.2, phi) * (1.0 - smoothstep(0.8, 1.0, phi)))


def _object_patch(ctx: RenderContext, objects: Objects, k: int, phi: float, line_c, col_c, jac, size: float = 1.0):
    """Patch, life-cycle amplitude and axes of object ``k``; None when it is outside the window or not alive."""
    amp = _life_amplitude(phi)
    axis_a, axis_b = objects.axis_a[k] * size, objects.axis_b[k] * size
    patch = _make_patch(ctx, line_c, col_c, jac, 1.6 * axis_a, 1.6 * axis_b, objects.angle[k],
                        objects.tex_r[k], objects.tex_c[k])
    if patch is None or amp <= 0:
        return None
    return patch, amp, axis_a, axis_b


def _render_stratiform(ctx: RenderContext, out: CloudFields, objects: Objects, k: int, phi: float, line_c, col_c,
                       jac):
    found = _object_patch(ctx, objects, k, phi, line_c, col_c, jac, size=0.6 + 0.4 * float(smoothstep(0.0, 0.3, phi)))
    if found is None:
        return
    patch, amp, axis_a, axis_b = found
    t_top, tau0, rain_median, rain_part = objects.params[k]
    coarse, fine, rain_tex = _textures(ctx, patch, objects, k)
    _, _, env = _envelope(patch, axis_a, axis_b, coarse, 0.3)
    idx = patch.index
    prof = ctx.profile.subset(idx)
    z_top = prof.height_of_temperature(np.float32(t_top)) + np.float32(0.7) * coarse
    z_top = np.maximum(z_top, ctx.elevation[idx] + np.float32(1.0))
    tau = np.float32(tau0 * amp) * env**0.8 * np.exp(np.float32(0.4) * coarse + np.float32(0.25) * fine)
    out.tau_mid[idx] += tau
    out.tz_mid[idx] += tau * z_top

    raining = np.clip((env - np.float32(1.0 - rain_part)) / np.float32(rain_part), 0.0, 1.0)
    moist = (ctx.tcwv[idx] / np.float32(3.0)) ** np.float32(0.8) * np.float32(ctx.config.rain_scale)
    rain = np.float32(rain_median * amp) * raining**0.6 * _scatter(ctx, coarse, rain_tex) * moist
    out.rain_stratiform[idx] += rain + _orographic(ctx, patch, objects, k) * env * np.float32(amp)


def _render_cirrus(ctx: RenderContext, out: CloudFields, objects: Objects, k: int, phi: float, line_c, col_c, jac):
    found = _object_patch(ctx, objects, k, phi, line_c, col_c, jac)
    if found is None:
        return
    patch, amp, axis_a, axis_b = found
    depth, tau0 = objects.params[k, :2]
    coarse, fine, _ = _textures(ctx, patch, objects, k)
    _, _, env = _envelope(patch, axis_a, axis_b, coarse, 0.35)
    idx = patch.index
    prof = ctx.profile.subset(idx)
    z_top = prof.tropopause - np.float32(depth) + np.float32(0.4) * coarse
    tau = np.float32(tau0 * amp) * env * np.exp(np.float32(0.6) * fine + np.float32(0.3) * coarse)
    out.tau_ice[idx] += tau
    out.tz_ice[idx] += tau * z_top


def _render_low(ctx: RenderContext, out: CloudFields, objects: Objects, k: int, phi: float, line_c, col_c, jac):
    found = _object_patch(ctx, objects, k, phi, line_c, col_c, jac)
    if found is None:
        return
    patch, amp, axis_a, axis_b = found
    t_top, tau0, cover0, drizzle = objects.params[k]
    coarse, fine, rain_tex = _textures(ctx, patch, objects, k)
    _, _, env = _envelope(patch, axis_a, axis_b, coarse, 0.3)
    idx = patch.index
    prof = ctx.profile.subset(idx)
    elevation = ctx.elevation[idx]
    z_top = np.maximum(prof.height_of_temperature(np.float32(t_top)), elevation + np.float32(0.4))
    z_top = z_top + np.float32(0.15) * coarse
    cover = np.clip(np.float32(cover0) + np.float32(0.35) * fine + np.float32(0.25) * coarse, 0.0, 1.0) * env
    tau = np.float32(tau0 * amp) * cover * np.exp(np.float32(0.3) * fine)
    out.tau_low[idx] += tau
    out.tz_low[idx] += tau * z_top

    # Drizzle needs a cloud thick enough to grow drops (tau > 3); where it starts is set by the droplet size
    # (aerosol, liquid water), which the cloud top does not show: the rain texture, not the optical depth.
    onset = np.clip((tau - np.float32(3.0)) / np.float32(3.0), 0.0, 1.0)
    intermittency = np.exp(np.float32(1.6) * rain_tex - np.float32(1.28))  # lognormal, mean 1
    rain = np.float32(0.25 * drizzle * ctx.config.rain_scale) * onset * intermittency
    out.rain_warm[idx] += rain + _orographic(ctx, patch, objects, k) * cover * np.float32(amp)


_RENDERERS = (_render_deep, _render_stratiform, _render_cirrus, _render_low)
