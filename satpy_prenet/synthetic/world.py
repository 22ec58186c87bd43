# SPDX-License-Identifier: GPL-3.0-or-later
"""One simulated atmosphere per scene on the AGRI 4 km grid, and AGRI's view of it.

A :class:`World` is a seed plus a :class:`~satpy_prenet.synthetic.config.WorldConfig`: an Earth-fixed
surface, a population of cloud objects born, drifting and decaying in continuous time, and the textures
they carry. :meth:`World.scene` renders the atmosphere at one time on a platform's grid (the full disc or
any window of it) and lets AGRI observe it. Scenes at successive times show the same systems advected
and evolved; a scene depends only on (seed, config, platform, time), never on which scenes came before.

A window is bit-for-bit the same slice of the full-disc scene: every field is computed from the global
pixel index (periodic textures, per-object patches, pyproj geolocation), never from the window's shape.

AGRI sees the clouds with parallax: a cloud top at height h is seen ``h tan(satellite zenith)`` farther from
the sub-satellite point than the ground below it (tens of km towards the limb), while the rain falls below the
cloud. The cloud layers are therefore rendered on the window padded by :data:`PARALLAX_PAD` pixels and AGRI's
view of each layer is resampled from the displaced positions; the atmosphere fields of the scene (cloud top,
water paths, rain), which the GPM models observe, stay where the clouds are.

Simplifications worth knowing:

- the whole disc is rendered at the nominal start time (no line-by-line scan time);
- the surface and the cloud objects are Earth-fixed (FY-4A and FY-4B see the same systems where their
  discs overlap), but the textures inside them are anchored to each platform's pixel grid, so the two
  platforms do not see identical small-scale structure;
- cloud microphysics is reduced to a visible optical depth, a phase and a top height per layer; the IR
  bands use Planck at the band centre (no spectral response functions).

Cost (2-core machine, numpy only): a full disc takes about 4 s once the per-platform geolocation and the
per-seed surface are cached (the first scene of a process about 10 s, plus the parallax geometry); a 256 x 256
window about 0.1 s. On a slower 2-core machine (2026-12) both the previous and this version take about 12 s.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
from pyresample.geometry import AreaDefinition

from satpy_prenet.channels import IR_BANDS
from satpy_prenet.synthetic import agri, atmosphere, clouds, geometry
from satpy_prenet.synthetic.atmosphere import Profile
from satpy_prenet.synthetic.config import WorldConfig
from satpy_prenet.synthetic.fields import EvolvingTexture, periodic_take, rng_for
from satpy_prenet.synthetic.geometry import Window
from satpy_prenet.synthetic.surface import global_surface

logger = logging.getLogger(__name__)

#: AGRI full-disc repeat cycle.
SCAN_INTERVAL = dt.timedelta(minutes=15)
#: Rain rates below this (mm/h) are set to zero.
RAIN_FLOOR = 0.02
#: Rain rates saturate smoothly towards this value (mm/h).
RAIN_MAX = 250.0
RAIN_TYPES = {0: "none", 1: "stratiform", 2: "convective", 3: "warm"}
#: Side of the instrument-noise texture: larger than the disc, so per-channel offsets never wrap around.
_NOISE_SIZE = 4096
_NOISE_OFFSETS = _NOISE_SIZE - geometry.DISC_SIZE
#: Pixels added around a window for AGRI's parallax (the largest displacement, about 3.6 pixels for a 16 km
#: top at the limb, plus one).
PARALLAX_PAD = 5
#: Lines per block of the per-pixel physics.
_BLOCK_LINES = 64
_FLOAT_FIELDS = ("elevation", "surface_temperature", "freezing_level", "tropopause", "tcwv", "upper_humidity",
                 "cloud_top_height", "cloud_top_temperature", "cloud_optical_depth", "ice_water_path",
                 "liquid_water_path", "rain_rate", "satellite_zenith", "solar_zenith")


def _blocks(nlines: int) -> Iterator[slice]:
    """Consecutive blocks of lines."""
    for start in range(0, nlines, _BLOCK_LINES):
        yield slice(start, min(start + _BLOCK_LINES, nlines))


@dataclass(frozen=True)
class _Background:
    """Cloud-free background fields of a window at one time (full-window float32 arrays)."""

    profile: Profile
    tcwv: np.ndarray  # cm
    humidity: np.ndarray  # upper-tropospheric humidity before anvil moistening
    cos_sun: np.ndarray  # cosine of the solar zenith angle (NaN off the disc)
    mu_sun: np.ndarray  # clipped to [0, 1]
    surface_texture: np.ndarray


def _background(seed: int, static: _Static, window: Window, time: dt.datetime) -> _Background:
    """Compute the background fields block by block (cache-friendly; values independent of blocking)."""
    shape = window.shape
    t = atmosphere.seconds(time)
    textures = _pixel_textures(seed)
    cols = window.cols()
    rows = window.lines()
    arrays = {name: np.empty(shape, np.float32) for name in
              ("t0", "gamma_low", "gamma_high", "tropopause", "tcwv", "humidity", "cos_sun", "mu_sun", "surface")}
    for blk in _blocks(shape[0]):
        lon, lat = static.lon[blk], static.lat[blk]
        profile = Profile.at(lat, time)
        env = atmosphere.environment(seed, time, lon, lat)
        cos_sun = geometry.cos_solar_zenith(time, lon, lat)
        values = {
            "t0": profile.t0, "gamma_low": profile.gamma_low, "gamma_high": profile.gamma_high,
            "tropopause": profile.tropopause,
            "tcwv": atmosphere.column_water_vapour(lat, static.land[blk], static.elevation[blk], env, time),
            "humidity": atmosphere.upper_humidity(lat, env, textures["humidity"].sample(rows[blk], cols, t), time),
            "cos_sun": cos_sun, "mu_sun": np.clip(np.nan_to_num(cos_sun), 0.0, 1.0),
            "surface": textures["surface"].sample(rows[blk], cols, t),
        }
        for name, value in values.items():
            arrays[name][blk] = value
    return _Background(
        profile=Profile(arrays["t0"], arrays["gamma_low"], arrays["gamma_high"], arrays["tropopause"]),
        tcwv=arrays["tcwv"], humidity=arrays["humidity"], cos_sun=arrays["cos_sun"], mu_sun=arrays["mu_sun"],
        surface_texture=arrays["surface"],
    )


@dataclass
class SimulatedScene:
    """One simulated scene: the atmosphere on the AGRI grid (or a window of it) and what AGRI sees.

    All arrays have the window's shape, are float32 unless noted, and are NaN (or 0 for integer/boolean
    arrays) off the Earth's disc. Heights are in km above mean sea level.

    Attributes:
        platform: ``"FY-4A"`` or ``"FY-4B"``.
        start_time: Nominal scan start (naive UTC).
        window: Part of the full disc covered.
        seed: World seed.
        config: World parameters.
        lon, lat: Geolocation (degrees).
        land: Land mask (bool).
        elevation: Surface height (km).
        surface_temperature: Skin temperature (K).
        freezing_level: Height of the 0 degC isotherm (km); GPM instruments need it (bright band, ice).
        tropopause: Tropopause height (km).
        tcwv: Total column water vapour (kg m-2).
        upper_humidity: Upper-tropospheric relative humidity (0-1).
        cloud_top_height: Top of the highest cloud layer with optical depth > 0.3 (km), NaN where clear.
        cloud_top_temperature: Its temperature (K), NaN where clear.
        cloud_optical_depth: Total visible optical depth.
        ice_water_path: Cloud ice (kg m-2) of the ice layer and the ice part of mid-level clouds.
        liquid_water_path: Cloud liquid (kg m-2).
        rain_rate: Surface rain rate (mm/h), 0 where dry, NaN in space.
        rain_type: 0 none, 1 stratiform, 2 convective, 3 warm/orographic (uint8).
        satellite_zenith, solar_zenith: Angles (degrees).
        bt: Brightness temperature (K) per band key of :data:`satpy_prenet.channels.IR_BANDS`, with
            instrument noise, before quantisation to counts.
        extra_bt: Brightness temperatures of the platform's emissive channels outside that table, by
            channel name (FY-4B ``"C11"``, 7.42 um).
        reflectance: Reflectance (%) of ``C01``-``C06``, not corrected for the solar zenith angle.
    """

    platform: str
    start_time: dt.datetime
    window: Window
    seed: int
    config: WorldConfig
    lon: np.ndarray
    lat: np.ndarray
    land: np.ndarray
    elevation: np.ndarray
    surface_temperature: np.ndarray
    freezing_level: np.ndarray
    tropopause: np.ndarray
    tcwv: np.ndarray
    upper_humidity: np.ndarray
    cloud_top_height: np.ndarray
    cloud_top_temperature: np.ndarray
    cloud_optical_depth: np.ndarray
    ice_water_path: np.ndarray
    liquid_water_path: np.ndarray
    rain_rate: np.ndarray
    rain_type: np.ndarray
    satellite_zenith: np.ndarray
    solar_zenith: np.ndarray
    bt: dict[str, np.ndarray] = field(default_factory=dict)
    extra_bt: dict[str, np.ndarray] = field(default_factory=dict)
    reflectance: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def area(self) -> AreaDefinition:
        """Area definition of the window (equal to the reader's area for a file of this window)."""
        return geometry.disc_area(self.platform, self.window)

    @property
    def on_disc(self) -> np.ndarray:
        """Pixels on the Earth's disc."""
        return np.isfinite(self.lat)

    def channel(self, name: str) -> np.ndarray:
        """Calibrated values of file channel ``name`` (BT in K or reflectance in %), before quantisation."""
        chan = agri.file_channel(self.platform, name)
        if not chan.emissive:
            return self.reflectance[name]
        if chan.band_key is not None:
            return self.bt[chan.band_key]
        return self.extra_bt[name]

    def subset(self, window: Window | tuple[int, int, int, int]) -> SimulatedScene:
        """The part of this scene inside ``window`` (global indices), as a scene of that window."""
        window = Window.coerce(window)
        idx = window.relative_to(self.window)
        kwargs = {}
        for name, value in vars(self).items():
            if isinstance(value, np.ndarray):
                kwargs[name] = value[idx]
            elif isinstance(value, dict):
                kwargs[name] = {key: array[idx] for key, array in value.items()}
            else:
                kwargs[name] = value
        kwargs["window"] = window
        return SimulatedScene(**kwargs)


@dataclass(frozen=True)
class _Static:
    """Time-independent per-pixel data of a platform window."""

    lon: np.ndarray
    lat: np.ndarray
    on_disc: np.ndarray
    mu: np.ndarray
    satellite_zenith: np.ndarray  # degrees
    land: np.ndarray  # float32 0/1
    elevation: np.ndarray
    bare: np.ndarray
    dhdx: np.ndarray
    dhdy: np.ndarray


def _naive_utc(time: dt.datetime) -> dt.datetime:
    if time.tzinfo is not None:
        time = time.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return time


class World:
    """A seeded simulated world; :meth:`scene` renders it at a time on a platform's grid."""

    def __init__(self, seed: int = 0, config: WorldConfig | None = None) -> None:
        """Create the world (cheap; surfaces and textures are built lazily and cached)."""
        if seed < 0:
            raise ValueError(f"seed must be >= 0, got {seed}")
        self.seed = int(seed)
        self.config = config or WorldConfig()

    def __repr__(self) -> str:
        """Short description."""
        return f"World(seed={self.seed}, config=WorldConfig({self.config.describe()}))"

    def scene(self, start_time: dt.datetime, platform: str = "FY-4A",
              window: Window | tuple[int, int, int, int] | None = None, *, observe: bool = True) -> SimulatedScene:
        """Simulate the scene of ``platform`` starting at ``start_time`` over ``window`` (default full disc).

        With ``observe=False`` the scene holds the atmosphere and the rain only, without what AGRI sees (its
        ``bt``, ``extra_bt`` and ``reflectance`` stay empty): a third of the cost, for scenes that only feed the
        hourly truth. Every field it holds is the same as with ``observe=True``; AGRI's noise draws from streams
        of its own, so skipping them changes nothing else.
        """
        geometry.check_platform(platform)
        window = Window.coerce(window)
        time = _naive_utc(start_time)
        t = atmosphere.seconds(time)
        # The clouds are rendered on a window padded by the largest parallax, so that AGRI's displaced view of
        # the window's edge pixels is the same as in the full disc.
        outer = _padded(window, PARALLAX_PAD)
        inner = window.relative_to(outer)
        static = _static(self.seed, platform, outer)
        background = _background(self.seed, static, outer, time)
        ctx = clouds.RenderContext(
            seed=self.seed, platform=platform, window=outer, t=t, config=self.config,
            profile=background.profile, elevation=static.elevation, land=static.land, dhdx=static.dhdx,
            dhdy=static.dhdy, tcwv=background.tcwv, textures=clouds.object_textures(self.seed),
        )
        cloud = clouds.render(clouds.population(self.seed, t, self.config), ctx)

        shape = window.shape
        scene = SimulatedScene(
            platform=platform, start_time=time, window=window, seed=self.seed, config=self.config,
            lon=static.lon[inner], lat=static.lat[inner], land=((static.land > 0) & static.on_disc)[inner],
            rain_type=np.zeros(shape, np.uint8),
            **{name: np.empty(shape, np.float32) for name in _FLOAT_FIELDS},
        )
        channels = agri.PLATFORM_CHANNELS[platform]
        observed = {chan.name: np.empty(shape, np.float32) for chan in channels}
        rows, cols = window.lines(), window.cols()
        # Per-pixel physics in blocks of lines: temporaries stay in cache (several times faster than whole
        # arrays), and every operation is elementwise, so the blocking changes no value.
        for blk in _blocks(shape[0]):
            index = (slice(inner[0].start + blk.start, inner[0].start + blk.stop), inner[1])
            space = np.flatnonzero(~static.on_disc[index])
            true_cloud = cloud.block(index)
            humidity = np.clip(background.humidity[index] + true_cloud.moistening, 0.03, 1.0)
            column = _column(static, index, background, true_cloud, humidity)
            fields = {
                "elevation": static.elevation[index],
                "surface_temperature": column.skin_temperature,
                "freezing_level": column.profile.freezing_level(),
                "tropopause": column.profile.tropopause,
                "tcwv": background.tcwv[index] * np.float32(10.0),
                "upper_humidity": humidity,
                "satellite_zenith": static.satellite_zenith[index],
                "solar_zenith": np.rad2deg(np.arccos(np.clip(background.cos_sun[index], -1.0, 1.0))),
                **_cloud_state(column),
            }
            fields["rain_rate"], scene.rain_type[blk] = _rain(true_cloud)
            if observe:
                seen = _seen_from_space(cloud, outer, index, platform, column.profile)
                seen_humidity = np.clip(background.humidity[index] + seen.moistening, 0.03, 1.0)
                fields.update(self._observe(platform, _column(static, index, background, seen, seen_humidity),
                                            rows[blk], cols, t))
            for name, values in fields.items():
                target = observed[name][blk] if name in observed else getattr(scene, name)[blk]
                target[...] = values
                target.reshape(-1)[space] = np.nan
            scene.rain_type[blk].reshape(-1)[space] = 0
        if not observe:
            return scene
        for chan in channels:
            if not chan.emissive:
                scene.reflectance[chan.name] = observed[chan.name]
            elif chan.band_key is not None:
                scene.bt[chan.band_key] = observed[chan.name]
            else:
                scene.extra_bt[chan.name] = observed[chan.name]
        missing = [band.key for band in IR_BANDS if band.key not in scene.bt]
        if missing:
            raise RuntimeError(f"{platform} channel table lacks bands {missing}")
        return scene

    def scenes(self, times: Iterable[dt.datetime], platform: str = "FY-4A",
               window: Window | tuple[int, int, int, int] | None = None) -> Iterator[SimulatedScene]:
        """Scenes at successive times: the same cloud systems advected and evolved."""
        for time in times:
            yield self.scene(time, platform, window)

    def _observe(self, platform: str, column: agri.Column, rows: np.ndarray, cols: np.ndarray,
                 t: float) -> dict[str, np.ndarray]:
        """AGRI's view of a block of pixels: BT (K) or reflectance (%) per channel, with noise."""
        model = agri.InfraredModel(column)
        visible = agri.ReflectanceModel(column)
        clean: dict[str, np.ndarray] = {}
        noise_field = _white_noise(self.seed)
        out = {}
        for number, chan in enumerate(agri.PLATFORM_CHANNELS[platform]):
            rng = rng_for(self.seed, 707, int(t) // 60 + 100_000_000, number)
            offset_r, offset_c = (int(v) for v in rng.integers(0, _NOISE_OFFSETS, 2))
            if chan.emissive:
                if chan.physics not in clean:
                    clean[chan.physics] = model.brightness_temperature(agri.EMISSIVE_BANDS[chan.physics])
                values = clean[chan.physics]
                if self.config.ir_noise > 0:
                    noise = periodic_take(noise_field, rows + offset_r, cols + offset_c)
                    values = agri.add_radiance_noise(values, chan.wavelength, chan.noise * self.config.ir_noise,
                                                     noise)
                out[chan.name] = values
            else:
                refl = visible.reflectance(agri.REFLECTIVE_BANDS[chan.physics])
                if self.config.vis_noise > 0:
                    noise = periodic_take(noise_field, rows + offset_r, cols + offset_c)
                    sigma = np.float32(chan.noise * self.config.vis_noise)
                    refl = refl + (sigma + np.float32(0.003 * self.config.vis_noise) * refl) * noise
                out[chan.name] = np.maximum(refl, np.float32(0.0)) * np.float32(100.0)
        return out


@functools.lru_cache(maxsize=4)
def _static(seed: int, platform: str, window: Window) -> _Static:
    lon, lat = geometry.window_lonlat(platform, window)
    on_disc = np.isfinite(lat)
    surface = global_surface(seed)
    land = (surface.sample("land", lon, lat) > 0).astype(np.float32) * on_disc
    elevation = surface.sample("elevation", lon, lat) * land
    mu = np.nan_to_num(geometry.cos_satellite_zenith(platform, lon, lat), nan=np.float32(0.02))
    zenith = np.rad2deg(np.arccos(np.clip(mu, -1.0, 1.0))).astype(np.float32)
    return _Static(lon=lon, lat=lat, on_disc=on_disc, mu=mu, satellite_zenith=zenith, land=land.astype(np.float32),
                   elevation=elevation.astype(np.float32), bare=surface.sample("bare", lon, lat) * land,
                   dhdx=surface.sample("dhdx", lon, lat) * land, dhdy=surface.sample("dhdy", lon, lat) * land)


def _padded(window: Window, pad: int) -> Window:
    """``window`` grown by ``pad`` pixels on every side, clipped to the disc."""
    return Window(max(window.line0 - pad, 0), min(window.line1 + pad, geometry.DISC_SIZE),
                  max(window.col0 - pad, 0), min(window.col1 + pad, geometry.DISC_SIZE))


@functools.lru_cache(maxsize=4)
def _parallax(platform: str, window: Window) -> tuple[np.ndarray, np.ndarray]:
    """Apparent displacement of a cloud top (pixels per km of height, lines and columns); 0 off the disc."""
    lon, lat = geometry.window_lonlat(platform, window)
    dline, dcol = geometry.parallax_per_km(platform, lon, lat)
    return np.nan_to_num(dline), np.nan_to_num(dcol)


def _bilinear(values: np.ndarray, line: np.ndarray, col: np.ndarray, outer: Window) -> np.ndarray:
    """``values`` (an array over ``outer``) at fractional global positions, bilinear, clamped to ``outer``.

    The interpolation weights come from the global positions, so a window gives the same values as the disc.
    """
    line = np.clip(line, outer.line0, outer.line1 - 1)
    col = np.clip(col, outer.col0, outer.col1 - 1)
    l0 = np.minimum(np.floor(line), max(outer.line1 - 2, outer.line0))
    c0 = np.minimum(np.floor(col), max(outer.col1 - 2, outer.col0))
    fl = (line - l0).astype(np.float32)
    fc = (col - c0).astype(np.float32)
    i0 = l0.astype(np.intp) - outer.line0
    j0 = c0.astype(np.intp) - outer.col0
    i1 = np.minimum(i0 + 1, values.shape[0] - 1)
    j1 = np.minimum(j0 + 1, values.shape[1] - 1)
    top = values[i0, j0] + fc * (values[i0, j1] - values[i0, j0])
    bottom = values[i1, j0] + fc * (values[i1, j1] - values[i1, j0])
    return top + fl * (bottom - top)


def _seen_from_space(cloud: clouds.CloudFields, outer: Window, index: tuple[slice, slice], platform: str,
                     profile: Profile) -> clouds.CloudFields:
    """The cloud layers of the pixels ``index`` (of ``outer``) as AGRI sees them: displaced by the parallax.

    A layer at height h above a ground point is seen ``h tan(satellite zenith)`` farther from the sub-satellite
    point, so the pixel p shows the layer of the ground point p - shift(h). Each layer is shifted by a
    representative height of its own (the ice layer by the tropopause height less 1.5 km, the mid-level layer by
    the height of 245 K); the low layer (tops below 3 km, less than one pixel) and the rain are not displaced.
    The shift is capped at :data:`PARALLAX_PAD` - 1 pixels.
    """
    dline, dcol = (values[index] for values in _parallax(platform, outer))
    line = (np.arange(index[0].start, index[0].stop) + outer.line0)[:, None].astype(np.float64)
    col = (np.arange(index[1].start, index[1].stop) + outer.col0)[None, :].astype(np.float64)
    cap = np.float32(PARALLAX_PAD - 1)
    seen = cloud.block(index)
    layers = {"ice": (profile.tropopause - np.float32(1.5), ("tau_ice", "tz_ice", "moistening")),
              "mid": (profile.height_of_temperature(np.float32(245.0)), ("tau_mid", "tz_mid"))}
    shifted = {}
    for height, names in layers.values():
        src_line = line - np.clip(dline * height, -cap, cap)
        src_col = col - np.clip(dcol * height, -cap, cap)
        for name in names:
            shifted[name] = _bilinear(getattr(cloud, name), src_line, src_col, outer)
    return dataclasses.replace(seen, **shifted)


@functools.lru_cache(maxsize=2)
def _pixel_textures(seed: int) -> dict[str, EvolvingTexture]:
    """Pixel-space textures of the background fields (sampled at global pixel indices)."""
    rng = rng_for(seed, 808)
    return {
        "humidity": EvolvingTexture.make(rng, size=2048, slope=3.0, min_scale=4.0, max_scale=200.0,
                                         timescale=6 * 3600.0),
        "surface": EvolvingTexture.make(rng, size=1024, slope=3.0, min_scale=2.0, max_scale=100.0,
                                        timescale=24 * 3600.0),
    }


@functools.lru_cache(maxsize=2)
def _white_noise(seed: int) -> np.ndarray:
    """Periodic white Gaussian noise sampled (with per-channel, per-time offsets) for instrument noise."""
    return rng_for(seed, 909).standard_normal((_NOISE_SIZE, _NOISE_SIZE), dtype=np.float32)


def _column(static: _Static, index: tuple[slice, slice], background: _Background, cloud: clouds.CloudFields,
            humidity: np.ndarray) -> agri.Column:
    """Assemble the column of the pixels ``index``: surface temperature, ordered layer heights, phases.

    ``cloud`` holds the cloud layers of these pixels only (the true ones, or those AGRI sees displaced).
    """
    land = static.land[index]
    bare = static.bare[index]
    elevation = static.elevation[index]
    mu_sun = background.mu_sun[index]
    profile = background.profile.subset(index)
    tau_low, tau_mid, tau_ice = cloud.tau_low, cloud.tau_mid, cloud.tau_ice
    shade = np.exp(-(tau_low + tau_mid + tau_ice) / np.float32(8.0))
    heating = (np.float32(11.0) + np.float32(9.0) * bare) * mu_sun ** np.float32(0.8) * shade
    night = np.float32(3.0) * (mu_sun <= 0) * (np.float32(0.4) + np.float32(0.6) * shade)
    skin = profile.air_temperature(elevation) + land * (heating - night) + (1 - land) * np.float32(0.8)
    skin += np.float32(0.8) * background.surface_texture[index]
    z_low = np.where(tau_low > 0, np.maximum(cloud.top_height(tau_low, cloud.tz_low), elevation), elevation)
    z_mid = np.where(tau_mid > 0, np.maximum(cloud.top_height(tau_mid, cloud.tz_mid), z_low), z_low)
    z_ice = np.where(tau_ice > 0, np.maximum(cloud.top_height(tau_ice, cloud.tz_ice), z_mid), z_mid)
    t_mid = profile.cloud_top_temperature(z_mid)
    ice_mid = np.clip((np.float32(268.0) - t_mid) / np.float32(30.0), 0.0, 1.0)
    zeros = np.zeros_like(z_low)
    return agri.Column(
        profile=profile, mu=static.mu[index], mu_sun=mu_sun, land=land, bare=bare, elevation=elevation,
        skin_temperature=skin.astype(np.float32, copy=False), tcwv=background.tcwv[index], humidity=humidity,
        tau=(tau_low, tau_mid, tau_ice), height=(z_low, z_mid, z_ice),
        ice_fraction=(zeros, ice_mid, np.ones_like(z_low)),
    )


def _cloud_state(column: agri.Column) -> dict[str, np.ndarray]:
    """Cloud-top height/temperature, optical depth and water paths of a block."""
    tau_low, tau_mid, tau_ice = column.tau
    z_low, z_mid, z_ice = column.height
    visible = np.float32(0.3)
    top = np.where(tau_ice > visible, z_ice, np.where(tau_mid > visible, z_mid,
                                                       np.where(tau_low > visible, z_low, np.nan)))
    top = top.astype(np.float32, copy=False)
    top_temperature = column.profile.cloud_top_temperature(np.nan_to_num(top))
    top_temperature[np.isnan(top)] = np.nan
    # Water paths from tau = 3 W / (2 rho r_e): ice r_e 30 um, liquid r_e 10 um.
    ice_per_tau = np.float32(2.0 * 917.0 * 30e-6 / 3.0)
    liquid_per_tau = np.float32(2.0 * 1000.0 * 10e-6 / 3.0)
    ice_mid = column.ice_fraction[1]
    return {
        "cloud_top_height": top,
        "cloud_top_temperature": top_temperature,
        "cloud_optical_depth": tau_low + tau_mid + tau_ice,
        "ice_water_path": ice_per_tau * (tau_ice + ice_mid * tau_mid),
        "liquid_water_path": liquid_per_tau * (tau_low + (1 - ice_mid) * tau_mid),
    }


def _rain(cloud: clouds.CloudFields) -> tuple[np.ndarray, np.ndarray]:
    """Total surface rain (mm/h) of a block of cloud fields and the dominant rain type."""
    strat, conv, warm = cloud.rain_stratiform, cloud.rain_convective, cloud.rain_warm
    rain = strat + conv + warm
    # Overlapping cores and systems add up; saturate smoothly so that no pixel exceeds RAIN_MAX.
    rain = np.float32(RAIN_MAX) * np.tanh(rain / np.float32(RAIN_MAX))
    rain[rain < RAIN_FLOOR] = 0.0
    rain_type = np.where(conv >= np.maximum(strat, warm), 2, np.where(strat >= warm, 1, 3)).astype(np.uint8)
    rain_type[rain <= 0] = 0
    return rain, rain_type


def simulate_scene(seed: int, start_time: dt.datetime, *, platform: str = "FY-4A",
                   window: Window | tuple[int, int, int, int] | None = None,
                   config: WorldConfig | None = None) -> SimulatedScene:
    """Simulate one scene (see :meth:`World.scene`)."""
    return World(seed, config).scene(start_time, platform, window)


def scan_times(start: dt.datetime, count: int, step: dt.timedelta = SCAN_INTERVAL) -> list[dt.datetime]:
    """``count`` nominal scan start times from ``start``, ``step`` apart (AGRI: every 15 minutes)."""
    return [start + i * step for i in range(count)]


def simulate_sequence(seed: int, times: Iterable[dt.datetime], *, platform: str = "FY-4A",
                      window: Window | tuple[int, int, int, int] | None = None,
                      config: WorldConfig | None = None) -> Iterator[SimulatedScene]:
    """Scenes of one world at successive times: the same cloud systems advected and evolved."""
    yield from World(seed, config).scenes(times, platform, window)
