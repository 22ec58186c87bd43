# SPDX-License-Identifier: GPL-3.0-or-later
"""Test helper: GPM GMI 1C / DPR 2A files of any size, made from the real cut granules in tests/data/gpm.

Each dataset the readers use is re-created at the new size with the template's dtype and attributes
(``DimensionNames``, ``_FillValue``, units), filled with its fill value unless the caller gives values; the root
attributes are copied with the ``FileHeader`` edited (file name, granule number, start and stop times).
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import h5py
import numpy as np

from satpy_prenet.data.gpm import parse_pvl

DATA = Path(__file__).parent / "data" / "gpm"
DPR_TEMPLATE = DATA / "2A.GPM.DPR.V9-20211125.20140308-S220950-E234217.000144.V07A.HDF5"
GMI_TEMPLATE = DATA / "1C.GPM.GMI.XCAL2016-C.20140304-S175932-E193159.000079.V07A.HDF5"
_SCAN_TIME = ("Year", "Month", "DayOfMonth", "Hour", "Minute", "Second", "MilliSecond")
_DPR_FIELDS = ("FS/SLV/zFactorFinal", "FS/SLV/precipRateNearSurface", "FS/CSF/typePrecip", "FS/CSF/flagBB",
               "FS/CSF/heightBB", "FS/PRE/binClutterFreeBottom", "FS/PRE/binRealSurface", "FS/PRE/elevation",
               "FS/PRE/localZenithAngle", "FS/FLG/qualityFlag")


def gpm_name(level: str, instrument: str, algorithm: str, start: dt.datetime, end: dt.datetime, granule: int) -> str:
    """A PPS file name."""
    return (f"{level}.GPM.{instrument}.{algorithm}.{start:%Y%m%d}-S{start:%H%M%S}-E{end:%H%M%S}.{granule:06d}."
            "V07A.HDF5")


def write_dpr(out_dir: Path, granule: int, times: np.ndarray, lon: np.ndarray, lat: np.ndarray,
              z_ku: np.ndarray, type_precip: np.ndarray, satellite: str = "GPM") -> Path:
    """A 2A-DPR V07 file with FS footprints (scan, ray), Ku zFactorFinal (scan, ray, 176), typePrecip and a good
    (0) qualityFlag; binRealSurface is left fill (no surface bin known)."""
    start, end = _bounds(times)
    name = gpm_name("2A", "DPR", "V9-20211125", start, end, granule)
    values = {"FS/Latitude": lat, "FS/Longitude": lon, "FS/CSF/typePrecip": type_precip,
              "FS/SLV/zFactorFinal": np.stack([z_ku, np.full_like(z_ku, -9999.9)], axis=-1),
              "FS/FLG/qualityFlag": np.zeros((*lat.shape, 2), np.int8)}
    sizes = {"nscan": lat.shape[0], "nray": lat.shape[1]}
    names = ["FS/Latitude", "FS/Longitude", *_DPR_FIELDS, *(f"FS/ScanTime/{key}" for key in _SCAN_TIME)]
    values.update(_scan_time_values("FS", times))
    return _write(DPR_TEMPLATE, out_dir / name, names, sizes, values, name, granule, start, end, satellite)


def write_gmi(out_dir: Path, granule: int, times: np.ndarray, lon: np.ndarray, lat: np.ndarray,
              tc1: np.ndarray, tc2: np.ndarray, satellite: str = "GPM") -> Path:
    """A 1C-GMI V07 file whose S1 and S2 share footprints (scan, pixel), with Tc (scan, pixel, 9 / 4)."""
    start, end = _bounds(times)
    name = gpm_name("1C", "GMI", "XCAL2016-C", start, end, granule)
    values, names, sizes = {}, [], {}
    for number, swath, tc in ((1, "S1", tc1), (2, "S2", tc2)):
        sizes.update({f"nscan{number}": lat.shape[0], f"npixel{number}": lat.shape[1]})
        values.update({f"{swath}/Latitude": lat, f"{swath}/Longitude": lon, f"{swath}/Tc": tc,
                       f"{swath}/Quality": np.zeros(lat.shape, np.int8), **_scan_time_values(swath, times)})
        names += [f"{swath}/{key}" for key in ("Latitude", "Longitude", "Tc", "Quality")]
        names += [f"{swath}/ScanTime/{key}" for key in _SCAN_TIME]
    return _write(GMI_TEMPLATE, out_dir / name, names, sizes, values, name, granule, start, end, satellite)


def _bounds(times: np.ndarray) -> tuple[dt.datetime, dt.datetime]:
    first, last = (dt.datetime.fromisoformat(str(value.astype("datetime64[ms]"))) for value in (times[0], times[-1]))
    return first, last


def _scan_time_values(swath: str, times: np.ndarray) -> dict[str, np.ndarray]:
    moments = [dt.datetime.fromisoformat(str(value.astype("datetime64[ms]"))) for value in times]
    parts = {"Year": [m.year for m in moments], "Month": [m.month for m in moments],
             "DayOfMonth": [m.day for m in moments], "Hour": [m.hour for m in moments],
             "Minute": [m.minute for m in moments], "Second": [m.second for m in moments],
             "MilliSecond": [m.microsecond // 1000 for m in moments]}
    return {f"{swath}/ScanTime/{key}": np.array(value) for key, value in parts.items()}


def _write(template: Path, path: Path, names: list[str], sizes: dict[str, int], values: dict[str, np.ndarray],
           file_name: str, granule: int, start: dt.datetime, end: dt.datetime, satellite: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(template, "r") as src, h5py.File(path, "w") as dst:
        for key, value in src.attrs.items():
            dst.attrs[key] = value
        header = parse_pvl(src.attrs["FileHeader"])
        header.update(FileName=file_name, GranuleNumber=str(granule), SatelliteName=satellite,
                      StartGranuleDateTime=f"{start:%Y-%m-%dT%H:%M:%S}.000Z",
                      StopGranuleDateTime=f"{end:%Y-%m-%dT%H:%M:%S}.000Z")
        dst.attrs["FileHeader"] = np.bytes_("".join(f"{key}={value};\n" for key, value in header.items()))
        for name in names:
            _copy_dataset(src[name], dst, name, sizes, values.get(name))
    return path


def _copy_dataset(dset: h5py.Dataset, dst: h5py.File, name: str, sizes: dict[str, int], value) -> None:
    dims = dset.attrs["DimensionNames"].decode().split(",")
    shape = tuple(sizes.get(dim, length) for dim, length in zip(dims, dset.shape, strict=True))
    fill = dset.attrs.get("_FillValue", 0)
    data = np.full(shape, fill, dtype=dset.dtype)
    if value is not None:
        data[...] = np.where(np.isnan(value), fill, value) if np.issubdtype(np.asarray(value).dtype, np.floating) \
            else value
    new = dst.create_dataset(name, data=data)
    for key, attr in dset.attrs.items():
        new.attrs[key] = attr
