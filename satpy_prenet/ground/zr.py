# SPDX-License-Identifier: GPL-3.0-or-later
"""Power-law relations Z = a R^b between radar reflectivity and rain rate, fixed or fitted to data.

Conventions shared by every function here: linear reflectivity Z is in mm^6 m^-3, reflectivity factor in dBZ,
rain rate R in mm/h. NaN stays NaN. Zero means "no echo": Z = 0 (-inf dBZ) converts to R = 0 and back. Negative
linear reflectivities and negative rain rates are not physical and convert to NaN.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ZR:
    """A relation Z = a R^b.

    Attributes:
        a: Prefactor in mm^6 m^-3 (mm/h)^-b, positive.
        b: Exponent, positive.
        name: Label used in logs and reports.
    """

    a: float
    b: float
    name: str = "custom"

    def __post_init__(self):
        for key in ("a", "b"):
            value = getattr(self, key)
            if not np.isfinite(value) or value <= 0:
                raise ValueError(f"Z-R {self.name!r}: {key} must be finite and > 0, got {value!r}")

    def rain_rate(self, z):
        """Convert linear reflectivity to rain rate.

        Args:
            z: Linear reflectivity (mm^6 m^-3), scalar or array.

        Returns:
            Rain rate in mm/h: (Z / a)^(1/b); 0 where Z == 0, NaN where Z is NaN or negative.
        """
        z = np.asarray(z, dtype=float)
        with np.errstate(invalid="ignore"):
            return np.where(z >= 0, np.abs(z / self.a) ** (1.0 / self.b), np.nan)

    def rain_rate_from_dbz(self, dbz):
        """Convert reflectivity factor in dBZ to rain rate in mm/h (-inf dBZ is no echo, R = 0)."""
        return self.rain_rate(dbz_to_linear(dbz))

    def reflectivity(self, rain):
        """Convert rain rate to linear reflectivity.

        Args:
            rain: Rain rate in mm/h, scalar or array.

        Returns:
            Linear reflectivity a R^b; 0 where R == 0, NaN where R is NaN or negative.
        """
        rain = np.asarray(rain, dtype=float)
        with np.errstate(invalid="ignore"):
            return np.where(rain >= 0, self.a * np.abs(rain) ** self.b, np.nan)

    def reflectivity_dbz(self, rain):
        """Convert rain rate in mm/h to reflectivity factor in dBZ (-inf where R == 0)."""
        return linear_to_dbz(self.reflectivity(rain))


MARSHALL_PALMER = ZR(200.0, 1.6, "marshall_palmer")
CONVECTIVE = ZR(300.0, 1.4, "convective")
BEIJING_PLAIN = ZR(386.0, 1.32, "beijing_plain")
TROPICAL = ZR(250.0, 1.2, "tropical")

#: Preset relations by name.
PRESETS = {zr.name: zr for zr in (MARSHALL_PALMER, CONVECTIVE, BEIJING_PLAIN, TROPICAL)}


def dbz_to_linear(dbz):
    """Convert dBZ to linear reflectivity (mm^6 m^-3); -inf dBZ gives 0, NaN stays NaN."""
    return 10.0 ** (np.asarray(dbz, dtype=float) / 10.0)


def linear_to_dbz(z):
    """Convert linear reflectivity to dBZ; 0 gives -inf (no echo), negative values and NaN give NaN."""
    z = np.asarray(z, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(z >= 0, 10.0 * np.log10(np.abs(z)), np.nan)


@dataclass(frozen=True)
class ZRFit:
    """Result of a least-squares Z-R fit in log space.

    Attributes:
        relation: The fitted relation.
        n_pairs: Number of (Z, R) pairs used.
        rmse_log: Root-mean-square residual of ln Z.
        r2: Coefficient of determination of ln Z against ln R.
    """

    relation: ZR
    n_pairs: int
    rmse_log: float
    r2: float


def _usable_pairs(z, r, min_rate):
    z = np.asarray(z, dtype=float).ravel()
    r = np.asarray(r, dtype=float).ravel()
    if z.shape != r.shape:
        raise ValueError(f"z and r differ in size: {z.size} and {r.size}")
    with np.errstate(invalid="ignore"):
        keep = np.isfinite(z) & np.isfinite(r) & (z > 0) & (r > min_rate)
    return np.log(z[keep]), np.log(r[keep])


def fit_zr(z, r, min_rate=0.1, min_pairs=10, name="fitted"):
    """Fit Z = a R^b by least squares on ln Z = ln a + b ln R.

    Args:
        z: Linear reflectivity (mm^6 m^-3).
        r: Rain rate (mm/h) at the same points.
        min_rate: Only pairs with R above this (mm/h) and finite, positive Z are used.
        min_pairs: Fewest usable pairs accepted.
        name: Name of the returned relation.

    Returns:
        The fit and its statistics.

    Raises:
        ValueError: Too few usable pairs, no spread in R, or a non-physical (b <= 0) fit.
    """
    ln_z, ln_r = _usable_pairs(z, r, min_rate)
    if ln_z.size < min_pairs:
        raise ValueError(f"fit_zr: {ln_z.size} usable pairs (R > {min_rate} mm/h, finite Z > 0), need {min_pairs}")
    if np.ptp(ln_r) == 0:
        raise ValueError("fit_zr: all usable rain rates are equal, b is undetermined")
    b, ln_a = np.polyfit(ln_r, ln_z, 1)
    if b <= 0:
        raise ValueError(f"fit_zr: non-physical exponent b = {b:.3g}")
    residual = ln_z - (ln_a + b * ln_r)
    total = np.sum((ln_z - ln_z.mean()) ** 2)
    r2 = 1.0 - np.sum(residual**2) / total if total > 0 else np.nan
    return ZRFit(ZR(float(np.exp(ln_a)), float(b), name), int(ln_z.size), float(np.sqrt(np.mean(residual**2))), r2)


def _seconds(times):
    times = np.asarray(times)
    if np.issubdtype(times.dtype, np.datetime64):
        return (times - times.min()) / np.timedelta64(1, "s")
    return times.astype(float)


def dynamic_zr(times, z, r, window, min_rate=0.1, min_pairs=10):
    """Fit Z = a R^b over a trailing time window ending at every sample.

    The window ending at time t holds the samples with times in (t - window, t].

    Args:
        times: Sample times, non-decreasing: numpy datetime64 or seconds.
        z: Linear reflectivity (mm^6 m^-3) per sample.
        r: Rain rate (mm/h) per sample.
        window: Window length: numpy timedelta64 or seconds.
        min_rate: Only pairs with R above this (mm/h) and finite, positive Z are used.
        min_pairs: Fewest usable pairs for a fit.

    Returns:
        Arrays a and b, one value per sample; NaN where the window holds too few pairs, no spread in R, or the fit
        gives b <= 0.

    Raises:
        ValueError: Times not non-decreasing or sizes differ.
    """
    t = _seconds(times).ravel()
    if isinstance(window, np.timedelta64):
        window = window / np.timedelta64(1, "s")
    z = np.asarray(z, dtype=float).ravel()
    r = np.asarray(r, dtype=float).ravel()
    if not t.size == z.size == r.size:
        raise ValueError(f"times, z and r differ in size: {t.size}, {z.size}, {r.size}")
    if np.any(np.diff(t) < 0):
        raise ValueError("dynamic_zr: times must be non-decreasing")
    with np.errstate(invalid="ignore", divide="ignore"):
        keep = np.isfinite(z) & np.isfinite(r) & (z > 0) & (r > min_rate)
        x = np.where(keep, np.log(np.where(keep, r, 1.0)), 0.0)
        y = np.where(keep, np.log(np.where(keep, z, 1.0)), 0.0)
    sums = [np.concatenate([[0.0], np.cumsum(v)]) for v in (keep.astype(float), x, y, x * x, x * y)]
    start = np.searchsorted(t, t - window, side="right")
    stop = np.searchsorted(t, t, side="right")
    n, sx, sy, sxx, sxy = (s[stop] - s[start] for s in sums)
    with np.errstate(invalid="ignore", divide="ignore"):
        var_x = sxx - sx * sx / n
        b = (sxy - sx * sy / n) / var_x
        ln_a = (sy - b * sx) / n
    bad = (n < min_pairs) | ~(var_x > 1e-9 * sxx) | ~(b > 0)
    with np.errstate(over="ignore", invalid="ignore"):
        return np.where(bad, np.nan, np.exp(np.where(bad, 0.0, ln_a))), np.where(bad, np.nan, b)
