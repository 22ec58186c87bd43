# SPDX-License-Identifier: GPL-3.0-or-later
"""Background atmosphere: temperature profile, tropopause, freezing level, moisture and steering winds.

All heights are kilometres above mean sea level. The profile is piecewise linear: lapse rate
``gamma_low`` up to 5 km, ``gamma_high`` from 5 km to the tropopause, slightly warming above it. The
tropics get a 16.5 km tropopause near 190 K and a freezing level near 4.8 km; mid-latitudes a lower,
warmer tropopause and a lower freezing level. The "environment" field is a slowly evolving large-scale
anomaly (active / suppressed regions) shared by cloud genesis and moisture, so that the water-vapour
channels see where convection is likely, as in the real atmosphere.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from dataclasses import dataclass

import numpy as np

from satpy_prenet.synthetic.fields import EvolvingTexture, powerlaw_field, rng_for
from satpy_prenet.synthetic.surface import bilinear

logger = logging.getLogger(__name__)

#: Reference epoch of the simulated world (time stamps are seconds since then).
EPOCH = dt.datetime(2000, 1, 1)
#: Scale height of water vapour (km).
WATER_VAPOUR_SCALE_HEIGHT = 2.0
#: Height (km) where the lower and upper lapse rates meet.
KINK_HEIGHT = 5.0
#: Temperature change above the tropopause (K/km) of the environment; overshooting tops cool instead.
STRATOSPHERE_LAPSE = -1.5
OVERSHOOT_LAPSE = 7.0
_ENV_SHAPE = (96, 192)


def seconds(time: dt.datetime) -> float:
    """Seconds since :data:`EPOCH` (naive UTC or aware datetimes)."""
    if time.tzinfo is not None:
        time = time.astimezone(dt.timezone.utc).replace(tzinfo=None)
    return (time - EPOCH).total_seconds()


def season(time: dt.datetime) -> float:
    """+1 in mid-July (boreal summer), -1 in mid-January."""
    return float(np.sin(2.0 * np.pi * (time.timetuple().tm_yday - 105) / 365.25))


def itcz_latitude(time: dt.datetime) -> float:
    """Latitude of the inter-tropical convergence zone (degrees), following the sun."""
    return 5.0 + 6.0 * season(time)


@dataclass(frozen=True)
class Profile:
    """Temperature profile parameters per pixel (float32 arrays of one shape)."""

    t0: np.ndarray  # sea-level air temperature (K)
    gamma_low: np.ndarray  # K/km below KINK_HEIGHT
    gamma_high: np.ndarray  # K/km from KINK_HEIGHT to the tropopause
    tropopause: np.ndarray  # km

    @classmethod
    def at(cls, lat: np.ndarray, time: dt.datetime) -> Profile:
        """Climatological profile at latitudes ``lat`` (degrees) and ``time``."""
        lat = np.nan_to_num(np.asarray(lat, dtype=np.float32))
        thermal_equator = np.float32(0.8 * itcz_latitude(time))
        s2 = np.sin(np.deg2rad(lat - thermal_equator)) ** 2
        t0 = np.float32(301.0) - np.float32(36.0) * s2 + np.float32(5.0 * season(time)) * np.sin(np.deg2rad(lat))
        return cls(
            t0=t0.astype(np.float32),
            gamma_low=(np.float32(5.8) + np.float32(1.0) * s2).astype(np.float32),
            gamma_high=(np.float32(7.2) - np.float32(2.0) * s2).astype(np.float32),
            tropopause=(np.float32(16.5) - np.float32(8.0) * s2).astype(np.float32),
        )

    def subset(self, index) -> Profile:
        """The profile at ``array[index]``."""
        return Profile(self.t0[index], self.gamma_low[index], self.gamma_high[index], self.tropopause[index])

    def flat_subset(self, index: np.ndarray) -> Profile:
        """The profile at flat indices ``index`` of the raveled arrays."""
        return Profile(*(np.ravel(a)[index] for a in (self.t0, self.gamma_low, self.gamma_high, self.tropopause)))

    def air_temperature(self, z: np.ndarray) -> np.ndarray:
        """Environment temperature (K) at height ``z`` (km)."""
        # t0 - gamma_low z, with the lapse-rate changes at the kink and at the tropopause added as hinges
        # (written with in-place operations: this runs on full-disc arrays many times per scene).
        z = np.asarray(z, dtype=np.float32)
        out = self.gamma_low * z
        np.subtract(self.t0, out, out=out)
        hinge = z - np.float32(KINK_HEIGHT)
        np.maximum(hinge, np.float32(0.0), out=hinge)
        hinge *= self.gamma_low - self.gamma_high
        out += hinge
        np.subtract(z, self.tropopause, out=hinge)
        np.maximum(hinge, np.float32(0.0), out=hinge)
        hinge *= self.gamma_high + np.float32(-STRATOSPHERE_LAPSE)
        out += hinge
        return out

    def cloud_top_temperature(self, z: np.ndarray) -> np.ndarray:
        """Cloud-top temperature (K) at ``z``: the environment below the tropopause, colder above (overshoot)."""
        inside = self.air_temperature(np.minimum(z, self.tropopause))
        return inside - np.float32(OVERSHOOT_LAPSE) * np.maximum(z - self.tropopause, 0.0)

    def height_of_temperature(self, temperature: np.ndarray | float) -> np.ndarray:
        """Height (km) where the environment has ``temperature`` (within the troposphere)."""
        t_kink = self.t0 - self.gamma_low * KINK_HEIGHT
        below = (self.t0 - temperature) / self.gamma_low
        above = KINK_HEIGHT + (t_kink - temperature) / self.gamma_high
        z = np.where(temperature >= t_kink, below, above)
        return np.clip(z, 0.0, self.tropopause).astype(np.float32)

    @property
    def tropopause_temperature(self) -> np.ndarray:
        """Temperature at the tropopause (K)."""
        return self.air_temperature(self.tropopause)

    def freezing_level(self) -> np.ndarray:
        """Height of the 0 degC isotherm (km above sea level, >= 0)."""
        return np.maximum(self.height_of_temperature(np.float32(273.15)), 0.0)


@functools.lru_cache(maxsize=4)
def environment_texture(seed: int) -> EvolvingTexture:
    """Large-scale anomaly on a global grid (rows south to north), decorrelating over about three days."""
    rng = rng_for(seed, 202)
    fields = []
    for _ in range(3):
        # Non-square global grid: draw a square texture and crop (still smooth, statistics unchanged).
        square = powerlaw_field(rng, (_ENV_SHAPE[1], _ENV_SHAPE[1]), 3.0, min_scale=6.0, max_scale=36.0)
        fields.append(np.ascontiguousarray(square[: _ENV_SHAPE[0]]))
    return EvolvingTexture(tuple(fields), timescale=3.0 * 86400.0)  # type: ignore[arg-type]


def environment(seed: int, time: dt.datetime, lon: np.ndarray, lat: np.ndarray) -> np.ndarray:
    """Large-scale anomaly (about unit variance) at points and time."""
    texture = environment_texture(seed)
    a, b, c = texture.weights(seconds(time))
    grid = a * texture.realisations[0] + b * texture.realisations[1] + c * texture.realisations[2]
    return bilinear(grid.astype(np.float32), lon, lat)


def steering_wind(lat: np.ndarray | float, time: dt.datetime) -> np.ndarray:
    """Zonal steering wind (m/s): easterly trades near the ITCZ, westerly jets in mid-latitudes."""
    lat = np.asarray(lat, dtype=np.float32)
    rel = lat - np.float32(itcz_latitude(time))
    return (np.float32(-6.0) * np.exp(-((rel / 15.0) ** 2))
            + np.float32(17.0) * np.exp(-(((np.abs(lat) - 42.0) / 12.0) ** 2))).astype(np.float32)


def column_water_vapour(lat: np.ndarray, land: np.ndarray, elevation_km: np.ndarray, env: np.ndarray,
                        time: dt.datetime) -> np.ndarray:
    """Total column water vapour (cm): moist tropics, dry poles, drier land and high terrain."""
    lat = np.nan_to_num(np.asarray(lat, dtype=np.float32))
    rel = (lat - np.float32(0.8 * itcz_latitude(time))) / np.float32(22.0)
    summer = np.float32(0.5) + np.float32(0.5 * season(time)) * np.sign(lat)
    base = np.float32(0.5) + np.float32(4.6) * np.exp(-(rel**2)) + np.float32(0.8) * summer * np.exp(
        -(((np.abs(lat) - 35.0) / 15.0) ** 2))
    factor = np.exp(np.float32(0.25) * env - elevation_km / np.float32(2.2)) * (1.0 - np.float32(0.15) * land)
    return (base * factor).astype(np.float32)


def upper_humidity(lat: np.ndarray, env: np.ndarray, texture: np.ndarray, time: dt.datetime) -> np.ndarray:
    """Upper-tropospheric relative humidity (0-1) before the moistening by convective anvils."""
    lat = np.nan_to_num(np.asarray(lat, dtype=np.float32))
    rel = np.abs(lat - np.float32(itcz_latitude(time)))
    base = (np.float32(0.40) + np.float32(0.18) * np.exp(-((rel / 9.0) ** 2))
            - np.float32(0.22) * np.exp(-(((rel - 22.0) / 8.0) ** 2)))
    return (base + np.float32(0.10) * env + np.float32(0.07) * texture).astype(np.float32)
