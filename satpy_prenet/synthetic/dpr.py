# SPDX-License-Identifier: GPL-3.0-or-later
"""What the DPR Ku radar sees of the simulated atmosphere: reflectivity profiles and the 2A products.

Each footprint (49 rays across 245 km, 5 km apart) is observed in the AGRI scene of the nearest 15-minute slot.
The profile has 176 range bins of 125 m along the slant path, bin 176 at the ellipsoid (1-based, as the files
count them), so the vertical step is 125 m times the cosine of the local zenith angle.

- **Rain**: ``Z = a R**b`` at the surface with ``(a, b)`` per rain regime (stratiform 200, 1.6; convective 300,
  1.4; warm 100, 1.5), redrawn per overpass (``a`` lognormal with sigma 0.25, ``b`` normal with sigma 0.08), and a
  drop-size scatter of ``zr_spread_db`` dB (3 dB; real DSD variability is about 2.5-4 dB), most of it
  (``cell_fraction``) as a smooth texture of rain-cell size, the rest per footprint.
- **Beam**: linear Z is averaged over a Gaussian beam of ``footprint_km`` (5 km) FWHM on the AGRI grid, so rain
  at the edge of the beam gives echo over a dry centre; the footprint's regime is the one giving most of its Z,
  its attenuating rain the beam-mean rain. Freezing level, surface and zenith are those under the centre.
- **Vertical structure**: nearly constant reflectivity in the liquid below the freezing level (0, +0.4 and
  -1.5 dB/km upward for stratiform, convective and warm rain); in stratiform rain a bright band of
  ``bright_band_db`` (Gaussian, sigma 150 m) centred 150 m below the freezing level; in the ice above, a drop of
  6 dB (stratiform) or 2 dB (convective) and a decrease of 2.0 or 1.2 dB/km up to the highest cloud top of the
  raining pixels in the beam; warm rain ends at its cloud top.
- **Measurement**: two-way attenuation ``2 x 0.03 R**1.13`` dB/km in the liquid; ``zFactorMeasured`` is the
  attenuated echo (values kept down to 6.5 dBZ, -28888 below, as in the real files); ``zFactorFinal`` is
  corrected with a path-integrated attenuation wrong by a factor ``1 + pia_error x N(0, 1)`` per footprint, so its
  error grows with the rain up to ``pia_error_cap_db`` (4 dB); ``noise_db`` of noise per bin; echoes below
  ``min_dbz`` (15 dBZ) are fill.
  Main-lobe ground clutter in the ``4 + 0.75 x zenith angle`` (+1 over land) bins above the surface
  (``binClutterFreeBottom`` above ``binRealSurface``) rises to the surface echo in ``zFactorMeasured``, while
  ``zFactorFinal`` and ``precipRate`` hold the clutter-free-bottom value down to the surface, as the real algorithm
  does.
- **Products**: the retrieval's type is convective where the convective share of the beam's Z plus noise
  (``type_confusion``) exceeds 0.5, so mixed footprints at the edges of cores are often misclassified (about 5 %
  overall). ``precipRateNearSurface`` inverts the corrected near-surface (clutter-free bottom) reflectivity with
  the *nominal* Z-R of that retrieved type, never the true rain: the overpass's Z-R, the drop-size scatter, the
  beam average, the attenuation-correction and the type errors all become retrieval error. Rain too weak to give
  15 dBZ is not detected (``typePrecip`` -1111, rate 0). ``typePrecip`` codes are the major type times 10**7
  (1 stratiform, 2 convective; simulated warm rain has ``flagShallowRain`` 11); the minor digits are not
  modelled. ``flagBB`` is 2 (detected by Ku only) where a stratiform footprint classified stratiform has a
  bright-band peak of 15 dBZ.

Measured correlations with the surface rain are in ``docs/simulation.md`` and pinned by
``tests/test_synthetic_gpm.py``.

Simplifications: Ka is not simulated (its columns are fill, as on the outer rays before 2018), no multiple
scattering, no snow at the surface (rain is liquid at the surface by construction), the vertical structure of
the beam is that of its dominant regime.
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
from satpy_prenet.synthetic.world import SimulatedScene

logger = logging.getLogger(__name__)

NBIN = 176
#: Range-bin length along the slant path (m).
BIN_LENGTH = 125.0
#: Nominal Z-R relations (a, b) per DPR major type (and the simulated warm rain, 3).
NOMINAL_ZR = {1: (200.0, 1.6), 2: (300.0, 1.4), 3: (100.0, 1.5)}
#: Marker of "no echo above the noise" in zFactorMeasured (observed in real V07 files).
NO_ECHO_MEASURED = np.float32(-28888.0)
#: Weakest zFactorMeasured written (dBZ); real V07 files keep measured values down to about 6-7 dBZ.
MEASURED_FLOOR_DBZ = 6.5
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
        attenuation: Whether the rain attenuates the echo (``zFactorMeasured``; ``zFactorFinal`` then carries the
            correction's error).
        footprint_km: FWHM (km) of the Gaussian beam over which linear Z is averaged (0: the AGRI pixel under the
            centre).
        pia_error: Standard deviation of the relative error of the path-attenuation correction, per footprint.
        pia_error_cap_db: Largest error (dB) of that correction (the surface reference bounds it in heavy rain).
        type_confusion: Noise on the convective share of a footprint's reflectivity before the retrieval's
            stratiform/convective threshold at 0.5.
    """

    zr_spread_db: float = 3.0
    cell_fraction: float = 0.7
    bright_band_db: float = 6.0
    min_dbz: float = 15.0
    noise_db: float = 0.3
    attenuation: bool = True
    footprint_km: float = 5.0
    pia_error: float = 0.3
    pia_error_cap_db: float = 4.0
    type_confusion: float = 0.3

    def __post_init__(self) -> None:
        """Validate."""
        if not 0.0 <= self.cell_fraction <= 1.0:
            raise ValueError(f"DPRConfig.cell_fraction must be in [0, 1], got {self.cell_fraction}")
        for name in ("zr_spread_db", "bright_band_db", "noise_db", "footprint_km", "pia_error", "pia_error_cap_db",
                     "type_confusion"):
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
        rain: True surface rain (mm/h) of the AGRI pixel under the footprint centre.
        rain_type: Simulated rain type dominating the footprint's reflectivity (0 none, 1 stratiform,
            2 convective, 3 warm).
        retrieved_type: The retrieval's major type (0 none, 1 stratiform, 2 convective), with its errors.
        convective_share: Share of the footprint's reflectivity from convective and warm rain (NaN without rain).
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
    retrieved_type: np.ndarray
    convective_share: np.ndarray
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


_SAMPLED = ("rain", "rain_footprint", "elevation", "freezing_level", "cloud_top", "air_surface", "z_linear",
            "z_convective")


def _sample(overpass: Overpass, scenes: Sequence, seed: int, zr: dict[int, tuple[float, float]],
            config: DPRConfig) -> dict[str, np.ndarray]:
    """Scene fields at each footprint: under its centre, and averaged over its Gaussian beam (linear Z, rain)."""
    fs = overpass.fs
    shape = fs.lon.shape
    out = {name: np.full(shape, np.nan, np.float32) for name in _SAMPLED}
    out["rain_type"] = np.zeros(shape, np.int8)
    out["land"] = np.zeros(shape, bool)
    out["valid"] = np.zeros(shape, bool)
    if fs.nscan == 0:
        return out
    which = footprint.nearest_scene(fs.time, scenes)
    for index in np.unique(which):
        scene = scenes[index]
        scans = np.flatnonzero(which == index)
        rows, cols, valid = footprint.pixel_index(scene, fs.lon[scans], fs.lat[scans])
        sel = (np.broadcast_to(scans[:, None], valid.shape)[valid], np.nonzero(valid)[1])
        r, c = rows[valid], cols[valid]
        out["valid"][sel] = True
        out["rain"][sel] = scene.rain_rate[r, c]
        out["land"][sel] = scene.land[r, c]
        out["elevation"][sel] = scene.elevation[r, c] * 1000.0
        out["freezing_level"][sel] = scene.freezing_level[r, c] * 1000.0
        out["air_surface"][sel] = scene.surface_temperature[r, c] - 1.0
        beam = _beam_average(scene, r, c, seed, zr, config)
        for name, values in beam.items():
            out[name][sel] = values
    return out


def _beam_average(scene: SimulatedScene, rows: np.ndarray, cols: np.ndarray, seed: int,
                  zr: dict[int, tuple[float, float]],
                  config: DPRConfig) -> dict[str, np.ndarray]:
    """Beam averages at some pixels of a scene.

    Returns the beam-weighted linear Z (with the rain-cell part of the drop-size scatter), its convective share,
    the mean rain, the dominant regime and the highest cloud top of the raining pixels.
    """
    texture = _cell_texture(seed)
    cell_db = np.float32(config.zr_spread_db * np.sqrt(config.cell_fraction))
    z_by_regime = {key: np.zeros(rows.shape, np.float64) for key in zr}
    rain_sum = np.zeros(rows.shape, np.float64)
    weights = 0.0
    top = np.zeros(rows.shape, np.float32)
    for rr, cc, weight in footprint.stencil(rows, cols, scene.window.shape, config.footprint_km,
                                            footprint.pixel_size_km(scene)):
        rain = np.nan_to_num(scene.rain_rate[rr, cc])
        regime = scene.rain_type[rr, cc]
        cells = texture[(rr + scene.window.line0) % _TEXTURE_SIZE, (cc + scene.window.col0) % _TEXTURE_SIZE]
        dsd = 10.0 ** (cell_db * cells / 10.0)
        for key, (a, b) in zr.items():
            hit = (regime == key) & (rain > 0)
            z_by_regime[key] += weight * np.where(hit, a * np.where(hit, rain, 1.0) ** b * dsd, 0.0)
        rain_sum += weight * rain
        weights += weight
        top = np.where(rain > 0, np.maximum(top, np.nan_to_num(scene.cloud_top_height[rr, cc])), top)
    total = sum(z_by_regime.values())
    stacked = np.stack([z_by_regime[key] for key in sorted(z_by_regime)])
    dominant = np.where(total > 0, np.array(sorted(z_by_regime))[np.argmax(stacked, axis=0)], 0)
    with np.errstate(invalid="ignore", divide="ignore"):
        share = np.where(total > 0, (z_by_regime[2] + z_by_regime[3]) / total, np.nan)
    return {"z_linear": total / weights, "z_convective": share, "rain_footprint": rain_sum / weights,
            "rain_type": dominant, "cloud_top": top * 1000.0}


def _profiles(sample: dict[str, np.ndarray], height: np.ndarray, config: DPRConfig, white: np.ndarray) -> np.ndarray:
    """True reflectivity (dBZ, -inf without echo) of every bin, from the beam-averaged surface reflectivity."""
    regime = sample["rain_type"].astype(np.int64)
    raining = (np.nan_to_num(sample["z_linear"]) > 0) & (regime > 0) & sample["valid"]
    liquid_slope, ice_offset, ice_slope = (np.zeros(regime.shape, np.float32) for _ in range(3))
    for key, shape in _PROFILE.items():
        m = regime == key
        liquid_slope[m], ice_offset[m], ice_slope[m] = shape
    pixel_db = np.float32(config.zr_spread_db * np.sqrt(1.0 - config.cell_fraction)) * white
    with np.errstate(divide="ignore"):
        z_surface = 10.0 * np.log10(np.where(raining, sample["z_linear"], 1.0)) + pixel_db
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


def _classify(sample: dict[str, np.ndarray], rng: np.random.Generator, config: DPRConfig) -> np.ndarray:
    """The retrieval's major type (1 stratiform, 2 convective, 0 none).

    The convective share of the beam's reflectivity, plus noise, against 0.5: mixed footprints at the edges of
    cores are often misclassified, pure ones rarely.
    """
    share = np.nan_to_num(sample["z_convective"], nan=0.0)
    noisy = share + np.float32(config.type_confusion) * rng.standard_normal(share.shape, dtype=np.float32)
    return np.where(sample["rain_type"] > 0, np.where(noisy > 0.5, 2, 1), 0).astype(np.int8)


def _two_way_path(sample: dict[str, np.ndarray], height: np.ndarray, step: np.ndarray,
                  config: DPRConfig) -> np.ndarray:
    """Cumulative two-way path attenuation (dB) from the top of the profile to each bin (0 without attenuation)."""
    if not config.attenuation:
        return np.zeros(height.shape, np.float32)
    rain = np.nan_to_num(sample["rain_footprint"])
    liquid = height <= np.nan_to_num(sample["freezing_level"])[..., None]
    specific = np.where(liquid, 2 * 0.03 * rain[..., None] ** 1.13, 0.0)
    return np.cumsum(specific * step[..., None] / 1000.0, axis=-1).astype(np.float32)


def observe_dpr(overpass: Overpass, scenes: Sequence, *, seed: int, config: DPRConfig | None = None) -> DPRObservation:
    """Observe the simulated atmosphere along an overpass with the DPR Ku band (full swath ``FS``).

    Args:
        overpass: Geometry of the pass (:func:`satpy_prenet.synthetic.orbit.gpm_overpasses`).
        scenes: Simulated scenes around the pass; each scan uses the scene of the nearest start time, and
            footprints outside its window are missing.
        seed: Seed of the Z-R draws, the drop-size scatter, the noise and the retrieval's errors.
        config: Model knobs (default :class:`DPRConfig`).

    Returns:
        The observation.
    """
    config = config or DPRConfig()
    fs = overpass.fs
    zr = draw_zr(seed, overpass.granule)
    sample = _sample(overpass, scenes, seed, zr, config)
    zenith = fs.view_angle().astype(np.float32) if fs.nscan else np.zeros(fs.lon.shape, np.float32)
    step = np.float32(BIN_LENGTH) * np.cos(np.deg2rad(zenith))
    bins = np.arange(1, NBIN + 1, dtype=np.float32)
    height = (NBIN - bins) * step[..., None]
    elevation = np.nan_to_num(sample["elevation"])
    real_surface = np.clip(NBIN - np.rint(elevation / step), 1, NBIN).astype(np.int16)
    clutter = np.rint(4 + 0.75 * zenith + sample["land"]).astype(np.int16)
    clutter_free = (real_surface - clutter).astype(np.int16)
    rng = rng_for(seed, _KEY, 4, overpass.granule, int(fs.scan_index[0]) if fs.nscan else 0)
    z_true = _profiles(sample, height, config, rng.standard_normal(zenith.shape, dtype=np.float32))
    noisy = z_true + np.float32(config.noise_db) * rng.standard_normal(z_true.shape, dtype=np.float32)
    path = _two_way_path(sample, height, step, config)
    # The correction's error: a relative error of the path attenuation, normal per footprint, capped in dB.
    relative = np.float32(config.pia_error) * rng.standard_normal(zenith.shape, dtype=np.float32)
    cap = np.float32(config.pia_error_cap_db)
    corrected = noisy + np.clip(relative[..., None] * path, -cap, cap)
    index = bins[None, None, :]
    detected = (corrected >= config.min_dbz) & (index <= clutter_free[..., None])
    z_final = np.where(detected, corrected, np.nan).astype(np.float32)
    near = np.take_along_axis(z_final, (clutter_free - 1).astype(np.int64)[..., None], axis=-1)[..., 0]
    in_clutter = (index > clutter_free[..., None]) & (index <= real_surface[..., None])
    z_final = np.where(in_clutter, near[..., None], z_final)
    z_measured = _measured(noisy - path, real_surface, clutter)
    retrieved = _classify(sample, rng, config)
    pia = np.take_along_axis(path, (real_surface - 1).astype(np.int64)[..., None], axis=-1)[..., 0]
    pia = pia + np.clip(relative * pia, -cap, cap)
    obs_fields = _products(sample, retrieved, z_final, near, height, config)
    rate = _rates(z_final, retrieved, index, real_surface)
    air = sample["air_surface"][..., None] - np.float32(0.0065) * (height - elevation[..., None])
    obs_fields.update(binRealSurface=real_surface, binClutterFreeBottom=clutter_free,
                      piaFinal=np.where(sample["valid"], pia, np.nan).astype(np.float32),
                      sigmaZeroMeasured=_sigma_zero(zenith, sample["land"], pia))
    logger.debug("DPR %s: %d footprints, %d with rain detected", overpass.label, fs.lon.size,
                 np.count_nonzero(obs_fields["typePrecip"] > 0))
    return DPRObservation(overpass, seed, config, zr, sample["valid"], sample["rain"], sample["rain_type"],
                          retrieved, sample["z_convective"], sample["land"], sample["elevation"],
                          sample["freezing_level"], zenith, height, air.astype(np.float32), z_true, z_final,
                          z_measured, rate, obs_fields)


def _measured(attenuated: np.ndarray, real_surface: np.ndarray, clutter: np.ndarray) -> np.ndarray:
    """zFactorMeasured: attenuated echo plus clutter rising to the surface echo, -28888 below the noise floor."""
    index = np.arange(1, NBIN + 1, dtype=np.int16)[None, None, :]
    depth = (index - (real_surface - clutter)[..., None]).astype(np.float32)
    frac = np.clip(depth / np.maximum(clutter, 1)[..., None], 0.0, None)
    ground = np.where(depth > 0, np.where(frac <= 1, 20.0 + 30.0 * frac**2, 50.0 - 6.0 * (index - real_surface[
        ..., None])), -np.inf)
    with np.errstate(divide="ignore"):
        total = 10.0 * np.log10(10.0 ** (attenuated / 10.0) + 10.0 ** (ground / 10.0))
    return np.where(total >= MEASURED_FLOOR_DBZ, total, NO_ECHO_MEASURED).astype(np.float32)


def _retrieval_zr(retrieved: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The retrieval's nominal ``(a, b)`` for each footprint's retrieved type (stratiform where none)."""
    a = np.where(retrieved == 2, NOMINAL_ZR[2][0], NOMINAL_ZR[1][0]).astype(np.float32)
    b = np.where(retrieved == 2, NOMINAL_ZR[2][1], NOMINAL_ZR[1][1]).astype(np.float32)
    return a, b


def _rates(z_final: np.ndarray, retrieved: np.ndarray, index: np.ndarray, real_surface: np.ndarray) -> np.ndarray:
    """Rain rate per bin by the nominal Z-R of the retrieved type: 0 without echo, NaN below the surface."""
    a, b = _retrieval_zr(retrieved)
    rate = (10.0 ** (np.nan_to_num(z_final, nan=-np.inf) / 10.0) / a[..., None]) ** (1.0 / b[..., None])
    return np.where(index <= real_surface[..., None], rate, np.nan).astype(np.float32)


def _sigma_zero(zenith: np.ndarray, land: np.ndarray, pia: np.ndarray) -> np.ndarray:
    """Measured normalised surface cross-section (dB): ocean 11 dB at nadir falling 0.85 dB/degree, land flatter."""
    clear = np.where(land, 8.0 - 0.2 * zenith, 11.0 - 0.85 * zenith)
    return (clear - np.nan_to_num(pia)).astype(np.float32)


def _products(sample: dict[str, np.ndarray], retrieved: np.ndarray, z_final: np.ndarray, near: np.ndarray,
              height: np.ndarray, config: DPRConfig) -> dict[str, np.ndarray]:
    """The 2-D products: rain type, near-surface rate, bright band, storm top, freezing level."""
    regime = sample["rain_type"].astype(np.int64)
    echo = np.isfinite(z_final).any(axis=-1) & sample["valid"] & (regime > 0)
    no_rain = sample["valid"] & ~echo
    type_precip = np.where(echo, np.where(retrieved == 2, _TYPE_CODES[2], _TYPE_CODES[1]),
                           np.where(no_rain, -1111, -9999)).astype(np.int32)
    a, b = _retrieval_zr(retrieved)
    near_rate = np.where(echo & np.isfinite(near), (10.0 ** (np.nan_to_num(near) / 10.0) / a) ** (1.0 / b), 0.0)
    near_rate = np.where(sample["valid"], near_rate, np.nan).astype(np.float32)
    top_index = np.argmax(np.isfinite(z_final), axis=-1)
    storm_top = np.where(echo, top_index + 1, -9999).astype(np.int16)
    storm_height = np.where(echo, np.take_along_axis(height, top_index[..., None], -1)[..., 0], np.nan)
    fl = sample["freezing_level"]
    bb_height = fl - BB_OFFSET
    bb_peak_z = np.max(np.where(np.abs(height - bb_height[..., None]) < 2 * BB_SIGMA, np.nan_to_num(
        z_final, nan=-np.inf), -np.inf), axis=-1)
    has_bb = (echo & (regime == 1) & (retrieved == 1) & (bb_peak_z >= config.min_dbz)
              & (bb_height > sample["elevation"] + 500.0))
    step = height[..., -2] - height[..., -1]
    bb_bin = np.where(has_bb, NBIN - np.rint(bb_height / np.maximum(step, 1.0)), 0).astype(np.int16)
    half_width = np.rint(1.18 * BB_SIGMA / np.maximum(step, 1.0)).astype(np.int16)
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
        "binBBPeak": _bb_bins(bb_bin, has_bb, echo, no_rain),
        "binBBTop": _bb_bins(bb_bin - half_width, has_bb, echo, no_rain),
        "binBBBottom": _bb_bins(bb_bin + half_width, has_bb, echo, no_rain),
        "binStormTop": storm_top,
        "heightStormTop": storm_height.astype(np.float32),
        "heightZeroDeg": fl.astype(np.float32),
        "binZeroDeg": np.where(sample["valid"], np.clip(NBIN - np.rint(np.nan_to_num(fl) / np.maximum(step, 1.0)), 1,
                                                        NBIN + 1), -9999).astype(np.int16),
    }


def _bb_bins(values: np.ndarray, has_bb: np.ndarray, echo: np.ndarray, no_rain: np.ndarray) -> np.ndarray:
    """A bright-band bin number where a band was found, 0 for rain without one, -1111 for no rain."""
    return np.where(has_bb, values, np.where(echo, 0, np.where(no_rain, -1111, -9999))).astype(np.int16)
