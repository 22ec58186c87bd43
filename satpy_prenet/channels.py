# SPDX-License-Identifier: GPL-3.0-or-later
"""AGRI infrared bands, identified by wavelength so that FY-4A and FY-4B share one model."""

from __future__ import annotations

from dataclasses import dataclass

#: satpy platform names and the satpy reader of each platform's 4 km L1 full-disc files.
READERS = {"FY-4A": "agri_fy4a_l1", "FY-4B": "agri_fy4b_l1"}


@dataclass(frozen=True)
class Band:
    """One infrared input of the model.

    Attributes:
        key: Stable identifier stored in weights bundles.
        wavelength: Central wavelength in micrometres, as satpy's readers list it.
        channels: satpy channel name of the band on each platform.
    """

    key: str
    wavelength: float
    channels: dict[str, str]


IR_BANDS: tuple[Band, ...] = (
    Band("IR3.72H", 3.72, {"FY-4A": "C07", "FY-4B": "C07"}),
    Band("IR3.72L", 3.72, {"FY-4A": "C08", "FY-4B": "C08"}),
    Band("WV6.25", 6.25, {"FY-4A": "C09", "FY-4B": "C09"}),
    # FY-4A's 7.1 um band; on FY-4B 7.1 um falls inside the 6.95 um band (C10).
    Band("WV7.10", 7.1, {"FY-4A": "C10", "FY-4B": "C10"}),
    Band("IR8.50", 8.5, {"FY-4A": "C11", "FY-4B": "C12"}),
    Band("IR10.8", 10.8, {"FY-4A": "C12", "FY-4B": "C13"}),
    Band("IR12.0", 12.0, {"FY-4A": "C13", "FY-4B": "C14"}),
    Band("IR13.5", 13.5, {"FY-4A": "C14", "FY-4B": "C15"}),
)
BANDS_BY_KEY = {band.key: band for band in IR_BANDS}

#: The paper's eight emissive channels.
PAPER_BANDS: tuple[str, ...] = tuple(band.key for band in IR_BANDS)
#: Without the 3.72 um channels, which see reflected sunlight by day: a day/night-consistent set.
DAY_NIGHT_BANDS: tuple[str, ...] = tuple(key for key in PAPER_BANDS if not key.startswith("IR3.72"))


def bands(keys: list[str] | tuple[str, ...]) -> list[Band]:
    """Return the bands named by ``keys``, raising a clear error for unknown keys."""
    unknown = [key for key in keys if key not in BANDS_BY_KEY]
    if unknown:
        raise ValueError(f"Unknown AGRI band(s) {unknown}; known bands are {list(BANDS_BY_KEY)}")
    return [BANDS_BY_KEY[key] for key in keys]


def channel_name(key: str, platform: str) -> str:
    """Satpy channel name of band ``key`` on ``platform`` (e.g. ``"IR10.8"`` on FY-4B is ``"C13"``)."""
    if platform not in READERS:
        raise ValueError(f"Unsupported platform {platform!r}; supported are {list(READERS)}")
    return bands([key])[0].channels[platform]


def band_key(channel: str, platform: str) -> str | None:
    """Band key of satpy channel ``channel`` (e.g. ``"C13"``) on ``platform``, or None if it is no model input."""
    for band in IR_BANDS:
        if band.channels.get(platform) == channel:
            return band.key
    return None
