# SPDX-License-Identifier: GPL-3.0-or-later
"""Write a simulated scene as an FY-4A / FY-4B AGRI L1 4 km HDF5 file in the real layout and naming.

Layout (what satpy's ``agri_fy4a_l1`` / ``agri_fy4b_l1`` readers read, plus the usual companions):
``NOMChannelNN`` uint16 counts (65535 in space), ``CALChannelNN`` float32 look-up tables,
``CALIBRATION_COEF(SCALE+OFFSET)``, and the root attributes (satellite, sensor, nominal position and
ellipsoid, observing times, region line/pixel numbers). FY-4A keeps the datasets at the root; FY-4B
puts the counts under ``Data/`` and the tables under ``Calibration/``. A window of the disc is written as
a regional (``REGC``) file whose line/pixel numbers make satpy's area equal to that slice of the disc.

Files are written to a hidden temporary name in the target directory and renamed when complete, so a
failed write never leaves a partial ``.HDF`` that a file watcher could pick up.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from pathlib import Path

import h5py
import numpy as np

from satpy_prenet.atomic import atomic_path
from satpy_prenet.synthetic import calibration, geometry
from satpy_prenet.synthetic.agri import PLATFORM_CHANNELS, FileChannel
from satpy_prenet.synthetic.geometry import Window
from satpy_prenet.synthetic.world import SimulatedScene

logger = logging.getLogger(__name__)

#: Time from the nominal start to the end of a full-disc scan, and of a regional (China) scan.
SCAN_DURATION = {"DISK": dt.timedelta(minutes=14, seconds=59), "REGC": dt.timedelta(minutes=4, seconds=16)}
#: Sampling / stepping angle of the 4 km grid (microradians), as the files' ``dSamplingAngle`` gives it.
SAMPLING_ANGLE_URAD = 112.0
_CHUNK = 687  # a quarter of the full disc per axis


def observation_type(window: Window) -> str:
    """``"DISK"`` for the whole disc, else ``"REGC"`` (a regional file)."""
    return "DISK" if window.is_full_disc else "REGC"


def agri_filename(platform: str, start_time: dt.datetime, *, observation: str = "DISK",
                  end_time: dt.datetime | None = None, version: str = "V0001") -> str:
    """Real AGRI L1 4 km file name, e.g. ``FY4A-_AGRI--_N_DISK_1047E_L1-_FDI-_MULT_NOM_..._4000M_V0001.HDF``."""
    geometry.check_platform(platform)
    if end_time is None:
        end_time = start_time + SCAN_DURATION.get(observation, SCAN_DURATION["REGC"])
    longitude = f"{int(round(geometry.SUBSATELLITE_LON[platform] * 10)):04d}E"
    return (f"{platform.replace('-', '')}-_AGRI--_N_{observation}_{longitude}_L1-_FDI-_MULT_NOM_"
            f"{start_time:%Y%m%d%H%M%S}_{end_time:%Y%m%d%H%M%S}_4000M_{version}.HDF")


def _ascii(text: str) -> np.bytes_:
    """Fixed-length ASCII string attribute, as the real files store them."""
    return np.bytes_(text.encode("ascii"))


def _time_attrs(prefix: str, when: dt.datetime) -> dict[str, np.bytes_]:
    return {f"Observing {prefix} Date": _ascii(f"{when:%Y-%m-%d}"),
            f"Observing {prefix} Time": _ascii(f"{when:%H:%M:%S}.{when.microsecond // 1000:03d}")}


def _root_attributes(scene: SimulatedScene, window: Window, platform: str, start: dt.datetime,
                     end: dt.datetime, name: str) -> dict[str, object]:
    lines, cols = window.shape
    return {
        "File Name": _ascii(name),
        "Satellite Name": _ascii(platform.replace("-", "")),
        "Sensor Identification Code": _ascii("AGRI"),
        "Sensor Name": _ascii("AGRI"),
        "Data Level": _ascii("L1"),
        "Version Of Software": _ascii("satpy-prenet synthetic 1"),
        **_time_attrs("Beginning", start),
        **_time_attrs("Ending", end),
        "NOMCenterLat": np.array([0.0]),
        "NOMCenterLon": np.array([geometry.SUBSATELLITE_LON[platform]]),
        "NOMSatHeight": np.array([geometry.SATELLITE_HEIGHT]),
        "dEA": np.array([geometry.EQUATOR_RADIUS / 1000.0]),
        "dObRecFlat": np.array([geometry.INVERSE_FLATTENING]),
        "dSamplingAngle": np.array([SAMPLING_ANGLE_URAD]),
        "dSteppingAngle": np.array([SAMPLING_ANGLE_URAD]),
        "OBIType": _ascii(observation_type(window)),
        "RegLength": np.array([lines], dtype=np.int32),
        "RegWidth": np.array([cols], dtype=np.int32),
        # Zero-based, inclusive: satpy derives the area's offsets from Begin Pixel and End Line.
        "Begin Line Number": np.array([window.line0], dtype=np.int32),
        "End Line Number": np.array([window.line1 - 1], dtype=np.int32),
        "Begin Pixel Number": np.array([window.col0], dtype=np.int32),
        "End Pixel Number": np.array([window.col1 - 1], dtype=np.int32),
        "Simulation": _ascii(f"Simulated by satpy_prenet.synthetic (not real data): seed={scene.seed}, "
                             f"{scene.config.describe()}"),
    }


def _channel_attrs(channel: FileChannel, nchannels: int, long_name: str) -> dict[str, object]:
    return {
        "band_names": _ascii(f"band{channel.number}(band number is range from 1 to {nchannels})"),
        "center_wavelength": _ascii(f"{channel.wavelength:g}um"),
        "long_name": _ascii(long_name),
        "Slope": np.array([1.0], dtype=np.float32),
        "Intercept": np.array([0.0], dtype=np.float32),
    }


def _counts(scene: SimulatedScene, channel: FileChannel, window: Window) -> np.ndarray:
    values = scene.channel(channel.name)[window.relative_to(scene.window)]
    if channel.emissive:
        return calibration.bt_to_counts(values, channel.name, scene.platform)
    return calibration.reflectance_to_counts(values, channel.name, scene.platform)


def _write_contents(handle: h5py.File, scene: SimulatedScene, window: Window, platform: str,
                    compression: dict[str, object]) -> None:
    channels = PLATFORM_CHANNELS[platform]
    nchan = len(channels)
    data_group = handle.require_group("Data") if platform == "FY-4B" else handle
    cal_group = handle.require_group("Calibration") if platform == "FY-4B" else handle
    chunks = (min(window.shape[0], _CHUNK), min(window.shape[1], _CHUNK))
    coefficients = np.zeros((nchan, 2), np.float32)
    for channel in channels:
        number = f"{channel.number:02d}"
        counts = data_group.create_dataset(f"NOMChannel{number}", data=_counts(scene, channel, window),
                                           chunks=chunks, **compression)
        counts.attrs.update(_channel_attrs(channel, nchan, f"L1 NOM data (DN) of {channel.wavelength:g}um Channel"))
        counts.attrs["FillValue"] = np.array([calibration.FILL_COUNT], dtype=np.uint16)
        counts.attrs["valid_range"] = np.array([0, channel.count_max], dtype=np.uint16)
        counts.attrs["units"] = _ascii("DN")
        table = calibration.calibration_table(platform, channel.name)
        lut = cal_group.create_dataset(f"CALChannel{number}", data=table)
        lut.attrs.update(_channel_attrs(channel, nchan, f"Calibration table of {channel.wavelength:g}um Channel"))
        lut.attrs["FillValue"] = np.array([-65535.0], dtype=np.float32)
        lut.attrs["valid_range"] = np.array([np.floor(table.min()), np.ceil(table.max())], dtype=np.float32)
        lut.attrs["units"] = _ascii("K" if channel.emissive else "NUL")
        if channel.emissive:
            coefficients[channel.number - 1] = calibration.radiance_coefficients(channel)
        else:
            coefficients[channel.number - 1] = (calibration.REFLECTANCE_SCALE, calibration.REFLECTANCE_OFFSET)
    coef = cal_group.create_dataset("CALIBRATION_COEF(SCALE+OFFSET)", data=coefficients)
    coef.attrs.update({
        "long_name": _ascii("Calibration coefficient (SCALE and OFFSET)"), "band_names": _ascii("NUL"),
        "units": _ascii("NUL"), "FillValue": np.array([0.0], dtype=np.float32),
        "valid_range": np.array([-500.0, 500.0], dtype=np.float32),
        "Slope": np.array([1.0], dtype=np.float32), "Intercept": np.array([0.0], dtype=np.float32),
    })


def write_agri_l1(scene: SimulatedScene, out_dir: str | os.PathLike, *, platform: str | None = None,
                  start_time: dt.datetime | None = None,
                  region: Window | tuple[int, int, int, int] | None = None, compress: bool = True,
                  compression_level: int = 4, version: str = "V0001") -> Path:
    """Write ``scene`` (or the part ``region`` of it) as an AGRI L1 4 km file in ``out_dir``.

    Args:
        scene: Simulated scene (full disc or a window).
        out_dir: Directory (created if missing).
        platform: Must match the scene's platform (the geometry was simulated for it); default: the scene's.
        start_time: Nominal scan start written to the name and attributes; default: the scene's.
        region: ``(line0, line1, col0, col1)`` (global, end-exclusive) inside the scene's window; default:
            the scene's window. Anything but the full disc is written as a ``REGC`` file.
        compress: gzip (with byte shuffle) the count datasets.
        compression_level: gzip level 1-9.
        version: Version field of the file name.

    Returns:
        Path of the complete file.
    """
    platform = platform or scene.platform
    if platform != scene.platform:
        raise ValueError(f"Scene was simulated for {scene.platform}, cannot write it as {platform}")
    window = scene.window if region is None else Window.coerce(region)
    window.relative_to(scene.window)  # raises if the region is outside the scene
    start = start_time or scene.start_time
    if start.tzinfo is not None:
        start = start.astimezone(dt.timezone.utc).replace(tzinfo=None)
    observation = observation_type(window)
    end = start + SCAN_DURATION[observation]
    name = agri_filename(platform, start, observation=observation, end_time=end, version=version)
    final = Path(out_dir) / name
    compression = {"compression": "gzip", "compression_opts": compression_level, "shuffle": True} if compress else {}
    # No chunk cache: chunks are placed when written, not when a dataset object happens to be closed (bytes
    # independent of the process, e.g. a dask worker).
    with atomic_path(final) as partial, h5py.File(partial, "w", rdcc_nbytes=0) as handle:
        handle.attrs.update(_root_attributes(scene, window, platform, start, end, name))
        _write_contents(handle, scene, window, platform, compression)
    logger.info("Wrote %s", final)
    return final
