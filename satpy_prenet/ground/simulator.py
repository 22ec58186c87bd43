# SPDX-License-Identifier: GPL-3.0-or-later
"""Seeded simulator of a ground site: rain events aloft, the rain that reaches the gauge, what the instruments see.

The site has a vertically pointing dual-mode rain radar (FMCW: Doppler spectra per gate, MRR-like; CW: reflectivity
only), a tipping-bucket gauge, and a geostationary satellite pixel above it. Rain is generated as a drop flux at a
source level above the radar gates and falls to the ground; on the way:

- every drop falls at its own speed minus the vertical air motion, so large drops arrive first (size sorting) and
  each gate sees the rain the ground gets later;
- drops evaporate in sub-saturated air (d(D^2)/dt = -kappa, kappa set per event), which removes the small drops;
- drops too slow to fall against an updraft stay aloft.

The radar maps Doppler velocity to diameter assuming still air, so air motion shifts the retrieved spectrum; its
velocity range truncates the smallest and largest drops; spectral noise above a range-dependent noise floor,
turbulent broadening, and a residual of the corrected attenuation degrade it further. The CW reflectivity carries
1 dB noise and a calibration bias of 1-2 dB per event. The satellite pixel rate has a known power-law error
``R_sat = alpha R^beta`` times log-normal noise. Everything is Rayleigh scattering; Mie effects at 24 GHz are not
modelled. Units: mm, m/s, m^-3 mm^-1, mm^6 m^-3, mm/h.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd
import xarray as xr
from scipy.ndimage import gaussian_filter1d
from scipy.special import ndtr

from satpy_prenet.ground.dsd import (
    RAIN_RATE_FACTOR,
    REGIMES,
    DiameterClasses,
    NormalizedGamma,
    atlas_1973,
    rain_rate,
    reflectivity,
)
from satpy_prenet.ground.gauges import tips_from_depth

#: Regime codes of the ``regime`` variable (0 is dry).
REGIME_CODES = {"stratiform": 1, "convective_maritime": 2, "convective_continental": 3}

#: Drops slower than this against the air (m/s) are held aloft.
_MIN_FALL_SPEED = 0.2

#: Atlas et al. (1973) constants, for the inverse map from Doppler velocity to diameter.
_V_MAX, _V_SCALE, _V_RATE = 9.65, 10.3, 0.6


@dataclass(frozen=True)
class SiteConfig:
    """Settings of a simulated site (defaults: a Beijing-plain summer site with an MRR-like radar).

    Attributes:
        days: Length of the record.
        start: First minute (ISO 8601, UTC).
        lon: Site longitude (degrees east).
        lat: Site latitude (degrees north).
        substeps: Source time steps per minute (the fall-time lags are resolved at this step).
        source_height_m: Height where the rain is generated, above every gate.
        gate_spacing_m: Radar gate spacing; gate n is at n x spacing.
        n_gates: Gates simulated.
        near_field_gates: Lowest gates the radar cannot use (NaN in the spectra).
        doppler_bins: Doppler velocity bins of the FMCW spectrum, from 0 m/s.
        velocity_resolution_m_s: Width of a Doppler bin.
        retrieval_speeds_m_s: Velocity range used to retrieve the drop-size spectrum.
        mean_dry_hours: Mean dry spell between events (exponential).
        median_event_hours: Median event length (log-normal, sigma 0.6, 0.5 to 12 h).
        regime_persistence_min: Mean time a stratiform and a convective spell last inside an event.
        parameter_timescale_min: Correlation time of the drop-size parameters inside a regime.
        edge_minutes: Ramp of the drop concentration at the start and end of an event.
        evaporation_mm2_s: Range of kappa per event (0: saturated air).
        air_velocity_std_m_s: Standard deviation of the vertical air motion in stratiform and convective rain.
        air_velocity_timescale_min: Correlation time of the vertical air motion.
        turbulence_m_s: Range of the turbulent spectral broadening per event (standard deviation).
        noise_dbz_300m: Noise of the whole spectrum at 300 m expressed as reflectivity (grows with range squared).
        averaged_spectra: Spectra averaged per minute (relative noise of a spectral line is 1/sqrt of this).
        attenuation_coefficient: k = c R^1.1 dB/km at 24 GHz; the two-way path attenuation follows.
        attenuation_residual: Fraction of the path attenuation left after the radar's correction.
        cw_height_m: Height of the CW reflectivity.
        cw_noise_db: Noise of the CW reflectivity.
        calibration_bias_db: Range of the magnitude of the CW calibration bias per event (random sign).
        cw_detection_dbz: CW reflectivity below this is no echo (NaN).
        missing_fraction: Fraction of radar minutes missing.
        bucket_mm: Tipping-bucket size.
        satellite_alpha: alpha of the satellite error R_sat = alpha R^beta.
        satellite_beta: beta of the satellite error.
        satellite_sigma: Standard deviation of the log-normal satellite noise.
        satellite_slot_min: Minutes between satellite images.
        satellite_footprint_min: Centred averaging of the ground rain standing for the pixel's area.
        satellite_min_rate: Satellite rates below this are zero.
    """

    days: float = 8.0
    start: str = "2026-06-01T00:00"
    lon: float = 116.47
    lat: float = 39.81
    substeps: int = 6
    source_height_m: float = 1000.0
    gate_spacing_m: float = 100.0
    n_gates: int = 8
    near_field_gates: int = 2
    doppler_bins: int = 64
    velocity_resolution_m_s: float = 0.1905
    retrieval_speeds_m_s: tuple[float, float] = (0.78, 9.37)
    mean_dry_hours: float = 18.0
    median_event_hours: float = 3.0
    regime_persistence_min: tuple[float, float] = (60.0, 20.0)
    parameter_timescale_min: float = 15.0
    edge_minutes: float = 20.0
    evaporation_mm2_s: tuple[float, float] = (0.0, 6e-4)
    air_velocity_std_m_s: tuple[float, float] = (0.15, 0.5)
    air_velocity_timescale_min: float = 5.0
    turbulence_m_s: tuple[float, float] = (0.1, 0.4)
    noise_dbz_300m: float = -5.0
    averaged_spectra: int = 60
    attenuation_coefficient: float = 0.1
    attenuation_residual: float = 0.3
    cw_height_m: float = 300.0
    cw_noise_db: float = 1.0
    calibration_bias_db: tuple[float, float] = (1.0, 2.0)
    cw_detection_dbz: float = 0.0
    missing_fraction: float = 0.002
    bucket_mm: float = 0.2
    satellite_alpha: float = 1.5
    satellite_beta: float = 0.8
    satellite_sigma: float = 0.3
    satellite_slot_min: int = 15
    satellite_footprint_min: int = 30
    satellite_min_rate: float = 0.1
    fine_classes: DiameterClasses = field(default_factory=lambda: DiameterClasses.regular(7.0, 138, 0.1))

    def __post_init__(self):
        checks = {"days": self.days > 0, "substeps": self.substeps >= 1,
                  "n_gates": self.n_gates > self.near_field_gates >= 0,
                  "source_height_m": self.source_height_m > self.n_gates * self.gate_spacing_m,
                  "bucket_mm": self.bucket_mm > 0, "satellite_slot_min": self.satellite_slot_min >= 1,
                  "missing_fraction": 0 <= self.missing_fraction < 1,
                  "cw_height_m": self.cw_height_m in self.heights[self.near_field_gates:]}
        wrong = [key for key, ok in checks.items() if not ok]
        if wrong:
            raise ValueError(f"SiteConfig: invalid {', '.join(wrong)}")

    @property
    def heights(self) -> np.ndarray:
        """Gate heights in m."""
        return self.gate_spacing_m * np.arange(1, self.n_gates + 1, dtype=float)

    @property
    def n_minutes(self) -> int:
        """Minutes in the record."""
        return int(round(self.days * 1440))

    def describe(self) -> dict:
        """Settings as plain values (for the dataset attributes)."""
        settings = asdict(self)
        settings.pop("fine_classes")
        return settings


def speed_to_diameter(speed):
    """Diameter (mm) whose still-air Atlas et al. (1973) fall speed is ``speed`` (m/s); NaN outside (0, 9.65)."""
    speed = np.asarray(speed, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where((speed > 0) & (speed < _V_MAX), -np.log((_V_MAX - speed) / _V_SCALE) / _V_RATE, np.nan)


def doppler_diameter_classes(config: SiteConfig) -> tuple[DiameterClasses, np.ndarray]:
    """Diameter classes of the retrieved spectrum: the Doppler bins inside the retrieval velocity range.

    Returns:
        The classes (centres and widths mapped from velocity) and the indices of their Doppler bins.
    """
    dv = config.velocity_resolution_m_s
    centres = (np.arange(config.doppler_bins) + 0.5) * dv
    low, high = config.retrieval_speeds_m_s
    used = np.flatnonzero((centres - dv / 2 >= low) & (centres + dv / 2 <= high))
    lower = speed_to_diameter(centres[used] - dv / 2)
    upper = speed_to_diameter(centres[used] + dv / 2)
    return DiameterClasses(speed_to_diameter(centres[used]), upper - lower), used


def _ar1(rng, n, timescale, size=()):
    """Stationary AR(1) series of unit variance along the first axis, correlation time ``timescale`` steps."""
    phi = np.exp(-1.0 / max(timescale, 1e-9))
    shocks = rng.standard_normal((n, *size)) * np.sqrt(1 - phi**2)
    series = np.empty((n, *size))
    series[0] = rng.standard_normal(size)
    for i in range(1, n):
        series[i] = phi * series[i - 1] + shocks[i]
    return series


def _events(rng, config):
    """Event id per minute (0 dry) from alternating exponential dry spells and log-normal events."""
    event = np.zeros(config.n_minutes, dtype=np.int32)
    minute, number = 0, 0
    while True:
        minute += int(rng.exponential(config.mean_dry_hours * 60))
        length = int(np.clip(rng.lognormal(np.log(config.median_event_hours * 60), 0.6), 30, 720))
        if minute >= config.n_minutes:
            return event
        number += 1
        event[minute:minute + length] = number
        minute += length


def _rain_aloft(rng, config, event):
    """Regime and normalized-gamma parameters per minute (NaN when dry), with event-level settings."""
    n = config.n_minutes
    regime = np.zeros(n, dtype=np.int8)
    latent = _ar1(rng, n, config.parameter_timescale_min, (3,))
    params = np.full((n, 3), np.nan)
    settings = {}
    for number in range(1, event.max() + 1):
        where = np.flatnonzero(event == number)
        convective = "convective_maritime" if rng.random() < 0.5 else "convective_continental"
        kinds = ["stratiform", convective]
        state = int(rng.random() < 0.25)
        codes = np.empty(where.size, dtype=np.int8)
        for i in range(where.size):
            if rng.random() < 1.0 / config.regime_persistence_min[state]:
                state = 1 - state
            codes[i] = REGIME_CODES[kinds[state]]
        regime[where] = codes
        for name, code in REGIME_CODES.items():
            rows = where[codes == code]
            ranges = REGIMES[name]
            for column, (low, high) in enumerate((ranges.log10_nw, ranges.dm_mm, ranges.mu)):
                params[rows, column] = low + (high - low) * ndtr(latent[rows, column])
        smooth = min(5, where.size)
        for column in range(3):
            params[where, column] = np.convolve(np.pad(params[where, column], (smooth // 2, smooth - 1 - smooth // 2),
                                                       mode="edge"), np.ones(smooth) / smooth, mode="valid")
        position = np.arange(where.size)
        ramp = np.minimum(1.0, np.minimum(position + 1, where.size - position) / config.edge_minutes)
        params[where, 0] += 1.5 * np.log10(np.maximum(ramp, 0.05))
        settings[number] = {
            "evaporation": rng.uniform(*config.evaporation_mm2_s),
            "turbulence": rng.uniform(*config.turbulence_m_s),
            "bias_db": rng.uniform(*config.calibration_bias_db) * rng.choice([-1.0, 1.0]),
            "mean_air_velocity": rng.normal(0.0, 0.1),
        }
    return regime, params, settings


def _air_velocity(rng, config, event, regime, settings):
    """Vertical air motion per minute (m/s, positive upward): event mean plus regime-dependent AR(1)."""
    wiggle = _ar1(rng, config.n_minutes, config.air_velocity_timescale_min)
    std = np.where(regime == REGIME_CODES["stratiform"], config.air_velocity_std_m_s[0],
                   config.air_velocity_std_m_s[1])
    mean = np.array([0.0] + [settings[k]["mean_air_velocity"] for k in sorted(settings)])[event]
    return np.where(event > 0, mean + std * wiggle, 0.0)


def _source_flux(config, params):
    """Drop flux per fine class at the source level (m^-2 s^-1 per class) on the sub-minute steps."""
    classes = config.fine_classes
    steps = config.n_minutes * config.substeps
    minute_of_step = (np.arange(steps) + 0.5) / config.substeps - 0.5
    wet = np.isfinite(params[:, 0])
    values = np.where(wet[:, None], params, np.array([0.0, 1.0, 0.0]))
    interpolated = np.stack([np.interp(minute_of_step, np.arange(config.n_minutes), values[:, k])
                             for k in range(3)], axis=1)
    step_wet = wet[np.clip(np.round(minute_of_step).astype(int), 0, config.n_minutes - 1)]
    gamma = NormalizedGamma(interpolated[:, 0], interpolated[:, 1], interpolated[:, 2])
    flux = gamma.number_concentration(classes.centres) * (atlas_1973(classes.centres) * classes.widths)
    flux[~step_wet] = 0.0
    return flux.astype(np.float32)


def _fall(config, flux, drop, air, kappa):
    """Flux and diameters of the drops arriving ``drop`` metres below the source level, per minute and class.

    Returns:
        (flux, diameter): mean arriving flux per minute and source class, and the diameter on arrival (NaN for
        drops evaporated or held aloft).
    """
    classes = config.fine_classes
    d0 = classes.centres[None, :]
    w = air[:, None]
    k = kappa[:, None]
    fall_time = drop / np.maximum(atlas_1973(d0) - w, _MIN_FALL_SPEED)
    for _ in range(2):
        d_end = np.sqrt(np.maximum(d0**2 - k * fall_time, 0.0))
        fall_time = drop / np.maximum(atlas_1973((d0 + d_end) / 2) - w, _MIN_FALL_SPEED)
    d_end = np.sqrt(np.maximum(d0**2 - k * fall_time, 0.0))
    lost = (d_end < 0.05) | (atlas_1973((d0 + d_end) / 2) - w <= _MIN_FALL_SPEED)
    steps = flux.shape[0]
    substeps = config.substeps
    lag_steps = np.repeat(fall_time, substeps, axis=0) * substeps / 60.0
    position = np.arange(steps)[:, None] - lag_steps
    below = np.clip(np.floor(position).astype(np.int64), 0, steps - 1)
    above = np.clip(below + 1, 0, steps - 1)
    weight = np.clip(position - np.floor(position), 0, 1).astype(np.float32)
    column = np.arange(flux.shape[1])[None, :]
    arriving = flux[below, column] * (1 - weight) + flux[above, column] * weight
    arriving[position < 0] = 0.0
    arriving = arriving.reshape(-1, substeps, flux.shape[1]).mean(axis=1)
    arriving[lost] = 0.0
    return arriving, np.where(lost, np.nan, d_end)


def _rain_rate(flux, diameter):
    return RAIN_RATE_FACTOR * np.nansum(flux * np.nan_to_num(diameter) ** 3, axis=1)


def _doppler_spectrum(config, flux, diameter, air):
    """Spectral reflectivity per Doppler bin (mm^6 m^-3 per bin) of the drops at a gate, before noise."""
    speed = atlas_1973(np.nan_to_num(diameter)) - air[:, None]
    concentration = np.where(np.isfinite(diameter), flux / np.maximum(speed, _MIN_FALL_SPEED), 0.0)
    reflectivity = concentration * np.nan_to_num(diameter) ** 6
    bins = np.floor(speed / config.velocity_resolution_m_s).astype(np.int64)
    inside = (bins >= 0) & (bins < config.doppler_bins) & (reflectivity > 0)
    rows = np.broadcast_to(np.arange(flux.shape[0])[:, None], bins.shape)
    spectrum = np.zeros(flux.shape[0] * config.doppler_bins)
    np.add.at(spectrum, rows[inside] * config.doppler_bins + bins[inside], reflectivity[inside])
    return spectrum.reshape(flux.shape[0], config.doppler_bins)


def _broaden(spectrum, sigma_bins, event):
    """Turbulent broadening: a Gaussian of each event's width along the Doppler axis."""
    out = spectrum.copy()
    for number, sigma in sigma_bins.items():
        if sigma <= 0:
            continue
        rows = event == number
        out[rows] = gaussian_filter1d(spectrum[rows], sigma, axis=1, mode="constant")
    return out


def _retrieve(config, rng, spectrum, height, attenuation_db):
    """Measured spectrum (attenuation residual, noise, noise-floor thresholding) -> drop-size spectrum."""
    classes, used = doppler_diameter_classes(config)
    noise = 10 ** (config.noise_dbz_300m / 10) / config.doppler_bins * (height / 300.0) ** 2
    relative = 1.0 / np.sqrt(config.averaged_spectra)
    received = spectrum * 10 ** (-attenuation_db[:, None] / 10) + noise
    measured = received * (1 + relative * rng.standard_normal(received.shape)) - noise
    measured = np.where(measured > 3 * relative * noise, measured, 0.0)
    return measured[:, used] / (classes.centres**6 * classes.widths)


def _satellite(rng, config, ground_rate, times):
    """Satellite pixel rate at each slot: alpha (areal rain)^beta times log-normal noise, zero below the minimum."""
    footprint = config.satellite_footprint_min
    areal = pd.Series(ground_rate).rolling(footprint, center=True, min_periods=1).mean().to_numpy()
    slots = np.arange(config.satellite_slot_min - 1, config.n_minutes, config.satellite_slot_min)
    rate = config.satellite_alpha * areal[slots] ** config.satellite_beta
    rate = rate * np.exp(config.satellite_sigma * rng.standard_normal(slots.size))
    return times[slots], np.where(rate >= config.satellite_min_rate, rate, 0.0), areal[slots]


def simulate_site(config: SiteConfig | None = None, seed: int = 0) -> xr.Dataset:
    """Simulate a site: rain at the ground, FMCW drop-size spectra aloft, CW reflectivity, gauge tips, satellite.

    Args:
        config: Site settings (defaults of :class:`SiteConfig` when None).
        seed: Seed of every random draw; equal seeds give equal datasets.

    Returns:
        Dataset on ``time`` (end of each minute), ``height`` (gates), ``diameter`` (retrieved classes) and ``slot``
        (satellite images): ``rain_rate`` (ground truth, 1-minute mean), ``rain_rate_aloft`` (truth at each gate),
        ``drop_spectrum`` (retrieved FMCW spectrum), ``reflectivity_cw`` (dBZ), ``gauge_tips``, ``satellite_rate``
        and the hidden state (``event``, ``regime``, ``log10_nw``, ``dm``, ``mu``, ``vertical_air_velocity``,
        ``evaporation``, ``calibration_bias_db``).
    """
    config = config or SiteConfig()
    rng = np.random.default_rng(seed)
    n = config.n_minutes
    times = pd.Timestamp(config.start).to_datetime64() + np.arange(1, n + 1) * np.timedelta64(1, "m")
    event = _events(rng, config)
    regime, params, settings = _rain_aloft(rng, config, event)
    air = _air_velocity(rng, config, event, regime, settings)

    def per_event(key):
        return np.array([0.0] + [settings[k][key] for k in sorted(settings)])[event]

    kappa = per_event("evaporation")
    bias_db = per_event("bias_db")
    flux = _source_flux(config, params)
    classes, _ = doppler_diameter_classes(config)
    heights = config.heights
    levels = np.concatenate([[0.0], heights])
    rates = np.zeros((n, levels.size))
    spectra = np.full((n, heights.size, classes.size), np.nan, dtype=np.float32)
    cw_linear = None
    sigma_bins = {k: s["turbulence"] / config.velocity_resolution_m_s for k, s in settings.items()}
    at_gate = {}
    for index, level in enumerate(levels):
        arriving, diameter = _fall(config, flux, config.source_height_m - level, air, kappa)
        rates[:, index] = _rain_rate(arriving, diameter)
        if index > config.near_field_gates:
            at_gate[index] = (arriving, diameter)
    specific = config.attenuation_coefficient * rates**1.1 / 1000.0
    path = 2 * np.concatenate([np.zeros((n, 1)), np.cumsum((specific[:, 1:] + specific[:, :-1]) / 2 * np.diff(levels),
                                                             axis=1)], axis=1)
    missing = rng.random(n) < config.missing_fraction
    for index, (arriving, diameter) in at_gate.items():
        spectrum = _broaden(_doppler_spectrum(config, arriving, diameter, air), sigma_bins, event)
        spectra[:, index - 1] = _retrieve(config, rng, spectrum, levels[index],
                                          config.attenuation_residual * path[:, index])
        if levels[index] == config.cw_height_m:
            cw_linear = spectrum.sum(axis=1) * 10 ** (-config.attenuation_residual * path[:, index] / 10)
    spectra[missing] = np.nan
    noise_db = config.cw_noise_db * rng.standard_normal(n)
    with np.errstate(divide="ignore"):
        cw_dbz = 10 * np.log10(cw_linear) + bias_db + noise_db
    cw_dbz = np.where((cw_dbz >= config.cw_detection_dbz) & ~missing, cw_dbz, np.nan)
    ground = rates[:, 0]
    tips = tips_from_depth(np.cumsum(ground / 60.0), config.bucket_mm)
    slot_times, satellite, areal = _satellite(rng, config, ground, times)
    return _dataset(config, seed, times, heights, classes, ground, rates[:, 1:], spectra, cw_dbz, missing, tips,
                    slot_times, satellite, areal, event, regime, params, air, kappa, bias_db)


def _dataset(config, seed, times, heights, classes, ground, aloft, spectra, cw_dbz, missing, tips, slot_times,
             satellite, areal, event, regime, params, air, kappa, bias_db):
    fall_speed = atlas_1973(classes.centres)
    data = {
        "rain_rate": ("time", ground.astype(np.float32),
                      {"units": "mm h-1", "long_name": "rain rate at the ground, 1-minute mean (truth)"}),
        "rain_rate_aloft": (("time", "height"), aloft.astype(np.float32),
                            {"units": "mm h-1", "long_name": "rain rate at each radar gate (truth)"}),
        "drop_spectrum": (("time", "height", "diameter"), spectra,
                          {"units": "m-3 mm-1", "long_name": "drop-size spectrum retrieved from the FMCW Doppler "
                           "spectrum assuming still air; NaN at near-field gates and missing minutes"}),
        "reflectivity_cw": ("time", cw_dbz.astype(np.float32),
                            {"units": "dBZ", "height_m": config.cw_height_m,
                             "long_name": "CW-mode reflectivity; NaN where below the detection threshold or missing"}),
        "radar_missing": ("time", missing.astype(np.uint8), {"long_name": "radar minute missing (1)"}),
        "gauge_tips": ("time", tips.astype(np.int32), {"units": "1", "bucket_mm": config.bucket_mm,
                                                       "long_name": "tipping-bucket tips in the minute"}),
        "satellite_rate": ("slot", satellite.astype(np.float32),
                           {"units": "mm h-1", "long_name": "satellite pixel rain rate",
                            "error_model": "alpha * areal_rain_rate ** beta * lognormal(sigma)",
                            "alpha": config.satellite_alpha, "beta": config.satellite_beta,
                            "sigma": config.satellite_sigma}),
        "areal_rain_rate": ("slot", areal.astype(np.float32),
                            {"units": "mm h-1", "long_name": "ground rain averaged over the pixel's footprint "
                             "time (truth seen by the satellite)"}),
        "event": ("time", event, {"long_name": "rain event number (0: dry)"}),
        "regime": ("time", regime, {"flag_values": np.array(list(REGIME_CODES.values()), dtype=np.int8),
                                    "flag_meanings": " ".join(REGIME_CODES)}),
        "log10_nw": ("time", params[:, 0].astype(np.float32), {"long_name": "log10 Nw at the source level"}),
        "dm": ("time", params[:, 1].astype(np.float32), {"units": "mm", "long_name": "Dm at the source level"}),
        "mu": ("time", params[:, 2].astype(np.float32), {"long_name": "mu at the source level"}),
        "vertical_air_velocity": ("time", air.astype(np.float32), {"units": "m s-1", "positive": "up"}),
        "evaporation": ("time", kappa.astype(np.float32), {"units": "mm2 s-1", "long_name": "-d(D^2)/dt"}),
        "calibration_bias_db": ("time", bias_db.astype(np.float32), {"units": "dB"}),
    }
    coords = {"time": times, "height": ("height", heights, {"units": "m"}),
              "diameter": ("diameter", classes.centres, {"units": "mm"}),
              "diameter_width": ("diameter", classes.widths, {"units": "mm"}),
              "fall_speed": ("diameter", fall_speed, {"units": "m s-1",
                                                      "long_name": "still-air fall speed (Atlas et al. 1973)"}),
              "slot": slot_times}
    attrs = {"title": "simulated ground site: rain radar (FMCW + CW), tipping-bucket gauge, satellite pixel",
             "simulated": 1, "seed": seed, "lon": config.lon, "lat": config.lat,
             "source_height_m": config.source_height_m, "bucket_mm": config.bucket_mm,
             "settings": repr(config.describe())}
    return xr.Dataset(data, coords=coords, attrs=attrs)


def gate_moments(record: xr.Dataset, height: float) -> tuple[np.ndarray, np.ndarray]:
    """Reflectivity (mm^6 m^-3) and rain rate (mm/h) of the retrieved drop-size spectrum at one gate, per minute.

    The rain rate is the drop-spectrum integral with the still-air fall speeds the radar assumed; both are NaN where
    the spectrum is missing.
    """
    spectrum = record["drop_spectrum"].sel(height=height).transpose("time", "diameter").values
    classes = DiameterClasses(record["diameter"].values, record["diameter_width"].values)
    return reflectivity(spectrum, classes), rain_rate(spectrum, classes, record["fall_speed"].values)


def gauge_table(site: xr.Dataset, station: str = "SITE") -> pd.DataFrame:
    """The site's gauge as rows of the CSV layout :func:`satpy_prenet.ground.gauges.read_gauges` reads."""
    return pd.DataFrame({"station": station, "lon": site.attrs["lon"], "lat": site.attrs["lat"],
                         "time": pd.DatetimeIndex(site["time"].values).strftime("%Y-%m-%dT%H:%M:%SZ"),
                         "tips": site["gauge_tips"].values, "bucket_mm": site["gauge_tips"].attrs["bucket_mm"]})
