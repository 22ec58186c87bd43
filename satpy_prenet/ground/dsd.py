# SPDX-License-Identifier: GPL-3.0-or-later
"""Drop-size distributions, fall speeds and the moments that give reflectivity, rain rate and water content.

Units throughout: diameters in mm, number concentrations in m^-3 mm^-1, fall speeds in m/s, reflectivity in
mm^6 m^-3, rain rate in mm/h and liquid water content in g m^-3. A binned spectrum is an array whose last axis
runs over the diameter classes of a :class:`DiameterClasses`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.special import gammaln

#: Widths (mm) of the 32 OTT Parsivel2 diameter classes, in runs of equal width starting at 0 mm.
_PARSIVEL_WIDTH_RUNS = ((10, 0.125), (5, 0.25), (5, 0.5), (5, 1.0), (5, 2.0), (2, 3.0))

#: The first two Parsivel classes (below 0.25 mm) lie under the instrument's detection limit.
PARSIVEL_UNUSED_CLASSES = 2

#: Constant of the mass-flux rain rate: R = RAIN_RATE_FACTOR * sum N v D^3 dD gives mm/h.
RAIN_RATE_FACTOR = 6.0 * np.pi * 1e-4

#: Constant of the liquid water content: W = WATER_CONTENT_FACTOR * sum N D^3 dD gives g m^-3.
WATER_CONTENT_FACTOR = np.pi / 6.0 * 1e-3


@dataclass(frozen=True, eq=False)
class DiameterClasses:
    """Diameter classes of a binned drop-size spectrum.

    Attributes:
        centres: Class centres in mm, strictly increasing.
        widths: Class widths in mm, positive.
    """

    centres: np.ndarray
    widths: np.ndarray

    def __post_init__(self):
        centres = np.array(self.centres, dtype=float)
        widths = np.array(self.widths, dtype=float)
        if centres.ndim != 1 or centres.shape != widths.shape:
            raise ValueError(f"centres and widths must be 1-D of one length, got {centres.shape} and {widths.shape}")
        if centres.size == 0 or not np.all(np.isfinite(centres)) or not np.all(widths > 0):
            raise ValueError("diameter classes need finite centres and positive widths")
        if np.any(np.diff(centres) <= 0) or centres[0] <= 0:
            raise ValueError("class centres must be positive and strictly increasing")
        centres.flags.writeable = False
        widths.flags.writeable = False
        object.__setattr__(self, "centres", centres)
        object.__setattr__(self, "widths", widths)

    @property
    def size(self) -> int:
        """Number of classes."""
        return self.centres.size

    @property
    def lower(self) -> np.ndarray:
        """Lower class limits in mm."""
        return self.centres - self.widths / 2

    @property
    def upper(self) -> np.ndarray:
        """Upper class limits in mm."""
        return self.centres + self.widths / 2

    @classmethod
    def from_limits(cls, limits: ArrayLike) -> DiameterClasses:
        """Classes between consecutive limits.

        Args:
            limits: Increasing class limits in mm, one more than the classes.

        Returns:
            The classes, centred between their limits.
        """
        limits = np.asarray(limits, dtype=float)
        if limits.ndim != 1 or limits.size < 2:
            raise ValueError("limits must be 1-D with at least two values")
        return cls(centres=(limits[1:] + limits[:-1]) / 2, widths=np.diff(limits))

    @classmethod
    def regular(cls, d_max: float = 8.0, n: int = 800, d_min: float = 0.0) -> DiameterClasses:
        """A regular grid of ``n`` classes covering ``[d_min, d_max]`` mm.

        Args:
            d_max: Upper limit of the last class in mm.
            n: Number of classes.
            d_min: Lower limit of the first class in mm.

        Returns:
            The classes.
        """
        if n < 1 or not 0 <= d_min < d_max:
            raise ValueError(f"need n >= 1 and 0 <= d_min < d_max, got n={n}, d_min={d_min}, d_max={d_max}")
        return cls.from_limits(np.linspace(d_min, d_max, n + 1))

    @classmethod
    def parsivel(cls, skip_unused: bool = False) -> DiameterClasses:
        """The 32 diameter classes of the OTT Parsivel2 disdrometer (0 to 26 mm).

        The centres are the exact midpoints of the published class limits; the manual lists them rounded
        (0.062, 0.187, ... mm).

        Args:
            skip_unused: Leave out the first two classes (below 0.25 mm), which the instrument does not measure.

        Returns:
            The classes.
        """
        widths = np.concatenate([np.full(count, width) for count, width in _PARSIVEL_WIDTH_RUNS])
        classes = cls.from_limits(np.concatenate([[0.0], np.cumsum(widths)]))
        if skip_unused:
            return cls(classes.centres[PARSIVEL_UNUSED_CLASSES:], classes.widths[PARSIVEL_UNUSED_CLASSES:])
        return classes


#: Coefficient and exponent of the Atlas & Ulbrich (1977) fall-speed power law v = c D^d.
ATLAS_ULBRICH_C = 3.778
ATLAS_ULBRICH_D = 0.67


def atlas_1973(diameters: ArrayLike) -> np.ndarray:
    """Terminal fall speed of raindrops after Atlas et al. (1973), clipped at zero.

    Args:
        diameters: Equivolume diameters in mm.

    Returns:
        Fall speeds in m/s, ``9.65 - 10.3 exp(-0.6 D)``.
    """
    return np.maximum(9.65 - 10.3 * np.exp(-0.6 * np.asarray(diameters, dtype=float)), 0.0)


def atlas_ulbrich_1977(diameters: ArrayLike) -> np.ndarray:
    """Terminal fall speed of raindrops after Atlas & Ulbrich (1977), a power law.

    Args:
        diameters: Equivolume diameters in mm.

    Returns:
        Fall speeds in m/s, ``3.778 D^0.67``.
    """
    return ATLAS_ULBRICH_C * np.asarray(diameters, dtype=float) ** ATLAS_ULBRICH_D


@dataclass(frozen=True, eq=False)
class NormalizedGamma:
    """Normalized gamma drop-size distribution (Testud et al. 2001).

    ``N(D) = Nw f(mu) (D/Dm)^mu exp(-(4+mu) D/Dm)`` with ``f(mu) = 6/4^4 (4+mu)^(mu+4) / Gamma(mu+4)``.
    The parameters may be arrays of one broadcastable shape, one distribution per element.

    Attributes:
        log10_nw: Base-10 logarithm of the normalized intercept Nw in m^-3 mm^-1.
        dm_mm: Mass-weighted mean diameter in mm, positive.
        mu: Shape parameter, above -1 so that every moment from the zeroth on exists.
    """

    log10_nw: ArrayLike
    dm_mm: ArrayLike
    mu: ArrayLike

    def __post_init__(self):
        params = (self.log10_nw, self.dm_mm, self.mu)
        log10_nw, dm_mm, mu = np.broadcast_arrays(*(np.asarray(v, dtype=float) for v in params))
        if not (np.all(np.isfinite(log10_nw)) and np.all(np.isfinite(dm_mm)) and np.all(np.isfinite(mu))):
            raise ValueError("normalized gamma parameters must be finite")
        if np.any(dm_mm <= 0) or np.any(mu <= -1):
            raise ValueError("normalized gamma needs dm_mm > 0 and mu > -1")
        for name, value in (("log10_nw", log10_nw), ("dm_mm", dm_mm), ("mu", mu)):
            object.__setattr__(self, name, value)

    @property
    def shape(self) -> tuple[int, ...]:
        """Shape of the parameter arrays."""
        return np.shape(self.dm_mm)

    @property
    def nw(self) -> np.ndarray:
        """Normalized intercept Nw in m^-3 mm^-1."""
        return 10.0 ** np.asarray(self.log10_nw)

    @property
    def f_mu(self) -> np.ndarray:
        """The shape factor f(mu)."""
        mu = np.asarray(self.mu)
        return 6.0 / 4.0**4 * np.exp((mu + 4) * np.log(4 + mu) - gammaln(mu + 4))

    def number_concentration(self, diameters: ArrayLike) -> np.ndarray:
        """Number concentration at the given diameters.

        Args:
            diameters: 1-D diameters in mm.

        Returns:
            N(D) in m^-3 mm^-1, of shape ``self.shape + diameters.shape``.
        """
        diameters = np.asarray(diameters, dtype=float)
        if diameters.ndim != 1:
            raise ValueError(f"diameters must be 1-D, got shape {diameters.shape}")
        expand = (..., np.newaxis)
        x = diameters / np.asarray(self.dm_mm)[expand]
        mu = np.asarray(self.mu)[expand]
        return (self.nw * self.f_mu)[expand] * x**mu * np.exp(-(4 + mu) * x)

    def spectrum(self, classes: DiameterClasses) -> np.ndarray:
        """Binned spectrum sampled at the class centres.

        Args:
            classes: Diameter classes.

        Returns:
            N at the class centres, of shape ``self.shape + (classes.size,)``.
        """
        return self.number_concentration(classes.centres)

    def moment(self, order: float) -> np.ndarray:
        """Closed-form moment ``integral N(D) D^n dD`` over all diameters.

        ``M_n = Nw f(mu) Dm^(n+1) Gamma(mu+n+1) / (4+mu)^(mu+n+1)``.

        Args:
            order: Moment order n, above ``-mu - 1``.

        Returns:
            M_n in m^-3 mm^n.
        """
        mu = np.asarray(self.mu)
        dm = np.asarray(self.dm_mm)
        log_tail = gammaln(mu + order + 1) - (mu + order + 1) * np.log(4 + mu)
        return self.nw * self.f_mu * dm ** (order + 1) * np.exp(log_tail)

    def reflectivity(self) -> np.ndarray:
        """Rayleigh reflectivity factor Z = M6 in mm^6 m^-3."""
        return self.moment(6)

    def liquid_water_content(self) -> np.ndarray:
        """Liquid water content in g m^-3, ``pi/6 1e-3 M3 = pi 1e-3 Nw Dm^4 / 4^4``."""
        return WATER_CONTENT_FACTOR * self.moment(3)

    def mass_weighted_diameter(self) -> np.ndarray:
        """Dm recovered as M4 / M3, in mm (equal to ``dm_mm`` by construction of the normalization)."""
        return self.moment(4) / self.moment(3)

    def rain_rate(self, c: float = ATLAS_ULBRICH_C, d: float = ATLAS_ULBRICH_D) -> np.ndarray:
        """Rain rate for a power-law fall speed ``v = c D^d``.

        ``R = 6 pi 1e-4 c M_(3+d) = 6 pi 1e-4 c Nw f(mu) Dm^(4+d) Gamma(mu+4+d) / (4+mu)^(mu+4+d)``.

        Args:
            c: Fall-speed coefficient in m/s mm^-d.
            d: Fall-speed exponent.

        Returns:
            Rain rate in mm/h.
        """
        return RAIN_RATE_FACTOR * c * self.moment(3 + d)


def _checked(spectrum: ArrayLike, classes: DiameterClasses) -> np.ndarray:
    spectrum = np.asarray(spectrum, dtype=float)
    if spectrum.ndim == 0 or spectrum.shape[-1] != classes.size:
        raise ValueError(
            f"spectrum's last axis must run over the {classes.size} diameter classes, got shape {spectrum.shape}"
        )
    return spectrum


def binned_moment(spectrum: ArrayLike, classes: DiameterClasses, order: float) -> np.ndarray:
    """Moment ``sum N D^n dD`` of a binned spectrum.

    A NaN anywhere in a spectrum makes its moment NaN: missing data stay missing.

    Args:
        spectrum: N in m^-3 mm^-1, last axis over the classes.
        classes: Diameter classes.
        order: Moment order n.

    Returns:
        M_n in m^-3 mm^n, of the spectrum's shape without its last axis.
    """
    spectrum = _checked(spectrum, classes)
    return np.sum(spectrum * classes.centres**order * classes.widths, axis=-1)


def reflectivity(spectrum: ArrayLike, classes: DiameterClasses) -> np.ndarray:
    """Rayleigh reflectivity factor ``Z = sum N D^6 dD`` in mm^6 m^-3."""
    return binned_moment(spectrum, classes, 6)


def to_dbz(z: ArrayLike) -> np.ndarray:
    """Reflectivity in dBZ, ``10 log10 Z``; NaN where Z is not positive (no echo or missing).

    Args:
        z: Reflectivity factor in mm^6 m^-3.

    Returns:
        Reflectivity in dBZ.
    """
    z = np.asarray(z, dtype=float)
    positive = z > 0
    return np.where(positive, 10.0 * np.log10(np.where(positive, z, 1.0)), np.nan)


def liquid_water_content(spectrum: ArrayLike, classes: DiameterClasses) -> np.ndarray:
    """Liquid water content ``pi/6 1e-3 sum N D^3 dD`` in g m^-3."""
    return WATER_CONTENT_FACTOR * binned_moment(spectrum, classes, 3)


def mass_weighted_diameter(spectrum: ArrayLike, classes: DiameterClasses) -> np.ndarray:
    """Mass-weighted mean diameter ``Dm = M4 / M3`` in mm; NaN for an empty or missing spectrum."""
    m3 = binned_moment(spectrum, classes, 3)
    m4 = binned_moment(spectrum, classes, 4)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(m3 > 0, m4 / np.where(m3 > 0, m3, 1.0), np.nan)


def rain_rate(
    spectrum: ArrayLike,
    classes: DiameterClasses,
    fall_speed: Callable[[np.ndarray], np.ndarray] | ArrayLike = atlas_1973,
) -> np.ndarray:
    """Rain rate ``R = 6 pi 1e-4 sum N v D^3 dD`` in mm/h.

    Args:
        spectrum: N in m^-3 mm^-1, last axis over the classes.
        classes: Diameter classes.
        fall_speed: A fall-speed law of the diameter in mm (m/s), or fall speeds per class (measured ones,
            say), broadcastable against the spectrum.

    Returns:
        Rain rate in mm/h, of the spectrum's shape without its last axis.
    """
    spectrum = _checked(spectrum, classes)
    speeds = fall_speed(classes.centres) if callable(fall_speed) else np.asarray(fall_speed, dtype=float)
    if speeds.ndim == 0 or speeds.shape[-1] != classes.size:
        raise ValueError(f"fall speeds must end with the {classes.size} diameter classes, got shape {speeds.shape}")
    return RAIN_RATE_FACTOR * np.sum(spectrum * speeds * classes.centres**3 * classes.widths, axis=-1)


@dataclass(frozen=True)
class Regime:
    """Ranges of normalized gamma parameters typical of one kind of rain (Bringi et al. 2003).

    Attributes:
        name: Short name.
        log10_nw: Range of log10 Nw (Nw in m^-3 mm^-1).
        dm_mm: Range of Dm in mm.
        mu: Range of the shape parameter.
    """

    name: str
    log10_nw: tuple[float, float]
    dm_mm: tuple[float, float]
    mu: tuple[float, float] = (0.0, 10.0)

    def draw(self, rng: np.random.Generator, n: int) -> NormalizedGamma:
        """``n`` distributions with parameters uniform in the regime's ranges.

        Args:
            rng: Random generator.
            n: Number of distributions.

        Returns:
            One normalized gamma with parameter arrays of length ``n``.
        """
        return NormalizedGamma(
            log10_nw=rng.uniform(*self.log10_nw, size=n),
            dm_mm=rng.uniform(*self.dm_mm, size=n),
            mu=rng.uniform(*self.mu, size=n),
        )


#: Rain regimes of GROUND.md, by name.
REGIMES: dict[str, Regime] = {
    regime.name: regime
    for regime in (
        Regime("stratiform", log10_nw=(2.5, 3.5), dm_mm=(1.0, 2.0)),
        Regime("convective_maritime", log10_nw=(4.0, 4.5), dm_mm=(1.5, 1.75)),
        Regime("convective_continental", log10_nw=(3.0, 3.5), dm_mm=(2.0, 2.75)),
    )
}


def draw(regime: str | Regime, rng: np.random.Generator, n: int) -> NormalizedGamma:
    """``n`` normalized gamma distributions of a regime.

    Args:
        regime: A :class:`Regime` or the name of one in :data:`REGIMES`.
        rng: Random generator.
        n: Number of distributions.

    Returns:
        One normalized gamma with parameter arrays of length ``n``.
    """
    if isinstance(regime, str):
        if regime not in REGIMES:
            raise ValueError(f"unknown regime {regime!r}; known: {', '.join(REGIMES)}")
        regime = REGIMES[regime]
    return regime.draw(rng, n)
