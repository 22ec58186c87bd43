# SPDX-License-Identifier: GPL-3.0-or-later
"""What the DPR Ku radar sees of the simulated atmosphere: reflectivity profiles and the 2A products.

Each footprint (49 rays across 245 km, 5 km apart) is observed in the AGRI scene of the nearest 15-minute slot, at
the AGRI pixel under its centre (about the size of the 5 km radar footprint). The profile has 176 range bins of
125 m along the slant path, bin 176 at the ellipsoid (1-based, as the files count them), so the vertical step is
125 m times the cosine of the local zenith angle.

- **Rain**: ``Z = a R**b`` at the surface with ``(a, b)`` per rain regime (stratiform 200, 1.6; convective 300,
  1.4; warm 100, 1.5), redrawn per overpass (``a`` lognormal with sigma 0.25, ``b`` normal with sigma 0.08), and a
  drop-size scatter of ``zr_spread_db`` dB per footprint, most of it (``cell_fraction``) as a smooth texture of
  rain-cell size, the rest pixel noise.
- **Vertical structure**: nearly constant reflectivity in the liquid below the freezing level (0, +0.4 and
  -1.5 dB/km upward for stratiform, convective and warm rain); in stratiform rain a bright band of
  ``bright_band_db`` (Gaussian, sigma 150 m) centred 150 m below the freezing level; in the ice above, a drop of
  6 dB (stratiform) or 2 dB (convective) and a decrease of 2.0 or 1.2 dB/km up to the cloud top; warm rain ends
  at its cloud top.
- **Measurement**: two-way attenuation ``2 x 0.03 R**1.13`` dB/km in the liquid (``zFactorMeasured`` only: the
  corrected ``zFactorFinal`` is the true profile plus ``noise_db`` of noise), a minimum detectable
  ``min_dbz`` (15 dBZ): weaker bins are fill in ``zFactorFinal`` and -28888 in ``zFactorMeasured``, as in the
  real files; main-lobe ground clutter in the ``4 + 0.75 x zenith angle`` (+1 over land) bins above the surface
  (``binClutterFreeBottom`` above ``binRealSurface``) rising to the surface echo in ``zFactorMeasured``, while
  ``zFactorFinal`` and ``precipRate`` hold the clutter-free-bottom value down to the surface, as the real algorithm
  does.
- **Products**: ``precipRateNearSurface`` inverts the near-surface (clutter-free bottom) reflectivity with the
  regime's *nominal* Z-R, so the drop-size scatter becomes retrieval error; rain too weak to give 15 dBZ is not
  detected (``typePrecip`` -1111, rate 0). ``typePrecip`` codes are the major type times 10**7 (1 stratiform,
  2 convective; the simulated warm rain counts as convective, with ``flagShallowRain`` 11); the minor digits are
  not modelled. ``flagBB`` is 2 (detected by Ku only) where the bright-band peak reaches 15 dBZ.

Measured correlations with the surface rain are in ``docs/simulation.md`` and pinned by
``tests/test_synthetic_gpm.py``.

Simplifications: Ka is not simulated (its columns are fill, as on the outer rays before 2018), no non-uniform beam
filling, no multiple scattering, no snow at the surface (rain is liquid at the surface by construction).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from satpy_prenet.synthetic import footprint
from satpy_prenet.synthetic.fields import powerlaw_field, rng_for
from satpy_prenet.synthetic.orbit import Overpass

logger = logging.getLogger(__name__)

NBIN = 176
#: Range-bin length along the slant path (m).
BIN_LENGTH = 125.0
#: Nominal Z-R relations (a, b) per DPR major type (and the simulated warm rain, 3).
NOMINAL_ZR = {1: (200.0, 1.6), 2: (300.0, 1.4), 3: (100.0, 1.5)}
#: Marker of "no echo above the noise" in zFactorMeasured (observed in real V07 files).
NO_ECHO_MEASURED = np.float32(-28888.0)
#: Bright-band half width (sigma, m) and its centre below the freezing level (m).
BB_SIGMA = 150.0
BB_OFFSET = 150.0
_KEY = 6160
_TEXTURE_SIZE = 1024
# Per regime: liquid slope (dB/km upward), ice offset (dB), ice slope (dB/km decrease).
_PROFILE = {1: (0.0, -6.0, 2.0), 2: (0.4, -2.0, 1.2), 3: (-1.5, -6.0, 6.0)}
_TYPE_CODES = {1: 10_000_000, 2: 20_000_000, 3: 20_000_000}


@dataclass(frozen=True)
class DPRConfig:
    """Knobs of the DPR observation model (the defaults are the project's premise).

    Attributes:
        zr_spread_db: Standard deviation (dB) of the drop-size scatter of Z at a given rain rate.
        cell_fraction: Share of that variance in a smooth texture of rain-cell scale (the rest per footprint).
        bright_band_db: Peak of the stratiform bright band above the rain below it (dB).
        min_dbz: Minimum detectable reflectivity (dBZ).
        noise_db: Noise of the corrected reflectivity per bin (dB).
        attenuation: Whether ``zFactorMeasured`` is attenuated by the rain.
    """

    zr_spread_db: float = 1.5
    cell_fraction: float = 0.7
    bright_band_db: float = 6.0
    min_dbz: float = 15.0
    noise_db: float = 0.3
    attenuation: bool = True

    def __post_init__(self) -> None:
        """Validate."""
        if not 0.0 <= self.cell_fraction <= 1.0:
            raise ValueError(f"DPRConfig.cell_fraction must be in [0, 1], got {self.cell_fraction}")
        for name in ("zr_spread_db", "bright_band_db", "noise_db"):
            if getattr(self, name) < 0:
                raise ValueError(f"DPRConfig.{name} must be >= 0, got {getattr(self, name)}")


@dataclass(frozen=True)
class DPRObservation:
    """DPR Ku's view of an overpass; arrays are (nscan, nray[, nbin]), NaN where missing or no echo.

    Bin numbers are 1-based (int16); codes follow the files (-1111 no rain, -9999 missing).

    Attributes:
        overpass: The geometry.
        seed: Seed of the drop-size scatter and noise.
        config: The model's knobs.
        zr: The ``(a, b)`` drawn for this overpass per regime.
        valid: Footprints inside the simulated scenes.
        rain: True surface rain (mm/h) of the AGRI pixel under the footprint.
        rain_type: Simulated rain type there (0 none, 1 stratiform, 2 convective, 3 warm).
        land: Land there.
        elevation: Surface height (m).
        freezing_level: Height of the 0 degC level (m).
        local_zenith: Local zenith angle (degrees).
        height: Height of each bin above the ellipsoid (m).
        air_temperature: Air temperature of each bin (K).
        z_true: True reflectivity (dBZ, before noise, attenuation and detection; -inf without echo).
        z_final: Corrected reflectivity as written (dBZ; NaN = fill).
        z_measured: Measured reflectivity (dBZ; -28888 below the noise, NaN below the surface echo range).
        precip_rate: Rain rate per bin (mm/h; 0 above the echo, NaN below the surface).
        fields: 2-D products by file name (``precipRateNearSurface``, ``typePrecip``, ``flagBB`` ...).
    """

    overpass: Overpass
    seed: int
    config: DPRConfig
    zr: dict[int, tuple[float, float]]
    valid: np.ndarray
    rain: np.ndarray
    rain_type: np.ndarray
    land: np.ndarray
    elevation: np.ndarray
    freezing_level: np.ndarray
    local_zenith: np.ndarray
    height: np.ndarray
    air_temperature: np.ndarray
    z_true: np.ndarray
    z_final: np.ndarray
    z_measured: np.ndarray
    precip_rate: np.ndarray
    fields: dict[str, np.ndarray] = field(default_factory=dict)


@functools.lru_cache(maxsize=4)
def _cell_texture(seed: int) -> np.ndarray:
    """Periodic unit-variance texture of rain-cell scale (AGRI pixels) for the drop-size scatter."""
    return powerlaw_field(rng_for(seed, _KEY, 1), (_TEXTURE_SIZE, _TEXTURE_SIZE), min_scale=2.0, max_scale=25.0)


def draw_zr(seed: int, granule: int) -> dict[int, tuple[float, float]]:
    """The ``(a, b)`` of each regime for one overpass (lognormal ``a``, normal ``b`` around :data:`NOMINAL_ZR`)."""
    rng = rng_for(seed, _KEY, 2, granule)
    return {regime: (float(a * np.exp(0.25 * rng.standard_normal())), float(b + 0.08 * rng.standard_normal()))
            for regime, (a, b) in NOMINAL_ZR.items()}


def _sample(overpass: Overpass, scenes: Sequence, seed: int, config: DPRConfig) -> dict[str, np.ndarray]:
    """Scene fields under each footprint centre, and the drop-size scatter (dB)."""
    fs = overpass.fs
    shape = fs.lon.shape
    out = {name: np.full(shape, np.nan, np.float32) for name in
           ("rain", "elevation", "freezing_level", "cloud_top", "air_surface", "scatter")}
    out["rain_type"] = np.zeros(shape, np.int8)
    out["land"] = np.zeros(shape, bool)
    out["valid"] = np.zeros(shape, bool)
    if fs.nscan == 0:
        return out
    which = footprint.nearest_scene(fs.time, scenes)
    texture = _cell_texture(seed)
    for index in np.unique(which):
        scene = scenes[index]
        scans = np.flatnonzero(which == index)
        rows, cols, valid = footprint.pixel_index(scene, fs.lon[scans], fs.lat[scans])
        sel = (np.broadcast_to(scans[:, None], valid.shape)[valid], np.nonzero(valid)[1])
        r, c = rows[valid], cols[valid]
        out["valid"][sel] = True
        out["rain"][sel] = scene.rain_rate[r, c]
        out["rain_type"][sel] = scene.rain_type[r, c]
        out["land"][sel] = scene.land[r, c]
        out["elevation"][sel] = scene.elevation[r, c] * 1000.0
        out["freezing_level"][sel] = scene.freezing_level[r, c] * 1000.0
        out["cloud_top"][sel] = np.nan_to_num(scene.cloud_top_height[r, c]) * 1000.0
        out["air_surface"][sel] = scene.surface_temperature[r, c] - 1.0
        cells = texture[(r + scene.window.line0) % _TEXTURE_SIZE, (c + scene.window.col0) % _TEXTURE_SIZE]
        out["scatter"][sel] = cells
    white = rng_for(seed, _KEY, 3, overpass.granule, int(fs.scan_index[0])).standard_normal(shape).astype(np.float32)
    frac = np.float32(config.cell_fraction)
    out["scatter"] = np.float32(config.zr_spread_db) * (np.sqrt(frac) * out["scatter"] + np.sqrt(1 - frac) * white)
    return out


def _profiles(sample: dict[str, np.ndarray], zr: dict[int, tuple[float, float]], height: np.ndarray,
              config: DPRConfig) -> np.ndarray:
    """True reflectivity (dBZ, -inf without echo) of every bin."""
    rain = np.nan_to_num(sample["rain"])
    regime = sample["rain_type"].astype(np.int64)
    raining = (rain > 0) & (regime > 0) & sample["valid"]
    a = np.ones(rain.shape, np.float32)
    b = np.ones(rain.shape, np.float32)
    liquid_slope, ice_offset, ice_slope = (np.zeros(rain.shape, np.float32) for _ in range(3))
    for key, (za, zb) in zr.items():
        m = regime == key
        a[m], b[m] = za, zb
        liquid_slope[m], ice_offset[m], ice_slope[m] = _PROFILE[key]
    with np.errstate(divide="ignore"):
        z_surface = 10.0 * np.log10(a * np.where(raining, rain, 1.0) ** b) + np.nan_to_num(sample["scatter"])
    surface = np.nan_to_num(sample["elevation"])[..., None]
    fl = np.nan_to_num(sample["freezing_level"])[..., None]
    top = np.where(regime == 3, np.minimum(sample["cloud_top"], sample["freezing_level"]),
                   np.maximum(sample["cloud_top"], sample["freezing_level"] + 500.0))
    km_above = (height - surface) / 1000.0
    z = np.where(height <= fl, z_surface[..., None] + liquid_slope[..., None] * km_above,
                 z_surface[..., None] + ice_offset[..., None] - ice_slope[..., None] * (height - fl) / 1000.0)
    stratiform = (regime == 1)[..., None]
    bright = np.float32(config.bright_band_db) * np.exp(-0.5 * ((height - (fl - BB_OFFSET)) / BB_SIGMA) ** 2)
    z = z + np.where(stratiform, bright, 0.0)
    echo = raining[..., None] & (height >= surface - 1.0) & (height <= np.nan_to_num(top)[..., None])
    return np.where(echo, z, -np.inf).astype(np.float32)


def observe_dpr(overpass: Overpass, scenes: Sequence, *, seed: int, config: DPRConfig | None = None) -> DPRObservation:
    """Observe the simulated atmosphere along an overpass with the DPR Ku band (full swath ``FS``).

    Args:
        overpass: Geometry of the pass (:func:`satpy_prenet.synthetic.orbit.gpm_overpasses`).
        scenes: Simulated scenes around the pass; each scan uses the scene of the nearest start time, and
            footprints outside its window are missing.
        seed: Seed of the Z-R draws, the drop-size scatter and the noise.
        config: Model knobs (default :class:`DPRConfig`).

    Returns:
        The observation.
    """
    config = config or DPRConfig()
    fs = overpass.fs
    sample = _sample(overpass, scenes, seed, config)
    zr = draw_zr(seed, overpass.granule)
    zenith = fs.view_angle().astype(np.float32) if fs.nscan else np.zeros(fs.lon.shape, np.float32)
    step = np.float32(BIN_LENGTH) * np.cos(np.deg2rad(zenith))
    bins = np.arange(1, NBIN + 1, dtype=np.float32)
    height = (NBIN - bins) * step[..., None]
    elevation = np.nan_to_num(sample["elevation"])
    real_surface = np.clip(NBIN - np.rint(elevation / step), 1, NBIN).astype(np.int16)
    clutter = np.rint(4 + 0.75 * zenith + sample["land"]).astype(np.int16)
    clutter_free = (real_surface - clutter).astype(np.int16)
    z_true = _profiles(sample, zr, height, config)
    rng = rng_for(seed, _KEY, 4, overpass.granule, int(fs.scan_index[0]) if fs.nscan else 0)
    noisy = z_true + np.float32(config.noise_db) * rng.standard_normal(z_true.shape, dtype=np.float32)
    index = bins[None, None, :]
    above_clutter = index <= clutter_free[..., None]
    detected = (noisy >= config.min_dbz) & above_clutter
    z_final = np.where(detected, noisy, np.nan).astype(np.float32)
    near = np.take_along_axis(z_final, (clutter_free - 1).astype(np.int64)[..., None], axis=-1)[..., 0]
    in_clutter = (index > clutter_free[..., None]) & (index <= real_surface[..., None])
    z_final = np.where(in_clutter, near[..., None], z_final)
    z_measured = _measured(noisy, sample, height, step, real_surface, clutter, config)
    obs_fields = _products(sample, zr, z_final, near, height, real_surface, clutter_free, config)
    rate = _rates(z_final, sample["rain_type"], index, real_surface)
    air = sample["air_surface"][..., None] - np.float32(0.0065) * (height - elevation[..., None])
    obs_fields.update(binRealSurface=real_surface, binClutterFreeBottom=clutter_free,
                      sigmaZeroMeasured=_sigma_zero(zenith, sample["land"], obs_fields["piaFinal"]))
    logger.debug("DPR %s: %d footprints, %d with rain detected", overpass.label, fs.lon.size,
                 np.count_nonzero(obs_fields["typePrecip"] > 0))
    return DPRObservation(overpass, seed, config, zr, sample["valid"], sample["rain"], sample["rain_type"],
                          sample["land"], sample["elevation"], sample["freezing_level"], zenith, height,
                          air.astype(np.float32), z_true, z_final, z_measured, rate, obs_fields)


def _measured(noisy: np.ndarray, sample: dict[str, np.ndarray], height: np.ndarray, step: np.ndarray,
              real_surface: np.ndarray, clutter: np.ndarray, config: DPRConfig) -> np.ndarray:
    """zFactorMeasured: attenuated echo, clutter rising to the surface echo, -28888 below the noise."""
    z = noisy
    if config.attenuation:
        rain = np.nan_to_num(sample["rain"])
        liquid = (height <= np.nan_to_num(sample["freezing_level"])[..., None]) & np.isfinite(noisy)
        specific = np.where(liquid, 2 * 0.03 * rain[..., None] ** 1.13, 0.0)
        path = np.cumsum(specific * step[..., None] / 1000.0, axis=-1)
        z = z - path.astype(np.float32)
    index = np.arange(1, NBIN + 1, dtype=np.int16)[None, None, :]
    depth = (index - (real_surface - clutter)[..., None]).astype(np.float32)
    frac = np.clip(depth / np.maximum(clutter, 1)[..., None], 0.0, None)
    ground = np.where(depth > 0, np.where(frac <= 1, 20.0 + 30.0 * frac**2, 50.0 - 6.0 * (index - real_surface[
        ..., None])), -np.inf)
    with np.errstate(divide="ignore"):
        total = 10.0 * np.log10(10.0 ** (z / 10.0) + 10.0 ** (ground / 10.0))
    return np.where(total >= config.min_dbz - 3.0, total, NO_ECHO_MEASURED).astype(np.float32)


def _rates(z_final: np.ndarray, rain_type: np.ndarray, index: np.ndarray, real_surface: np.ndarray) -> np.ndarray:
    """Rain rate per bin by the nominal Z-R of the regime: 0 without echo, NaN below the surface."""
    a = np.full(rain_type.shape, NOMINAL_ZR[1][0], np.float32)
    b = np.full(rain_type.shape, NOMINAL_ZR[1][1], np.float32)
    for key, (za, zb) in NOMINAL_ZR.items():
        a[rain_type == key], b[rain_type == key] = za, zb
    rate = (10.0 ** (np.nan_to_num(z_final, nan=-np.inf) / 10.0) / a[..., None]) ** (1.0 / b[..., None])
    return np.where(index <= real_surface[..., None], rate, np.nan).astype(np.float32)


def _sigma_zero(zenith: np.ndarray, land: np.ndarray, pia: np.ndarray) -> np.ndarray:
    """Measured normalised surface cross-section (dB): ocean 11 dB at nadir falling 0.85 dB/degree, land flatter."""
    clear = np.where(land, 8.0 - 0.2 * zenith, 11.0 - 0.85 * zenith)
    return (clear - np.nan_to_num(pia)).astype(np.float32)


def _products(sample: dict[str, np.ndarray], zr: dict[int, tuple[float, float]], z_final: np.ndarray,
              near: np.ndarray, height: np.ndarray, real_surface: np.ndarray, clutter_free: np.ndarray,
              config: DPRConfig) -> dict[str, np.ndarray]:
    """The 2-D products: rain type, near-surface rate, bright band, storm top, freezing level, PIA."""
    regime = sample["rain_type"].astype(np.int64)
    echo = np.isfinite(z_final).any(axis=-1) & sample["valid"] & (regime > 0)
    no_rain = sample["valid"] & ~echo
    type_precip = np.full(regime.shape, -9999, np.int32)
    type_precip[no_rain] = -1111
    for key, code in _TYPE_CODES.items():
        type_precip[echo & (regime == key)] = code
    major = np.where(regime == 3, 2, regime)
    a = np.select([major == 1, major == 2], [NOMINAL_ZR[1][0], NOMINAL_ZR[2][0]], 1.0)
    b = np.select([major == 1, major == 2], [NOMINAL_ZR[1][1], NOMINAL_ZR[2][1]], 1.0)
    near_rate = np.where(echo & np.isfinite(near), (10.0 ** (np.nan_to_num(near) / 10.0) / a) ** (1.0 / b), 0.0)
    near_rate = np.where(sample["valid"], near_rate, np.nan).astype(np.float32)
    top_index = np.argmax(np.isfinite(z_final), axis=-1)
    storm_top = np.where(echo, top_index + 1, -9999).astype(np.int16)
    storm_height = np.where(echo, np.take_along_axis(height, top_index[..., None], -1)[..., 0], np.nan)
    fl = sample["freezing_level"]
    bb_height = fl - BB_OFFSET
    bb_peak_z = np.max(np.where(np.abs(height - bb_height[..., None]) < 2 * BB_SIGMA, np.nan_to_num(
        z_final, nan=-np.inf), -np.inf), axis=-1)
    has_bb = echo & (regime == 1) & (bb_peak_z >= config.min_dbz) & (bb_height > sample["elevation"] + 500.0)
    step = height[..., -2] - height[..., -1]
    bb_bin = np.where(has_bb, NBIN - np.rint(bb_height / np.maximum(step, 1.0)), 0).astype(np.int16)
    half_width = np.rint(1.18 * BB_SIGMA / np.maximum(step, 1.0)).astype(np.int16)
    pia = np.where(sample["valid"], 0.0, np.nan)
    if config.attenuation:
        rain = np.nan_to_num(sample["rain"])
        pia = np.where(sample["valid"], 2 * 0.03 * rain**1.13 * np.maximum(fl - sample["elevation"], 0) / 1000.0,
                       np.nan)
    return {
        "typePrecip": type_precip,
        "precipRateNearSurface": near_rate,
        "zFactorFinalNearSurface": near,
        "flagPrecip": np.where(echo, 10, np.where(no_rain, 0, -9999)).astype(np.int32),
        "flagShallowRain": np.where(echo, np.where(regime == 3, 11, 0), np.where(no_rain, -1111, -9999)).astype(
            np.int32),
        "flagBB": np.where(has_bb, 2, np.where(echo, 0, np.where(no_rain, -1111, -9999))).astype(np.int32),
        "heightBB": np.where(has_bb, bb_height, np.where(echo, 0.0, np.where(no_rain, -1111.1, np.nan))).astype(
            np.float32),
        "widthBB": np.where(has_bb, 2.355 * BB_SIGMA, np.where(echo, 0.0, np.where(no_rain, -1111.1, np.nan))).astype(
            np.float32),
        "binBBPeak": _bb_bins(bb_bin, has_bb, echo, no_rain, 0),
        "binBBTop": _bb_bins(bb_bin - half_width, has_bb, echo, no_rain, 0),
        "binBBBottom": _bb_bins(bb_bin + half_width, has_bb, echo, no_rain, 0),
        "binStormTop": storm_top,
        "heightStormTop": storm_height.astype(np.float32),
        "heightZeroDeg": fl.astype(np.float32),
        "binZeroDeg": np.where(sample["valid"], np.clip(NBIN - np.rint(np.nan_to_num(fl) / np.maximum(step, 1.0)), 1,
                                                        NBIN + 1), -9999).astype(np.int16),
        "piaFinal": pia.astype(np.float32),
        "binClutterFreeBottom": clutter_free,
        "binRealSurface": real_surface,
    }


def _bb_bins(values: np.ndarray, has_bb: np.ndarray, echo: np.ndarray, no_rain: np.ndarray,
             without: int) -> np.ndarray:
    """A bright-band bin number where a band was found, ``without`` for rain without one, -1111 for no rain."""
    return np.where(has_bb, values, np.where(echo, without, np.where(no_rain, -1111, -9999))).astype(np.int16)
