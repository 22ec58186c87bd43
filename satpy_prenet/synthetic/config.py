# SPDX-License-Identifier: GPL-3.0-or-later
"""Knobs of the simulated world, with defaults that match the project's premise (see SIMULATION.md)."""

from __future__ import annotations

from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class WorldConfig:
    """Parameters of the simulated atmosphere and of what AGRI sees of it.

    The defaults give (measured on four unseen full discs, FY-4A and FY-4B, day and night, July and January, by
    ``benchmarks/world_calibration.py``): a rain fraction (>= 0.1 mm/h) of about 7-9 % of the disc pixels, most
    raining pixels light (77-87 % below 2 mm/h), a tail beyond 50 mm/h (about 0.1-0.3 %, maximum about 220-250
    mm/h), and an infrared view about as hard as the real one: two thirds of the cold (< 235 K) pixels do not
    rain, a third or more of the raining pixels lie under tops warmer than 250 K, GPI reaches a pixel CSI of
    about 0.2-0.3, and the Pearson r of -BT(10.8 um) and the rain is about 0.2. ``tests/test_synthetic.py`` pins
    these ranges; quote the config (:meth:`describe`) with every result.

    Attributes:
        deep_rate: Candidate births of deep convective systems per hour over the globe (before the
            climatological acceptance, which keeps roughly a third of them).
        stratiform_rate: Candidate births of stratiform (frontal / monsoon) rain shields per hour.
        cirrus_rate: Candidate births of thin cirrus sheets per hour.
        low_rate: Candidate births of low warm cloud fields per hour.
        rain_scale: Factor on every rain rate (intensity, not area).
        rain_spread: Standard deviation of the log of the rain-rate scatter inside raining areas
            (scatter from updraft, moisture and microphysics that the cloud top does not show).
        ir_rain_coupling: 0-1, how much of that scatter follows the cloud-top texture seen in the
            infrared (0: rain texture independent of the cloud top; 1: fully shared). Raising it raises
            the IR-rain correlation.
        orographic_rain: Rain (mm/h) per m/s of upslope wind for a 5 cm moist column.
        ir_noise: Factor on AGRI's nominal noise-equivalent temperature differences (0 = no noise).
        vis_noise: Factor on the visible/near-IR reflectance noise (0 = no noise).
    """

    deep_rate: float = 650.0
    stratiform_rate: float = 40.0
    cirrus_rate: float = 140.0
    low_rate: float = 70.0
    rain_scale: float = 1.0
    rain_spread: float = 0.9
    ir_rain_coupling: float = 0.85
    orographic_rain: float = 10.0
    ir_noise: float = 1.0
    vis_noise: float = 1.0

    def __post_init__(self) -> None:
        """Validate ranges."""
        if not 0.0 <= self.ir_rain_coupling <= 1.0:
            raise ValueError(f"ir_rain_coupling must be in [0, 1], got {self.ir_rain_coupling}")
        for name, value in asdict(self).items():
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")

    def describe(self) -> str:
        """One-line description for logs and file attributes."""
        return ", ".join(f"{key}={value:g}" for key, value in asdict(self).items())
