# SPDX-License-Identifier: GPL-3.0-or-later
"""What GMI sees of the simulated atmosphere: 13 brightness temperatures per footprint.

Each footprint is observed in the AGRI scene of the nearest 15-minute slot. Per channel, on the AGRI grid:

- **Surface**: polarised ocean emissivity at the 52.8 degree incidence (V about 0.56-0.87, H about 0.29-0.66
  from 10 to 183 GHz) against a nearly unpolarised land emissivity (0.88-0.95), at the skin temperature.
- **Emission** of a plane-parallel atmosphere at an effective temperature: oxygen, water vapour (column
  ``tcwv``, emitting near one scale height, or higher for the 183 GHz channels, whose weighting function peaks
  where the slant vapour opacity above reaches one), cloud liquid (``liquid_water_path``) and rain (specific
  attenuation ``k R**alpha`` in dB/km over the depth below the freezing level). Over the radiatively cold ocean
  this warms the low frequencies with the rain; over land it hardly shows.
- **Scattering** by precipitation-sized ice above the freezing level, which depresses 89 and 166 GHz (and 183,
  37 GHz a little): ``TB *= 1 - w (1 - exp(-k P))`` with ``P`` the precipitating ice path (kg m-2), 0.25 R**0.8
  in convective rain and 0.06 R**0.8 in stratiform rain (R in mm/h), times the depth of cloud above the freezing
  level (over 6 km, capped at 1.5) and a seeded lognormal texture (the ice-rain link varies), plus a tenth of
  the cloud ice path (anvils scatter a little).
- **Parallax**: the 89-183 GHz channels see the ice where their slanted line of sight crosses
  :data:`ICE_HEIGHT_KM` (7 km), displaced by ``h tan(incidence)`` towards the satellite: 9.2 km for S1 (52.8
  degrees), 8.1 km for S2 (49.2 degrees); each swath uses its own incidence angle throughout.
- **Footprint**: the field is averaged with a circular Gaussian whose FWHM is the geometric mean of the real
  elliptical footprint (along x cross track: 32 x 19 km at 10 GHz, 18 x 11 at 18.7, 15 x 9 at 23.8 and 36.6,
  7 x 4 at 89, 6 x 4 km at 166-183 GHz, i.e. 24.7, 14.1, 11.6, 5.3 and 4.9 km) and sampled at the footprint
  centre; then Gaussian noise of the channel's NEDT (0.47-1.05 K) is added.

Measured on the simulated archive (seed 42, default :class:`GMIConfig` and world, 2026-07-15, footprints with
rain data over the region): see ``docs/simulation.md``; ``tests/test_synthetic_gpm.py`` pins the ranges. The
ice-scattering signal -PCT89 (PCT89 = 1.7 TB89V - 0.7 TB89H, Cecil and Chronis 2018) correlates with the
footprint's surface rain much more strongly than AGRI's 10.8 um does over the ocean, hardly at all better over
land (see the notes in ``docs/simulation.md``).

Simplifications: one effective emitting temperature per channel, no polarisation by scattering, no sea-surface
wind or foam, no snow cover or desert emissivity, every footprint at the scan time, one ice height for the parallax, no
rotation of the footprint ellipse.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from satpy_prenet.synthetic import footprint
from satpy_prenet.synthetic.fields import periodic_take, powerlaw_field, rng_for
from satpy_prenet.synthetic.geometry import EARTH_RADIUS_KM, lonlat_to_pixel
from satpy_prenet.synthetic.orbit import Overpass, Swath, unit_vectors
from satpy_prenet.synthetic.world import SimulatedScene

logger = logging.getLogger(__name__)

#: Earth incidence angle (degrees) of each swath: S1 (10-89 GHz) and S2 (166-183 GHz).
INCIDENCE_DEG = {"S1": 52.8, "S2": 49.2}
#: Height (km) of the scattering ice the 89-183 GHz channels see: the parallax shifts it by h tan(incidence).
ICE_HEIGHT_KM = 7.0
#: Lapse rate (K/km) and the scale height of water vapour (km).
LAPSE_RATE = 6.5
VAPOUR_SCALE_HEIGHT = 2.0
COSMIC_BACKGROUND = 2.7
#: Fraction of the brightness temperature that scattering by a thick ice layer can remove.
SCATTERING_ALBEDO = 0.5
_KEY = 5150
_ICE_TEXTURE_SIZE = 512


@dataclass(frozen=True)
class GMIChannel:
    """Radiative parameters of one GMI channel.

    Attributes:
        swath: ``S1`` or ``S2``.
        label: Frequency and polarisation, as the reader labels them (``"89.0H"``, ``"183.31+-7V"``).
        fwhm_along_km, fwhm_cross_km: Real footprint FWHM along and across the scan (km).
        nedt: Noise-equivalent temperature difference (K).
        tau_dry: Nadir oxygen opacity (nepers).
        k_vapour: Nadir vapour opacity per kg m-2 of column vapour.
        k_liquid: Nadir cloud-liquid opacity per kg m-2.
        rain_k, rain_alpha: Rain specific attenuation ``k R**alpha`` (dB/km, R in mm/h).
        e_ocean: Calm-ocean emissivity at the channel's incidence and polarisation.
        e_land: Land emissivity.
        k_ice: Scattering coefficient per kg m-2 of precipitating ice.
    """

    swath: str
    label: str
    fwhm_along_km: float
    fwhm_cross_km: float
    nedt: float
    tau_dry: float
    k_vapour: float
    k_liquid: float
    rain_k: float
    rain_alpha: float
    e_ocean: float
    e_land: float
    k_ice: float

    @property
    def fwhm_km(self) -> float:
        """FWHM (km) of the circular Gaussian footprint simulated: the geometric mean of the real ellipse's axes."""
        return float(np.sqrt(self.fwhm_along_km * self.fwhm_cross_km))

    @property
    def parallax(self) -> bool:
        """Whether the channel sees mainly the ice (89 GHz and above), displaced towards the satellite."""
        return self.k_ice >= 0.5


#: The 13 channels in file order (S1: 9, S2: 4). Footprints: real along x cross-track FWHM (km); NEDT: the
#: pre-launch specification for 10-89 GHz and the on-orbit values (Draper et al. 2015) for 166-183 GHz.
CHANNELS = (
    GMIChannel("S1", "10.65V", 32.0, 19.0, 0.96, 0.010, 0.0002, 0.08, 0.0101, 1.276, 0.56, 0.95, 0.005),
    GMIChannel("S1", "10.65H", 32.0, 19.0, 0.96, 0.010, 0.0002, 0.08, 0.0101, 1.276, 0.29, 0.90, 0.005),
    GMIChannel("S1", "18.7V", 18.0, 11.0, 0.84, 0.013, 0.0013, 0.25, 0.0751, 1.099, 0.59, 0.95, 0.03),
    GMIChannel("S1", "18.7H", 18.0, 11.0, 0.84, 0.013, 0.0013, 0.25, 0.0751, 1.099, 0.31, 0.90, 0.03),
    GMIChannel("S1", "23.8V", 15.0, 9.0, 1.05, 0.015, 0.0040, 0.38, 0.124, 1.061, 0.61, 0.95, 0.04),
    GMIChannel("S1", "36.64V", 15.0, 9.0, 0.65, 0.035, 0.0017, 0.85, 0.30, 0.96, 0.66, 0.94, 0.15),
    GMIChannel("S1", "36.64H", 15.0, 9.0, 0.65, 0.035, 0.0017, 0.85, 0.30, 0.96, 0.36, 0.90, 0.15),
    GMIChannel("S1", "89.0V", 7.0, 4.0, 0.57, 0.050, 0.0080, 3.0, 1.06, 0.754, 0.78, 0.94, 0.7),
    GMIChannel("S1", "89.0H", 7.0, 4.0, 0.57, 0.050, 0.0080, 3.0, 1.06, 0.754, 0.50, 0.92, 0.7),
    GMIChannel("S2", "166.0V", 6.0, 4.0, 0.70, 0.030, 0.0200, 6.0, 1.6, 0.66, 0.86, 0.94, 1.3),
    GMIChannel("S2", "166.0H", 6.0, 4.0, 0.65, 0.030, 0.0200, 6.0, 1.6, 0.66, 0.66, 0.92, 1.3),
    GMIChannel("S2", "183.31+-3V", 6.0, 4.0, 0.56, 0.030, 0.3000, 6.5, 1.65, 0.65, 0.87, 0.94, 0.6),
    GMIChannel("S2", "183.31+-7V", 6.0, 4.0, 0.47, 0.030, 0.0900, 6.5, 1.65, 0.65, 0.87, 0.94, 1.0),
)


@dataclass(frozen=True)
class GMIConfig:
    """Knobs of the GMI observation model (the defaults are the project's premise).

    Attributes:
        noise: Factor on each channel's NEDT (0 = no noise).
        blur: Factor on each channel's footprint FWHM (0 = sample the AGRI pixel).
        scattering: Factor on the precipitating ice path (0 = no ice scattering).
        ice_spread: Standard deviation of the log of the ice-to-rain factor (a smooth texture).
    """

    noise: float = 1.0
    blur: float = 1.0
    scattering: float = 1.0
    ice_spread: float = 0.5

    def __post_init__(self) -> None:
        """Validate."""
        for name in ("noise", "blur", "scattering", "ice_spread"):
            if getattr(self, name) < 0:
                raise ValueError(f"GMIConfig.{name} must be >= 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class GMIObservation:
    """GMI's view of an overpass.

    Attributes:
        overpass: The geometry.
        tc: Brightness temperatures (K) by swath: ``"S1"`` (nscan, 221, 9) and ``"S2"`` (nscan, 221, 4),
            float32, NaN where the footprint is outside the simulated scenes.
        quality: ``Quality`` flags by swath (int8): 0 good, -1 missing.
        rain: Surface rain rate (mm/h) of the AGRI pixel under each footprint centre, by swath (NaN: missing).
        land: Land under each footprint centre, by swath (bool).
        seed: Seed of the noise and ice textures.
        config: The model's knobs.
    """

    overpass: Overpass
    tc: dict[str, np.ndarray]
    quality: dict[str, np.ndarray]
    rain: dict[str, np.ndarray]
    land: dict[str, np.ndarray]
    seed: int
    config: GMIConfig


def pct89(tb_v: np.ndarray, tb_h: np.ndarray) -> np.ndarray:
    """89 GHz polarisation-corrected temperature, low where ice scatters.

    The weights 1.7 / 0.7 are those of Cecil and Chronis (2018) for GMI's 89 GHz (the classic 1.818 / 0.818 of
    Spencer et al. 1989 were derived for SSM/I's 85 GHz).
    """
    return 1.7 * tb_v - 0.7 * tb_h


@functools.lru_cache(maxsize=4)
def _ice_texture(seed: int) -> np.ndarray:
    """Periodic smooth unit-variance texture of the ice-to-rain factor, sampled at global AGRI pixels."""
    return powerlaw_field(rng_for(seed, _KEY, 1), (_ICE_TEXTURE_SIZE, _ICE_TEXTURE_SIZE), min_scale=4.0,
                          max_scale=150.0)


def precipitating_ice(scene: SimulatedScene, seed: int, config: GMIConfig) -> np.ndarray:
    """Ice path (kg m-2) that scatters microwaves: precipitating ice above the freezing level plus cloud ice."""
    rain = np.nan_to_num(scene.rain_rate)
    top = np.nan_to_num(scene.cloud_top_height)
    depth = np.clip((top - scene.freezing_level) / np.float32(6.0), 0.0, 1.5)
    per_rain = np.where(scene.rain_type == 2, np.float32(0.25), np.where(scene.rain_type == 1, np.float32(0.06), 0))
    texture = periodic_take(_ice_texture(seed), scene.window.lines(), scene.window.cols())
    spread = np.exp(np.float32(config.ice_spread) * texture - np.float32(config.ice_spread**2 / 2))
    ice = per_rain * rain ** np.float32(0.8) * depth * spread + np.float32(0.1) * np.nan_to_num(scene.ice_water_path)
    return (ice * np.float32(config.scattering)).astype(np.float32)


def brightness_temperature(scene: SimulatedScene, channel: GMIChannel, ice: np.ndarray) -> np.ndarray:
    """Brightness temperature (K) of one channel on the scene's grid, before footprint averaging and noise."""
    land = scene.land.astype(np.float32)
    elevation = np.nan_to_num(scene.elevation)
    skin = scene.surface_temperature
    air = skin - np.float32(1.0) - land * np.float32(1.5)
    vapour = channel.k_vapour * scene.tcwv
    liquid = channel.k_liquid * np.nan_to_num(scene.liquid_water_path)
    rain = np.nan_to_num(scene.rain_rate)
    rain_depth = np.where(scene.rain_type == 3, np.clip(np.nan_to_num(scene.cloud_top_height) - elevation, 0.5, 3.0),
                          np.maximum(scene.freezing_level - elevation, np.float32(0.5)))
    rain_tau = channel.rain_k * rain**channel.rain_alpha * rain_depth / np.float32(4.343)
    # Effective emission heights above the surface (km): vapour near a scale height, higher where the slant
    # opacity above is large (183 GHz); oxygen 4 km; cloud 1.5 km; rain half the rain depth.
    mu = np.float32(np.cos(np.deg2rad(INCIDENCE_DEG[channel.swath])))
    z_vapour = VAPOUR_SCALE_HEIGHT * (0.75 + np.log(np.maximum(vapour / mu, 1.0)))
    tau = channel.tau_dry + vapour + liquid + rain_tau
    z_emit = (channel.tau_dry * 4.0 + vapour * z_vapour + liquid * 1.5 + rain_tau * rain_depth / 2) / tau
    t_atm = air - np.float32(LAPSE_RATE) * z_emit
    transmission = np.exp(-tau / mu)
    emissivity = land * channel.e_land + (1 - land) * channel.e_ocean
    down = t_atm * (1 - transmission) + COSMIC_BACKGROUND * transmission
    tb = emissivity * skin * transmission + t_atm * (1 - transmission) + (1 - emissivity) * transmission * down
    tb *= 1 - SCATTERING_ALBEDO * (1 - np.exp(-channel.k_ice * ice))
    return tb.astype(np.float32)


def observe_gmi(overpass: Overpass, scenes: Sequence[SimulatedScene], *, seed: int,
                config: GMIConfig | None = None) -> GMIObservation:
    """Observe the simulated atmosphere along an overpass with GMI.

    Every scan is observed in the scene whose start time is nearest to it; footprints outside that scene's
    window or off the disc are missing (NaN, ``Quality`` -1).

    Args:
        overpass: Geometry of the pass (:func:`satpy_prenet.synthetic.orbit.gpm_overpasses`).
        scenes: Simulated scenes around the pass (any windows, one platform).
        seed: Seed of the instrument noise and the ice texture.
        config: Model knobs (default :class:`GMIConfig`).

    Returns:
        The observation.
    """
    config = config or GMIConfig()
    tc, quality, rain, land = {}, {}, {}, {}
    for name, swath in (("S1", overpass.s1), ("S2", overpass.s2)):
        channels = [chan for chan in CHANNELS if chan.swath == name]
        tc[name], rain[name], land[name] = _observe_swath(swath, channels, scenes, seed, config)
        valid = np.isfinite(tc[name][..., 0])
        rng = rng_for(seed, _KEY, 2, overpass.granule, int(swath.scan_index[0]), 1 if name == "S1" else 2)
        nedt = np.array([chan.nedt for chan in channels], np.float32) * np.float32(config.noise)
        tc[name] += rng.standard_normal(tc[name].shape, dtype=np.float32) * nedt
        quality[name] = np.where(valid, 0, -1).astype(np.int8)
    return GMIObservation(overpass, tc, quality, rain, land, seed, config)


def _observe_swath(swath: Swath, channels: list[GMIChannel], scenes: Sequence[SimulatedScene], seed: int,
                   config: GMIConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Noise-free TB (nscan, pixels, channels), footprint rain and land of one swath."""
    shape = swath.lon.shape
    tc = np.full((*shape, len(channels)), np.nan, np.float32)
    rain = np.full(shape, np.nan, np.float32)
    land = np.zeros(shape, bool)
    which = footprint.nearest_scene(swath.time, scenes)
    margin = int(np.ceil(2.5 * max(chan.fwhm_km for chan in channels) * config.blur / 4.0)) + 2
    for index in np.unique(which):
        scans = np.flatnonzero(which == index)
        rows, cols, valid = footprint.pixel_index(scenes[index], swath.lon[scans], swath.lat[scans])
        if not valid.any():
            continue
        sel = (np.broadcast_to(scans[:, None], valid.shape)[valid], np.nonzero(valid)[1])
        r, c = rows[valid], cols[valid]
        plain = [k for k, chan in enumerate(channels) if not chan.parallax]
        tc[sel[0], sel[1]] = _footprint_tb(scenes[index], r, c, channels, plain, (0.0, 0.0), margin, seed, config)
        shift = _parallax_shift(swath, sel, scenes[index], INCIDENCE_DEG[swath.pattern.name])
        ice_channels = [k for k, chan in enumerate(channels) if chan.parallax]
        for key in np.unique(shift, axis=0):
            group = np.all(shift == key, axis=1)
            tb = _footprint_tb(scenes[index], r[group], c[group], channels, ice_channels, tuple(key), margin, seed,
                               config)
            tc[sel[0][group], sel[1][group]] = np.where(np.isnan(tb), tc[sel[0][group], sel[1][group]], tb)
        rain[sel] = scenes[index].rain_rate[r, c]
        land[sel] = scenes[index].land[r, c]
    return tc, rain, land


def _footprint_tb(scene: SimulatedScene, rows: np.ndarray, cols: np.ndarray, channels: list[GMIChannel],
                  which: list[int], shift: tuple[float, float], margin: int, seed: int,
                  config: GMIConfig) -> np.ndarray:
    """Footprint-averaged TB of some channels at some pixels (NaN for the other channels).

    The ice is seen displaced by ``shift`` AGRI pixels (line, column): the parallax of the slanted view.
    """
    out = np.full((rows.size, len(channels)), np.nan, np.float32)
    if not which:
        return out
    crop, offset = footprint.crop(scene, rows, cols, margin + int(np.ceil(np.abs(shift).max())))
    pixel_km = footprint.pixel_size_km(crop)
    ice = precipitating_ice(crop, seed, config)
    if any(shift):
        ice = ndimage.shift(ice, (-shift[0], -shift[1]), order=1, mode="nearest")
    for k in which:
        chan = channels[k]
        field = footprint.gaussian_blur(brightness_temperature(crop, chan, ice), chan.fwhm_km * config.blur, pixel_km)
        out[:, k] = field[rows - offset[0], cols - offset[1]]
    return out


def _parallax_shift(swath: Swath, sel: tuple[np.ndarray, np.ndarray], scene: SimulatedScene,
                    incidence: float) -> np.ndarray:
    """Where the line of sight crosses :data:`ICE_HEIGHT_KM`, relative to the selected footprints' centres.

    Returns (line, column) offsets in AGRI pixels, towards the satellite, rounded to half a pixel.
    """
    lon, lat = swath.lon[sel].astype(np.float64), swath.lat[sel].astype(np.float64)
    ground = unit_vectors(lon, lat)
    view = swath.sc_position[sel[0]] - ground * EARTH_RADIUS_KM
    view -= np.sum(view * ground, axis=-1, keepdims=True) * ground
    lam, phi = np.deg2rad(lon), np.deg2rad(lat)
    east = np.stack([-np.sin(lam), np.cos(lam), np.zeros_like(lam)], axis=-1)
    north = np.stack([-np.sin(phi) * np.cos(lam), -np.sin(phi) * np.sin(lam), np.cos(phi)], axis=-1)
    norm = np.linalg.norm(view, axis=-1)
    distance = ICE_HEIGHT_KM * np.tan(np.deg2rad(incidence)) / EARTH_RADIUS_KM
    d_lon = np.rad2deg(distance * np.sum(view * east, -1) / norm / np.cos(phi))
    d_lat = np.rad2deg(distance * np.sum(view * north, -1) / norm)
    line0, col0 = lonlat_to_pixel(scene.platform, lon, lat)
    line1, col1 = lonlat_to_pixel(scene.platform, lon + d_lon, lat + d_lat)
    shift = np.stack([line1 - line0, col1 - col0], axis=-1)
    return np.round(np.nan_to_num(shift) * 2.0) / 2.0
