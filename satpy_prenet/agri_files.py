# SPDX-License-Identifier: GPL-3.0-or-later
"""Checks of AGRI L1 files before satpy reads them, with errors that name the file and the problem."""

from __future__ import annotations

import datetime as dt
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np
from satpy.readers.core.utils import np2str

from satpy_prenet.channels import READERS, bands

LOG = logging.getLogger(__name__)

_PLATFORM_IDS = {"FY4A": "FY-4A", "FY4B": "FY-4B"}
_NAME = re.compile(r"^(?P<platform_id>FY4[A-Z])-_AGRI--_N_(?P<observation>[A-Z]{4})_\d{4}[EW]_L1-_FDI-_MULT_"
                   r"[A-Z]+_(?P<start>\d{14})_(?P<end>\d{14})_(?P<resolution>\d{4}M)_V\d{4}\.HDF$")


class AGRIFileError(ValueError):
    """An AGRI L1 file that cannot be used, with the file and the problem in the message."""


@dataclass(frozen=True)
class AGRIName:
    """What the name of an AGRI L1 file says: platform, observation type (DISK, REGC), scan times (UTC)."""

    platform: str
    observation: str
    start_time: dt.datetime
    end_time: dt.datetime


def parse_agri_name(path: str | Path) -> AGRIName:
    """Read platform, observation type and times from the name of a 4 km AGRI L1 file, without opening it.

    Raises:
        AGRIFileError: the name is not that of a 4 km AGRI L1 file of a supported platform.
    """
    path = Path(path)
    match = _NAME.match(path.name)
    if match is None:
        raise AGRIFileError(f"{path}: not an AGRI L1 full-disc file name (expected e.g. "
                            "FY4A-_AGRI--_N_DISK_1047E_L1-_FDI-_MULT_NOM_<start>_<end>_4000M_V0001.HDF)")
    platform = _PLATFORM_IDS.get(match["platform_id"])
    if platform is None:
        raise AGRIFileError(f"{path}: satellite {match['platform_id']} is not supported "
                            f"(supported: {', '.join(READERS)})")
    if match["resolution"] != "4000M":
        raise AGRIFileError(f"{path}: {match['resolution']} file; PRE-Net products are made from 4000M files")
    start, end = (dt.datetime.strptime(match[key], "%Y%m%d%H%M%S") for key in ("start", "end"))
    return AGRIName(platform=platform, observation=match["observation"], start_time=start, end_time=end)


@dataclass(frozen=True)
class AGRIFile:
    """What a usable AGRI L1 file is: platform, observation type (DISK, REGC), satpy reader and its channels."""

    path: Path
    platform: str
    observation: str
    reader: str
    channels: tuple[str, ...]


def inspect_agri_file(path: str | Path, required_bands: tuple[str, ...] | list[str] = (), *,
                      check_data: bool = True) -> AGRIFile:
    """Check that ``path`` is a readable 4 km AGRI L1 file of a supported platform and list its channels.

    Args:
        path: The file.
        required_bands: Band keys (`satpy_prenet.channels`) the file must hold, e.g. a bundle's bands.
        check_data: Also read a sample of each required band's counts to refuse dead, stuck or corrupt channels
            (the training build reads the values itself and skips files without data).

    Raises:
        AGRIFileError: the file is missing, empty, not HDF5 (truncated or corrupt), not a 4 km AGRI L1 file,
            from an unsupported satellite, disagrees with its own name, lacks a required band, or (``check_data``)
            a required band is dead, stuck or corrupt.
    """
    path = Path(path)
    if not path.is_file():
        raise AGRIFileError(f"{path}: no such file")
    if path.stat().st_size == 0:
        raise AGRIFileError(f"{path}: the file is empty (zero bytes)")
    name = parse_agri_name(path)
    platform = name.platform
    try:
        with h5py.File(path, "r") as h5:
            satellite = np2str(np.squeeze(h5.attrs.get("Satellite Name", np.bytes_(b""))))
            group = h5["Data"] if platform == "FY-4B" and "Data" in h5 else h5
            names = tuple(sorted(key[len("NOMChannel"):] for key in group if key.startswith("NOMChannel")))
            if satellite and _PLATFORM_IDS.get(satellite) != platform:
                raise AGRIFileError(f"{path}: the file says it comes from {satellite!r} but its name says {platform}")
            agri = AGRIFile(path=path, platform=platform, observation=name.observation, reader=READERS[platform],
                            channels=tuple(f"C{n}" for n in names))
            needed = bands(required_bands)
            missing = [band for band in needed if band.channels[platform] not in agri.channels]
            if missing:
                listed = ", ".join(f"{band.channels[platform]} ({band.wavelength:g} um)" for band in missing)
                raise AGRIFileError(f"{path}: the file lacks channel(s) {listed} that the model needs")
            for band in needed if check_data else ():
                try:
                    problem = _dead_channel_problem(group[f"NOMChannel{band.channels[platform][1:]}"])
                except OSError as err:  # a damaged compressed chunk
                    raise AGRIFileError(f"{path}: reading the file failed: channel {band.channels[platform]} "
                                        f"({band.wavelength:g} um) is corrupt ({err})") from err
                if problem:
                    raise AGRIFileError(f"{path}: channel {band.channels[platform]} ({band.wavelength:g} um) "
                                        f"{problem}; the model cannot retrieve rain without it")
    except OSError as err:
        raise AGRIFileError(f"{path}: not a readable HDF5 file, truncated or corrupt ({err})") from err
    return agri


#: Every how many lines and columns a channel's counts are sampled to tell a dead channel from a live one.
_SAMPLING = 4


def _dead_channel_problem(counts: h5py.Dataset) -> str | None:
    """What makes a channel unusable on the whole image: only fill values, or one count everywhere; else None.

    Sampled every few lines and columns: a detector that is dead or stuck is so on every pixel. Where only part of
    the image lacks data, its pixels become NaN when satpy calibrates them and are flagged ``invalid_input``.
    """
    sample = counts[::_SAMPLING, ::_SAMPLING]
    low, high = counts.attrs.get("valid_range", (0, np.iinfo(sample.dtype).max - 1))
    fill = np.asarray(counts.attrs.get("FillValue", [])).ravel()
    valid = sample[(sample >= low) & (sample <= high) & ~np.isin(sample, fill)]
    if valid.size == 0:
        return "holds only fill values (no valid count)"
    if valid.min() == valid.max():
        return f"holds the same count ({valid.min()}) at every valid pixel: a dead or stuck detector"
    return None

