# SPDX-License-Identifier: GPL-3.0-or-later
"""What AGRI sees of the simulated atmosphere: brightness temperatures and reflectances per channel.

Infrared channels use a layered radiative-transfer model in radiance (Planck at the band centre):
surface, a low water-cloud layer, a mid-level (mixed-phase) layer and an upper ice layer, each cloud
layer with an emissivity ``1 - exp(-k tau / mu)`` (``k`` per channel and phase, so thin ice gives a larger
10.8-12.0 um difference and 8.5 um differs for ice), separated by gas slabs whose absorber is water vapour
(scale height 2 km, upper humidity weighting the water-vapour bands) or CO2 (13.5 um). Emission of each
slab comes from the channel's peak height clipped to the slab, so water-vapour bands see upper/mid
humidity (clear sky about 230-250 K in the tropics), 13.5 um peaks higher than the windows, and a longer
slant path (``1 / mu``) cools the limb. 3.72 um adds reflected sunlight by day. Noise is added in
radiance from the nominal NEdT at 300 K, so cold scenes are noisier (strongly so at 3.72 um).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np

from satpy_prenet.synthetic.atmosphere import WATER_VAPOUR_SCALE_HEIGHT, Profile

logger = logging.getLogger(__name__)

#: Planck radiation constants for wavelengths in micrometres, radiance in W m-2 sr-1 um-1.
C1 = 1.191042e8
C2 = 1.4387752e4


def planck(wavelength: float, temperature: np.ndarray) -> np.ndarray:
    """Spectral radiance (W m-2 sr-1 um-1) of a black body at ``temperature`` (K)."""
    c1 = np.float32(C1 / wavelength**5)
    c2 = np.float32(C2 / wavelength)
    out = np.divide(c2, temperature, dtype=np.float32)
    np.expm1(out, out=out)
    np.divide(c1, out, out=out)
    return out


def inverse_planck(wavelength: float, radiance: np.ndarray) -> np.ndarray:
    """Brightness temperature (K) of a spectral radiance."""
    c1 = np.float32(C1 / wavelength**5)
    c2 = np.float32(C2 / wavelength)
    out = np.maximum(radiance, np.float32(1e-12))
    np.divide(c1, out, out=out)
    np.log1p(out, out=out)
    np.divide(c2, out, out=out)
    return out


@dataclass(frozen=True)
class EmissiveBand:
    """Physics of one emissive band.

    Attributes:
        key: Identifier (the :mod:`satpy_prenet.channels` key where the band is in that table).
        wavelength: Band centre (um).
        gas: ``"h2o"`` (water vapour only) or ``"co2"`` (CO2 plus some water vapour).
        tau_gas: Nadir optical depth of water vapour from the surface to space for a 5 cm column at
            40 % upper humidity (for ``co2`` the CO2 optical depth from sea level).
        humidity_weight: Exponent of (upper humidity / 0.4) in the water-vapour absorber.
        tau_h2o_extra: Water-vapour optical depth added to a CO2 band.
        k_ice: Absorption optical depth per unit visible optical depth of ice cloud.
        k_water: Same for liquid cloud.
        emissivity: Surface emissivity over sea, vegetated land and bare soil.
        solar: Solar spectral irradiance at the top of the atmosphere (W m-2 um-1), 0 if negligible.
        cloud_reflectance: Reflectance of a thick (water, ice) cloud. It takes that share from the cloud's
            emissivity (Kirchhoff), so at night thick water clouds look colder at 3.72 um than at
            10.8 um, and it reflects sunlight by day.
    """

    key: str
    wavelength: float
    gas: str
    tau_gas: float
    humidity_weight: float
    k_ice: float
    k_water: float
    emissivity: tuple[float, float, float]
    solar: float = 0.0
    tau_h2o_extra: float = 0.0
    cloud_reflectance: tuple[float, float] = (0.0, 0.0)


#: CO2 absorber scale height (km).
CO2_SCALE_HEIGHT = 7.0

EMISSIVE_BANDS: dict[str, EmissiveBand] = {
    band.key: band
    for band in (
        EmissiveBand("IR3.72", 3.72, "h2o", 0.30, 0.0, 0.42, 0.32, (0.975, 0.95, 0.82), solar=11.0,
                     cloud_reflectance=(0.15, 0.015)),
        EmissiveBand("WV6.25", 6.25, "h2o", float(np.exp(9.4 / 2.0)), 1.0, 0.55, 0.5, (0.99, 0.98, 0.97)),
        EmissiveBand("WV6.95", 6.95, "h2o", float(np.exp(8.0 / 2.0)), 0.85, 0.55, 0.5, (0.99, 0.98, 0.97)),
        EmissiveBand("WV7.10", 7.10, "h2o", float(np.exp(7.2 / 2.0)), 0.75, 0.55, 0.5, (0.99, 0.98, 0.97)),
        EmissiveBand("WV7.42", 7.42, "h2o", float(np.exp(5.8 / 2.0)), 0.5, 0.55, 0.5, (0.99, 0.98, 0.97)),
        EmissiveBand("IR8.50", 8.5, "h2o", 0.55, 0.0, 0.46, 0.56, (0.985, 0.96, 0.80),
                     cloud_reflectance=(0.05, 0.015)),
        EmissiveBand("IR10.8", 10.8, "h2o", 0.75, 0.0, 0.50, 0.50, (0.99, 0.975, 0.95)),
        EmissiveBand("IR12.0", 12.0, "h2o", 1.30, 0.0, 0.57, 0.57, (0.985, 0.975, 0.96)),
        EmissiveBand("IR13.5", 13.5, "co2", float(np.exp(5.2 / CO2_SCALE_HEIGHT)), 0.3, 0.55, 0.55,
                     (0.985, 0.975, 0.96), tau_h2o_extra=0.8),
    )
}


@dataclass(frozen=True)
class ReflectiveBand:
    """Physics of one visible / near-infrared band.

    Attributes:
        key: Identifier.
        wavelength: Band centre (um).
        rayleigh: Molecular-scattering path reflectance at nadir sun and view.
        albedo: Surface albedo over sea, vegetated land and bare soil.
        absorption: Single-scattering co-albedo factor of (water, ice) clouds: reflectance multiplier.
        h2o_tau: Water-vapour optical depth (5 cm column) of a strongly absorbing band (1.37 um), else 0.
    """

    key: str
    wavelength: float
    rayleigh: float
    albedo: tuple[float, float, float]
    absorption: tuple[float, float]
    h2o_tau: float = 0.0


REFLECTIVE_BANDS: dict[str, ReflectiveBand] = {
    band.key: band
    for band in (
        ReflectiveBand("VIS0.47", 0.47, 0.09, (0.06, 0.05, 0.20), (1.0, 1.0)),
        ReflectiveBand("VIS0.65", 0.65, 0.04, (0.04, 0.07, 0.30), (1.0, 1.0)),
        ReflectiveBand("NIR0.83", 0.825, 0.015, (0.02, 0.30, 0.35), (0.99, 0.99)),
        ReflectiveBand("NIR1.37", 1.375, 0.0, (0.0, 0.0, 0.0), (0.95, 0.85), h2o_tau=40.0),
        ReflectiveBand("NIR1.61", 1.61, 0.0, (0.01, 0.22, 0.45), (0.85, 0.55)),
        ReflectiveBand("NIR2.22", 2.225, 0.0, (0.005, 0.12, 0.40), (0.7, 0.4)),
    )
}


@dataclass
class Column:
    """The atmospheric column of each pixel as the instrument model needs it (float32 arrays)."""

    profile: Profile
    mu: np.ndarray  # cosine of the satellite zenith angle
    mu_sun: np.ndarray  # cosine of the solar zenith angle, clipped at 0
    land: np.ndarray  # 0/1
    bare: np.ndarray  # bare-soil fraction
    elevation: np.ndarray  # km
    skin_temperature: np.ndarray  # K
    tcwv: np.ndarray  # cm
    humidity: np.ndarray  # upper-tropospheric relative humidity 0-1
    tau: tuple[np.ndarray, np.ndarray, np.ndarray]  # visible optical depth: low, mid, ice
    height: tuple[np.ndarray, np.ndarray, np.ndarray]  # top heights (km), = layer below where empty
    ice_fraction: tuple[np.ndarray, np.ndarray, np.ndarray]


def _surface_mix(values: tuple[float, float, float], land: np.ndarray, bare: np.ndarray) -> np.ndarray:
    sea, veg, soil = (np.float32(v) for v in values)
    return (sea + land * ((veg - sea) + bare * (soil - veg))).astype(np.float32)


@dataclass
class _LayerPixels:
    """Channel-independent data of the pixels where one cloud layer exists (flat index subset)."""

    index: np.ndarray
    profile: Profile
    z_below: np.ndarray
    z_top: np.ndarray
    h2o_below: np.ndarray
    h2o_top: np.ndarray
    co2_below: np.ndarray
    co2_top: np.ndarray
    tau_mu: np.ndarray  # visible optical depth / mu
    ice: np.ndarray
    temperature: np.ndarray
    elevation: np.ndarray


class InfraredModel:
    """Layered emission model shared by all emissive bands of one scene.

    Channel-independent terms are computed once; the gas slab below each cloud layer and the layer
    itself are only evaluated where that layer exists, which keeps a full-disc band near 0.1 s.
    """

    def __init__(self, column: Column) -> None:
        """Precompute absorber amounts, levels and temperatures shared by every band."""
        self.col = column
        prof = column.profile
        self.inv_mu = np.float32(1.0) / np.maximum(column.mu, np.float32(0.02))
        h = np.float32(WATER_VAPOUR_SCALE_HEIGHT)
        hc = np.float32(CO2_SCALE_HEIGHT)
        self.log_column = np.log(column.tcwv / np.float32(5.0) * self.inv_mu)
        self.log_humidity = np.log(np.clip(column.humidity, 0.1, 1.0) / np.float32(0.4))
        top = column.height[2]
        self.top = top
        self.h2o_top = np.exp(-(top - column.elevation) / h)
        self.co2_top = np.exp(-top / hc)
        self.emission_temperature_cache: dict[float, np.ndarray] = {}
        flat_elev = column.elevation.ravel()
        self.layers: list[_LayerPixels] = []
        below = column.elevation.ravel()
        for k in range(3):
            tau = column.tau[k].ravel()
            index = np.flatnonzero(tau > 0)
            z_top = column.height[k].ravel()[index]
            z_below = below[index]
            elev = flat_elev[index]
            sub_prof = prof.flat_subset(index)
            self.layers.append(_LayerPixels(
                index=index, profile=sub_prof, z_below=z_below, z_top=z_top,
                h2o_below=np.exp(-(z_below - elev) / h), h2o_top=np.exp(-(z_top - elev) / h),
                co2_below=np.exp(-z_below / hc), co2_top=np.exp(-z_top / hc),
                tau_mu=tau[index] * self.inv_mu.ravel()[index], ice=column.ice_fraction[k].ravel()[index],
                temperature=sub_prof.cloud_top_temperature(z_top), elevation=elev,
            ))
            below = column.height[k].ravel()

    def brightness_temperature(self, band: EmissiveBand) -> np.ndarray:
        """Brightness temperature (K, float32) of ``band``, without instrument noise."""
        col = self.col
        wl = band.wavelength
        hw = np.float32(WATER_VAPOUR_SCALE_HEIGHT)
        log_tau = np.float32(np.log(band.tau_gas if band.gas == "h2o" else band.tau_h2o_extra))
        log_scale = self.log_column + np.float32(band.humidity_weight) * self.log_humidity
        log_scale += log_tau
        h2o_scale = np.exp(log_scale)  # slant water-vapour optical depth above the surface
        if band.gas == "co2":
            co2_scale = np.float32(band.tau_gas) * self.inv_mu
            # Emission from about the CO2 peak: H ln(tau / mu), raised by a third of the scale height.
            emission = np.float32(CO2_SCALE_HEIGHT) * (np.log(co2_scale) + np.float32(0.3))
            thin = np.float32(0.5 * CO2_SCALE_HEIGHT)
        else:
            co2_scale = None
            emission = col.elevation + hw * (log_scale + np.float32(0.3))
            thin = np.float32(0.7) * hw

        emissivity = _surface_mix(band.emissivity, col.land, col.bare)
        radiance = emissivity * planck(wl, col.skin_temperature)
        solar = None
        if band.solar:
            solar = np.float32(band.solar / np.pi) * col.mu_sun
            radiance += (np.float32(1.0) - emissivity) * solar
        flat = radiance.ravel()
        for layer in self.layers:
            if layer.index.size == 0:
                continue
            idx = layer.index
            slab_tau = h2o_scale.ravel()[idx] * (layer.h2o_below - layer.h2o_top)
            if co2_scale is not None:
                slab_tau += co2_scale.ravel()[idx] * (layer.co2_below - layer.co2_top)
            rad = _slab(wl, flat[idx], slab_tau, layer.profile, layer.z_below, layer.z_top, emission.ravel()[idx],
                        thin)
            k_abs = np.float32(band.k_water) + layer.ice * np.float32(band.k_ice - band.k_water)
            transmittance = np.exp(-k_abs * layer.tau_mu)
            rad *= transmittance
            emissivity_cloud = np.float32(1.0) - transmittance
            if band.cloud_reflectance != (0.0, 0.0):
                water, ice = (np.float32(v) for v in band.cloud_reflectance)
                tau = layer.tau_mu / self.inv_mu.ravel()[idx]
                reflect = (water + (ice - water) * layer.ice) * tau / (tau + np.float32(6.0))
                emissivity_cloud -= np.minimum(reflect, emissivity_cloud)
                if solar is not None:
                    rad += reflect * solar.ravel()[idx]
            rad += emissivity_cloud * planck(wl, layer.temperature)
            flat[idx] = rad
        top_tau = h2o_scale * self.h2o_top
        if co2_scale is not None:
            top_tau += co2_scale * self.co2_top
        radiance = _slab(wl, radiance, top_tau, col.profile, self.top, self.top + np.float32(30.0), emission, thin)
        return inverse_planck(wl, radiance)


def _slab(wl: float, radiance: np.ndarray, slab_tau: np.ndarray, profile: Profile, z_below: np.ndarray,
          z_top: np.ndarray, emission_height: np.ndarray, thin_depth: np.float32) -> np.ndarray:
    """Radiance leaving the top of a gas slab between ``z_below`` and ``z_top``.

    The slab emits at the air temperature of the channel's emission height clipped to the slab (at least
    ``thin_depth`` above its base, where an optically thin absorber emits on average).
    """
    height = np.maximum(emission_height, z_below + thin_depth)
    np.minimum(height, z_top, out=height)
    source = planck(wl, profile.air_temperature(height))
    transmittance = np.exp(-np.maximum(slab_tau, np.float32(0.0)))
    radiance = radiance - source
    radiance *= transmittance
    radiance += source
    return radiance


class ReflectanceModel:
    """Visible / near-infrared reflectance of one scene (shared terms computed once)."""

    def __init__(self, column: Column) -> None:
        """Precompute the cloud optical depth, ice fraction and geometry terms."""
        self.col = column
        tau_low, tau_mid, tau_ice = column.tau
        self.tau = tau_low + tau_mid + tau_ice
        self.ice = (tau_ice + column.ice_fraction[1] * tau_mid) / np.maximum(self.tau, np.float32(1e-6))
        scaled = np.float32(0.15) * self.tau
        # Two-stream reflectance of a conservative cloud with asymmetry parameter 0.85.
        self.cloud = scaled / (np.float32(2.0) + scaled)
        self.path = np.float32(0.5) * (np.float32(1.0) + np.float32(1.0) / np.maximum(column.mu, np.float32(0.05)))

    def reflectance(self, band: ReflectiveBand) -> np.ndarray:
        """Top-of-atmosphere reflectance (0-1, not corrected for the solar zenith angle) of ``band``."""
        col = self.col
        absorption = np.float32(band.absorption[0]) + self.ice * np.float32(band.absorption[1] - band.absorption[0])
        if band.h2o_tau:
            # Only clouds high above the water vapour are seen at 1.37 um.
            h = np.float32(WATER_VAPOUR_SCALE_HEIGHT)
            amount = np.float32(band.h2o_tau) * col.tcwv / np.float32(5.0)
            tau = (col.tau[1] * np.exp(-amount * np.exp(-(col.height[1] - col.elevation) / h))
                   + col.tau[2] * np.exp(-amount * np.exp(-(col.height[2] - col.elevation) / h)))
            scaled = np.float32(0.15) * tau
            absorption *= scaled / (np.float32(2.0) + scaled)
            out = absorption
        else:
            cloud = absorption * self.cloud
            albedo = _surface_mix(band.albedo, col.land, col.bare)
            # Cloud over a Lambertian surface: R = Rc + (1 - Rc)^2 A / (1 - Rc A).
            out = np.float32(1.0) - cloud
            below = out * out * albedo
            below /= np.float32(1.0) - cloud * albedo
            if band.rayleigh:
                out *= np.float32(band.rayleigh) * self.path
                out += cloud
            else:
                out = cloud
            out += below
        out *= col.mu_sun
        return out


def add_radiance_noise(bt: np.ndarray, wavelength: float, nedt: float, noise: np.ndarray) -> np.ndarray:
    """Add noise of ``nedt`` K at 300 K, in radiance, so that the BT noise grows in cold scenes."""
    if nedt <= 0:
        return bt
    c2 = C2 / wavelength
    # dB/dT at 300 K in the same units as :func:`planck`.
    x = c2 / 300.0
    dbdt = C1 / wavelength**5 * x * np.exp(x) / (300.0 * np.expm1(x) ** 2)
    radiance = planck(wavelength, bt) + np.float32(dbdt * nedt) * noise
    # A detector cannot report less than its zero level: keep noisy cold scenes above 150 K.
    return np.maximum(inverse_planck(wavelength, radiance), np.float32(150.0))


@dataclass(frozen=True)
class FileChannel:
    """One channel of the AGRI 4 km L1 file of a platform.

    Attributes:
        name: satpy / file channel name (``"C12"``).
        wavelength: Central wavelength (um) as satpy's reader YAML lists it.
        physics: Key of the band model in :data:`EMISSIVE_BANDS` or :data:`REFLECTIVE_BANDS`.
        band_key: Key of the band in :data:`satpy_prenet.channels.IR_BANDS`, if the band is there.
        noise: NEdT at 300 K (K) for emissive channels; reflectance noise (0-1) for reflective ones.
        count_max: Largest valid count (4095, or 65534 for the 16-bit C07).
        bt_range: Brightness temperatures of counts 0 and ``count_max`` (K), emissive channels only.
    """

    name: str
    wavelength: float
    physics: str
    band_key: str | None
    noise: float
    count_max: int = 4095
    bt_range: tuple[float, float] = (0.0, 0.0)

    @property
    def emissive(self) -> bool:
        """Whether the channel is calibrated to brightness temperature."""
        return self.physics in EMISSIVE_BANDS

    @property
    def number(self) -> int:
        """Channel number (1-15)."""
        return int(self.name[1:])


_REFLECTIVE = (
    FileChannel("C01", 0.47, "VIS0.47", None, 0.0015),
    FileChannel("C02", 0.65, "VIS0.65", None, 0.0015),
    FileChannel("C03", 0.83, "NIR0.83", None, 0.0015),
    FileChannel("C04", 1.37, "NIR1.37", None, 0.0015),
    FileChannel("C05", 1.61, "NIR1.61", None, 0.0015),
    FileChannel("C06", 2.22, "NIR2.22", None, 0.0015),
)
_WINDOW_RANGE = (170.0, 340.0)
_WV_RANGE = (170.0, 320.0)

#: Channels of the 4 km L1 file of each platform, in file order.
PLATFORM_CHANNELS: dict[str, tuple[FileChannel, ...]] = {
    "FY-4A": _REFLECTIVE + (
        FileChannel("C07", 3.72, "IR3.72", "IR3.72H", 0.7, 65534, (170.0, 420.0)),
        FileChannel("C08", 3.72, "IR3.72", "IR3.72L", 0.2, 4095, (170.0, 345.0)),
        FileChannel("C09", 6.25, "WV6.25", "WV6.25", 0.3, 4095, _WV_RANGE),
        FileChannel("C10", 7.10, "WV7.10", "WV7.10", 0.3, 4095, _WV_RANGE),
        FileChannel("C11", 8.5, "IR8.50", "IR8.50", 0.2, 4095, _WINDOW_RANGE),
        FileChannel("C12", 10.8, "IR10.8", "IR10.8", 0.2, 4095, _WINDOW_RANGE),
        FileChannel("C13", 12.0, "IR12.0", "IR12.0", 0.2, 4095, _WINDOW_RANGE),
        FileChannel("C14", 13.5, "IR13.5", "IR13.5", 0.5, 4095, _WV_RANGE),
    ),
    "FY-4B": _REFLECTIVE + (
        FileChannel("C07", 3.72, "IR3.72", "IR3.72H", 0.7, 65534, (170.0, 420.0)),
        FileChannel("C08", 3.72, "IR3.72", "IR3.72L", 0.2, 4095, (170.0, 345.0)),
        FileChannel("C09", 6.25, "WV6.25", "WV6.25", 0.3, 4095, _WV_RANGE),
        # The project's 7.1 um band is FY-4B's 6.95 um channel (see satpy_prenet.channels).
        FileChannel("C10", 6.95, "WV6.95", "WV7.10", 0.3, 4095, _WV_RANGE),
        FileChannel("C11", 7.42, "WV7.42", None, 0.3, 4095, _WV_RANGE),
        FileChannel("C12", 8.5, "IR8.50", "IR8.50", 0.2, 4095, _WINDOW_RANGE),
        FileChannel("C13", 10.8, "IR10.8", "IR10.8", 0.2, 4095, _WINDOW_RANGE),
        FileChannel("C14", 12.0, "IR12.0", "IR12.0", 0.2, 4095, _WINDOW_RANGE),
        FileChannel("C15", 13.5, "IR13.5", "IR13.5", 0.5, 4095, _WV_RANGE),
    ),
}


def file_channel(platform: str, name: str) -> FileChannel:
    """The channel ``name`` (``"C12"``) of ``platform``'s file."""
    for channel in PLATFORM_CHANNELS[platform]:
        if channel.name == name:
            return channel
    raise KeyError(f"{platform} has no channel {name!r}")
