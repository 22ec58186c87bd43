# SPDX-License-Identifier: GPL-3.0-or-later
"""AGRI L1 calibration of the simulated files: counts, look-up tables, and values exactly as read.

Emissive channels: counts are linear in radiance (as a detector's are) between the brightness
temperatures of count 0 and of the largest valid count, and the look-up table ``CALChannelNN`` maps
each count to the brightness temperature of that radiance (Planck at the band centre), so the table is
monotone and finer at warm than at cold temperatures (very coarse at cold 3.72 um, as on the real
instrument). Reflective channels: reflectance = count * scale + offset.

:func:`quantise_bt` gives exactly what satpy's reader returns for a simulated brightness temperature,
so training data built without writing files equal those read from files.
"""

from __future__ import annotations

import functools
import logging

import numpy as np

from satpy_prenet.channels import BANDS_BY_KEY, channel_name
from satpy_prenet.synthetic.agri import C1, C2, FileChannel, file_channel

logger = logging.getLogger(__name__)

#: Count of pixels in space (and of anything that could not be calibrated).
FILL_COUNT = 65535
#: Reflectance per count (fraction) and offset of the reflective channels.
REFLECTANCE_SCALE = 3.0e-4
REFLECTANCE_OFFSET = 0.0


def _resolve(platform: str, band: str) -> FileChannel:
    """Channel of ``platform`` named by a channel name (``"C12"``) or a band key (``"IR10.8"``)."""
    name = channel_name(band, platform) if band in BANDS_BY_KEY else band
    return file_channel(platform, name)


def _planck64(wavelength: float, temperature):
    return C1 / wavelength**5 / np.expm1(C2 / (wavelength * np.asarray(temperature, dtype=np.float64)))


def _inverse_planck64(wavelength: float, radiance):
    return C2 / (wavelength * np.log1p(C1 / wavelength**5 / np.asarray(radiance, dtype=np.float64)))


def radiance_coefficients(channel: FileChannel) -> tuple[float, float]:
    """``(gain, offset)``: radiance (W m-2 sr-1 um-1) = count * gain + offset, for an emissive channel."""
    low, high = (_planck64(channel.wavelength, t) for t in channel.bt_range)
    return float((high - low) / channel.count_max), float(low)


def lut_size(channel: FileChannel) -> int:
    """Entries of the channel's ``CALChannelNN`` table (4096, or 65536 for the 16-bit C07)."""
    return 65536 if channel.count_max > 4095 else 4096


@functools.lru_cache(maxsize=64)
def _table(platform: str, name: str) -> np.ndarray:
    channel = file_channel(platform, name)
    counts = np.arange(lut_size(channel), dtype=np.float64)
    if channel.emissive:
        gain, offset = radiance_coefficients(channel)
        table = _inverse_planck64(channel.wavelength, counts * gain + offset)
    else:
        table = counts * REFLECTANCE_SCALE + REFLECTANCE_OFFSET
    table = table.astype(np.float32)
    table.flags.writeable = False
    return table


def calibration_table(platform: str, band: str) -> np.ndarray:
    """The ``CALChannelNN`` look-up table (float32, read-only): BT in K, or reflectance (0-1)."""
    channel = _resolve(platform, band)
    return _table(platform, channel.name)


def bt_to_counts(bt: np.ndarray, band: str, platform: str = "FY-4A") -> np.ndarray:
    """Counts (uint16) of brightness temperatures (K); NaN gives the fill count 65535.

    ``band`` is a band key of :mod:`satpy_prenet.channels` or a channel name of ``platform``.
    """
    channel = _resolve(platform, band)
    if not channel.emissive:
        raise ValueError(f"{platform} {channel.name} is a reflective channel")
    gain, offset = radiance_coefficients(channel)
    bt = np.asarray(bt)
    valid = np.isfinite(bt)
    radiance = _planck64(channel.wavelength, np.where(valid, bt, 300.0))
    counts = np.clip(np.rint((radiance - offset) / gain), 0, channel.count_max)
    return np.where(valid, counts, FILL_COUNT).astype(np.uint16)


def reflectance_to_counts(reflectance_percent: np.ndarray, band: str, platform: str = "FY-4A") -> np.ndarray:
    """Counts (uint16) of reflectances in %; NaN gives the fill count 65535."""
    channel = _resolve(platform, band)
    if channel.emissive:
        raise ValueError(f"{platform} {channel.name} is an emissive channel")
    value = np.asarray(reflectance_percent, dtype=np.float64)
    valid = np.isfinite(value)
    counts = np.clip(np.rint((np.where(valid, value, 0.0) / 100.0 - REFLECTANCE_OFFSET) / REFLECTANCE_SCALE),
                     0, channel.count_max)
    return np.where(valid, counts, FILL_COUNT).astype(np.uint16)


def counts_to_values(counts: np.ndarray, band: str, platform: str = "FY-4A") -> np.ndarray:
    """What satpy's reader returns for counts: BT (K) via the table, or reflectance (%); NaN for fill.

    Brightness temperatures are the float32 table entries (satpy hands them over as float64 of the
    same values); reflectances are computed in float64 as the reader does.
    """
    channel = _resolve(platform, band)
    counts = np.asarray(counts)
    fill = counts > channel.count_max
    if channel.emissive:
        table = calibration_table(platform, channel.name)
        values = table[np.where(fill, 0, counts)]
        values = np.where(fill, np.float32(np.nan), values)
        return values.astype(np.float32)
    # The reader applies the file's float32 coefficients (as Python floats).
    scale, offset = float(np.float32(REFLECTANCE_SCALE)), float(np.float32(REFLECTANCE_OFFSET))
    values = (counts.astype(np.float64) * scale + offset) * 100.0
    return np.where(fill, np.nan, np.maximum(values, 0.0))


def quantise_bt(bt: np.ndarray, band: str, platform: str = "FY-4A") -> np.ndarray:
    """Brightness temperature exactly as satpy's reader returns it after writing ``bt`` to a file.

    Args:
        bt: Brightness temperatures (K); NaN for space.
        band: Band key (``"IR10.8"``) or channel name (``"C12"``).
        platform: ``"FY-4A"`` or ``"FY-4B"``.

    Returns:
        float32 array (the look-up-table entries; NaN where ``bt`` is NaN).
    """
    return counts_to_values(bt_to_counts(bt, band, platform), band, platform)


def quantise_reflectance(reflectance_percent: np.ndarray, band: str, platform: str = "FY-4A") -> np.ndarray:
    """Reflectance (%) exactly as satpy's reader returns it after writing it to a file (float64)."""
    return counts_to_values(reflectance_to_counts(reflectance_percent, band, platform), band, platform)


def quantised_bt(scene) -> dict[str, np.ndarray]:
    """The scene's brightness temperatures per band key, exactly as read back from its L1 file."""
    return {key: quantise_bt(values, key, scene.platform) for key, values in scene.bt.items()}


def bt_resolution(band: str, platform: str, temperature: float) -> float:
    """Brightness-temperature step (K) of one count at ``temperature``."""
    table = calibration_table(platform, band).astype(np.float64)
    i = int(np.clip(np.searchsorted(table, temperature), 1, table.size - 1))
    return float(table[i] - table[i - 1])
