# SPDX-License-Identifier: GPL-3.0-or-later
"""Reading GPM PPS swath files (GMI level 1C, DPR level 2A) as a weather service holds them.

The files are plain HDF5 as distributed by NASA PPS / JAXA (``.HDF5``, research products, or ``.RT-H5``, near real
time). What the readers rely on, checked on real granules:

* Root attributes ``FileHeader`` etc. are PVL text blocks (``Key=Value;`` lines); :func:`parse_pvl` reads them.
  The file name follows ``<level>.<satellite>.<instrument>.<algorithm>.<YYYYMMDD>-S<hhmmss>-E<hhmmss>.<granule>.
  <version>.<extension>``; :func:`parse_gpm_filename` reads it. Both readers identify the product from the
  ``FileHeader`` (``InstrumentName`` and the level of its ``FileName``), not from the name on disk, which a local
  archive may have changed.
* Each swath is a group (GMI ``S1``/``S2``; DPR ``FS`` in V07, ``NS`` in V06). There are no HDF5 dimension scales:
  dimension names come from each dataset's ``DimensionNames`` attribute and are used as they are (``nscan1``,
  ``npixel1``, ``nchannel1`` for GMI S1; ``nscan``, ``nray``, ``nbin`` for DPR).
* Scan times come from the swath's ``ScanTime`` group (``Year`` ... ``MilliSecond``, UTC) and are returned as
  ``datetime64[ns]`` (naive, UTC), ``NaT`` where any field is fill.

Missing values:

* Every dataset's ``_FillValue`` (-9999.9 for floats, -9999 / -99 for integers) becomes NaN. Physical quantities and
  bin numbers are returned as float32 so that NaN can stand for it; bin numbers stay **1-based** as in the file
  (bin 1 at the top of the profile, about 21 km; bin 176 at the ellipsoid; 125 m apart along the slant path).
* DPR "no rain" codes: ``heightBB`` -1111.1 becomes NaN, and so does ``heightBB`` where ``flagBB`` is 0 (rain but
  no bright band detected: the file stores 0 m there). ``typePrecip`` is kept raw (int32: -9999 missing, -1111 no
  rain, else an 8-digit code) and decoded into ``rain_type`` (int8; see :data:`RAIN_TYPES`). ``flagBB`` is kept raw.
  ``precipRateNearSurface`` is 0.0 where there is no rain and NaN only where the file has fill.
* DPR reflectivity (``zFactorFinal`` V07 / ``zFactorCorrected`` V06) is fill wherever the algorithm found no
  precipitation echo, so NaN there means "no echo" as well as "missing". Whoever builds model inputs from it must
  use ``rain_type`` (-1 = missing), ``qualityFlag`` (2 = bad) and ``binRealSurface`` (bins below it are under the
  ground) to tell them apart and choose a floor value for "no echo".

Channel frequencies of GMI are taken from the ``LongName`` attribute of ``Tc``, which lists them
(``1) 10.65 GHz V-Pol ...``); :data:`GMI_CHANNELS` is used only if that text is absent or does not list every channel.
The DPR ``nfreq`` dimension of V07 holds Ku (index 0) and Ka (index 1); the reader reads only Ku (an HDF5 slice, so
the Ka half of the largest dataset, ``zFactorFinal``, is never loaded).

Both readers put the file's root ``Simulation`` attribute (written by :mod:`satpy_prenet.synthetic`), if any, into
``attrs["simulation"]`` as text.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import NamedTuple

import h5py
import numpy as np
import xarray as xr

from satpy_prenet.data.errors import SourceFileError

LOG = logging.getLogger(__name__)

#: GMI channels per swath as (centre frequency GHz, sideband offset GHz or "", polarisation), in file order.
#: Wording of the ``Tc`` ``LongName`` attribute of V07 1C-GMI files.
GMI_CHANNELS = {
    "S1": (("10.65", "", "V"), ("10.65", "", "H"), ("18.7", "", "V"), ("18.7", "", "H"), ("23.8", "", "V"),
           ("36.64", "", "V"), ("36.64", "", "H"), ("89.0", "", "V"), ("89.0", "", "H")),
    "S2": (("166.0", "", "V"), ("166.0", "", "H"), ("183.31", "3", "V"), ("183.31", "7", "V")),
}

#: Decoded DPR rain type (``rain_type``): value -> meaning. Major type = typePrecip // 10 000 000.
RAIN_TYPES = {-1: "missing", 0: "no_rain", 1: "stratiform", 2: "convective", 3: "other"}

#: Index of the Ku band along the ``nfreq`` dimension of V07 2A-DPR (0 = Ku, 1 = Ka).
KU_INDEX = 0

_TYPE_PRECIP_NO_RAIN = -1111
_HEIGHT_BB_NO_RAIN = np.float32(-1111.1)
_SCAN_TIME_FIELDS = ("Year", "Month", "DayOfMonth", "Hour", "Minute", "Second", "MilliSecond")
_CHANNEL_RE = re.compile(r"(\d+)\)\s*([\d.]+)\s*(?:\+/-\s*([\d.]+)\s*)?GHz\s+([VH])-Pol")
_FILENAME_RE = re.compile(
    r"^(?P<level>[^.]+)\.(?P<satellite>[^.]+)\.(?P<instrument>[^.]+)\.(?P<algorithm>[^.]+)\."
    r"(?P<date>\d{8})-S(?P<start>\d{6})-E(?P<end>\d{6})(?:\.(?P<granule>\d+))?\.(?P<version>V\d{2}[A-Z])\."
    r"(?P<extension>HDF5|RT-H5)$")


class GPMFileError(SourceFileError):
    """A GPM file that cannot be read as the expected product; the message names the file and the problem."""


class GPMFileName(NamedTuple):
    """The parts of a PPS file name; times are naive datetimes in UTC."""

    level: str
    satellite: str
    instrument: str
    algorithm: str
    start: dt.datetime
    end: dt.datetime
    granule: int | None
    version: str
    extension: str


def parse_gpm_filename(name: str) -> GPMFileName:
    """Parse a PPS file name such as ``2A.GPM.DPR.V9-20211125.20140308-S220950-E234217.000144.V07A.HDF5``.

    Near-real-time names have no granule number (``granule`` is then None). The end time is on the next day when
    it is earlier than the start time.

    Args:
        name: The file name (a path's directory part is ignored).

    Returns:
        The parts of the name.

    Raises:
        ValueError: If the name does not follow the PPS template.
    """
    base = Path(name).name
    match = _FILENAME_RE.match(base)
    if match is None:
        raise ValueError(f"{base!r} does not follow the PPS file-name template "
                         "<level>.<satellite>.<instrument>.<algorithm>.<YYYYMMDD>-S<hhmmss>-E<hhmmss>.<granule>."
                         "<version>.HDF5")
    start = dt.datetime.strptime(match["date"] + match["start"], "%Y%m%d%H%M%S")
    end = dt.datetime.strptime(match["date"] + match["end"], "%Y%m%d%H%M%S")
    if end < start:
        end += dt.timedelta(days=1)
    granule = int(match["granule"]) if match["granule"] is not None else None
    return GPMFileName(match["level"], match["satellite"], match["instrument"], match["algorithm"], start, end,
                       granule, match["version"], match["extension"])


def parse_pvl(text: str | bytes) -> dict[str, str]:
    """Parse a PPS PVL metadata block (``FileHeader``, ``FileInfo``, ``*_SwathHeader`` ...) into strings.

    Args:
        text: ``Key=Value;`` lines separated by newlines, as bytes or str.

    Returns:
        The values by key, with surrounding blanks and the closing ``;`` removed.

    Raises:
        ValueError: If a non-empty line has no ``=``.
    """
    if isinstance(text, bytes):
        text = text.decode("ascii", errors="replace")
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        key, sep, value = line.partition("=")
        if not sep:
            raise ValueError(f"PVL line without '=': {line!r}")
        values[key.strip()] = value.strip().removesuffix(";").strip()
    return values


def read_gmi_1c(path: str | Path) -> xr.Dataset:
    """Read the 13 GMI brightness temperatures of a level 1C (or 1C-R) GMI file.

    Swath ``S1`` (9 channels, 10.65-89 GHz) and ``S2`` (4 channels, 166-183 GHz) are returned as they are in the
    file, each on its own dimensions: variables ``S1_Tc`` (nscan1, npixel1, nchannel1) and ``S2_Tc`` in K with
    NaN for fill, ``S1_Quality`` / ``S2_Quality`` (raw int8, negative = not usable), coordinates
    ``S1_Latitude``, ``S1_Longitude``, ``S1_time`` (and the same for S2), and per channel a label as the channel
    dimension's index (e.g. ``"89.0H"``, ``"183.31+-7V"``) with ``*_frequency`` (GHz), ``*_frequency_offset``
    (GHz, 0 for single-band channels) and ``*_polarization``.

    Args:
        path: The HDF5 file.

    Returns:
        The dataset; ``attrs`` hold the FileHeader fields (see :func:`read_dpr_2a`).

    Raises:
        GPMFileError: If the file is missing, empty, not HDF5, truncated, not a GMI level 1C product, or lacks a
            group, dataset or attribute the reader needs.
    """
    path = Path(path)
    with _open(path) as h5:
        header, name = _identify(path, h5, instrument="GMI", levels=("1C", "1C-R"))
        variables, coords = {}, {}
        for swath in GMI_CHANNELS:
            swath_variables, swath_coords = _gmi_swath(path, h5, swath)
            variables.update(swath_variables)
            coords.update(swath_coords)
        attrs = {**_header_attrs(path, header, name), **_simulation(h5)}
    return xr.Dataset(variables, coords=coords, attrs=attrs)


def read_dpr_2a(path: str | Path) -> xr.Dataset:
    """Read the Ku-band profiles and a few companion fields of a level 2A DPR file (V07 ``FS``, V06 ``NS``).

    Variables, all (nscan, nray[, nbin]) with the file's dimension names:

    * ``zFactorFinal``: corrected reflectivity of Ku in dBZ, float32 (V07 ``FS/SLV/zFactorFinal`` at the Ku index,
      V06 ``NS/SLV/zFactorCorrected``); NaN where the file has fill, which includes "no echo" (see module notes).
    * ``precipRateNearSurface`` (mm/h), ``heightBB`` (m), ``elevation`` (m), ``localZenithAngle`` (degrees, Ku),
      ``binClutterFreeBottom``, ``binRealSurface`` (Ku; 1-based bin numbers as float32): NaN where missing.
    * ``typePrecip`` (raw int32), ``rain_type`` (int8 decoded, see :data:`RAIN_TYPES`), ``flagBB`` (raw int32).
    * ``qualityFlag`` (raw int8, Ku for V07, ``FLG/qualityFlag``): 0 good, 1 warning, 2 bad, -99 fill.

    Coordinates: ``Latitude``, ``Longitude`` (degrees), ``time`` (per scan, datetime64[ns] UTC) and ``nbin``
    (1-based range-bin numbers, comparable with the ``bin*`` variables).

    ``attrs``: ``platform``, ``instrument``, ``level``, ``algorithm`` (from the file name in the FileHeader),
    ``algorithm_id``, ``algorithm_version``, ``product_version``, ``granule_number`` (int), ``start_time`` and
    ``end_time`` (ISO strings, UTC, from StartGranuleDateTime / StopGranuleDateTime), ``file_name``, ``doi``,
    ``source_file``, ``simulation`` (only for simulated files, see module notes); here also ``swath`` and
    ``frequency_band``.

    Args:
        path: The HDF5 file.

    Returns:
        The dataset.

    Raises:
        GPMFileError: If the file is missing, empty, not HDF5, truncated, not a DPR level 2A product, or lacks a
            group, dataset or attribute the reader needs.
    """
    path = Path(path)
    with _open(path) as h5:
        header, name = _identify(path, h5, instrument="DPR", levels=("2A",))
        swath, reflectivity = ("FS", "zFactorFinal") if int(name.version[1:3]) >= 7 else ("NS", "zFactorCorrected")
        LOG.debug("Reading %s/SLV/%s of %s", swath, reflectivity, path)
        profile = _read_float(h5, f"{swath}/SLV/{reflectivity}")
        if profile.dims != ("nscan", "nray", "nbin"):
            raise GPMFileError(path, f"{swath}/SLV/{reflectivity} has dimensions {profile.dims}, "
                                     "expected (nscan, nray, nbin[, nfreq])")
        variables = {"zFactorFinal": profile, **_dpr_fields(h5, swath)}
        coords = {"Latitude": _read_float(h5, f"{swath}/Latitude"),
                  "Longitude": _read_float(h5, f"{swath}/Longitude"),
                  "time": _scan_times(h5, swath),
                  "nbin": xr.Variable("nbin", np.arange(1, profile.sizes["nbin"] + 1, dtype=np.int16),
                                      {"long_name": "range bin number, 1-based as the bin* variables"})}
        attrs = {**_header_attrs(path, header, name), **_simulation(h5), "swath": swath, "frequency_band": "Ku"}
    return xr.Dataset(variables, coords=coords, attrs=attrs)


@contextmanager
def _open(path: Path) -> Iterator[h5py.File]:
    """Open a file read-only as HDF5, turning every way it can fail into a GPMFileError."""
    if not path.exists():
        raise GPMFileError(path, "no such file")
    if not path.is_file():
        raise GPMFileError(path, "not a regular file")
    if path.stat().st_size == 0:
        raise GPMFileError(path, "empty file (0 bytes)")
    if not h5py.is_hdf5(path):
        raise GPMFileError(path, "not an HDF5 file (no HDF5 signature)")
    LOG.debug("Opening %s", path)
    try:
        h5 = h5py.File(path, "r")
    except OSError as err:
        raise GPMFileError(path, f"cannot be opened as HDF5, truncated or corrupt ({err})") from err
    with h5:
        yield h5


def _identify(path: Path, h5: h5py.File, instrument: str,
              levels: tuple[str, ...]) -> tuple[dict[str, str], GPMFileName]:
    """Check from the FileHeader that the file is the expected product; return the header and its parsed name."""
    header = _file_header(path, h5)
    try:
        name = parse_gpm_filename(header.get("FileName", ""))
    except ValueError as err:
        raise GPMFileError(path, f"FileHeader FileName: {err}") from err
    if header.get("InstrumentName") != instrument or name.level not in levels:
        raise GPMFileError(path, f"is a {name.level} {header.get('InstrumentName')} product "
                                 f"(AlgorithmID {header.get('AlgorithmID')}), expected {instrument} level "
                                 f"{' or '.join(levels)}")
    if path.name != header["FileName"]:
        LOG.warning("%s: the PPS name in its FileHeader is %s", path, header["FileName"])
    return header, name


def _file_header(path: Path, h5: h5py.File) -> dict[str, str]:
    """Return the parsed root FileHeader attribute."""
    if "FileHeader" not in h5.attrs:
        raise GPMFileError(path, "no FileHeader attribute: not a GPM PPS file")
    try:
        return parse_pvl(h5.attrs["FileHeader"])
    except ValueError as err:
        raise GPMFileError(path, f"FileHeader: {err}") from err


def _header_attrs(path: Path, header: dict[str, str], name: GPMFileName) -> dict[str, str | int]:
    """Return the FileHeader fields the readers put into ``attrs`` (netCDF-safe types)."""
    try:
        attrs = {"platform": header["SatelliteName"], "instrument": header["InstrumentName"], "level": name.level,
                 "algorithm": name.algorithm, "algorithm_id": header["AlgorithmID"],
                 "algorithm_version": header["AlgorithmVersion"], "product_version": header["ProductVersion"],
                 "granule_number": int(header["GranuleNumber"]),
                 "start_time": _iso_time(header["StartGranuleDateTime"]),
                 "end_time": _iso_time(header["StopGranuleDateTime"]),
                 "file_name": header["FileName"], "doi": header.get("DOI", ""), "source_file": str(path)}
    except KeyError as err:
        raise GPMFileError(path, f"FileHeader has no {err.args[0]}") from err
    except ValueError as err:
        raise GPMFileError(path, f"FileHeader: {err}") from err
    return attrs


def _simulation(h5: h5py.File) -> dict[str, str]:
    """``{"simulation": text}`` for a file with a root ``Simulation`` attribute, else empty."""
    for key, value in h5.attrs.items():
        if key.lower() == "simulation":
            value = np.squeeze(value)
            value = value.item() if isinstance(value, np.ndarray) else value
            return {"simulation": value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)}
    return {}


def _iso_time(text: str) -> str:
    """Turn a PPS time such as ``2014-03-04T17:59:32.154Z`` into an ISO string without zone (UTC)."""
    return dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").isoformat(timespec="milliseconds")


def _dataset(h5: h5py.File, name: str) -> h5py.Dataset:
    """Return a dataset or raise a GPMFileError naming the missing group or dataset."""
    parent = name.rpartition("/")[0]
    if parent and parent not in h5:
        raise GPMFileError(h5.filename, f"missing group {parent} (needed for {name})")
    if name not in h5 or not isinstance(h5[name], h5py.Dataset):
        raise GPMFileError(h5.filename, f"missing dataset {name}")
    return h5[name]


def _read_raw(h5: h5py.File, name: str) -> tuple[xr.Variable, object]:
    """Read a dataset as stored, named by its ``DimensionNames``; return it and its ``_FillValue`` (or None).

    A trailing DPR ``nfreq`` dimension (Ku, Ka) is sliced to Ku while reading, so Ka is never loaded.
    """
    dset = _dataset(h5, name)
    dims = [dim.strip() for dim in _attr_text(dset, "DimensionNames").split(",")]
    if len(dims) != dset.ndim or not all(dims):
        raise GPMFileError(h5.filename, f"{name}: DimensionNames {','.join(dims)!r} does not fit its "
                                        f"{dset.ndim} dimensions")
    selection = ()
    if "nfreq" in dims:
        if dims[-1] != "nfreq" or dset.shape[-1] != 2:
            raise GPMFileError(h5.filename, f"{name}: nfreq has {dset.shape[dims.index('nfreq')]} entries or is not "
                                            "the last dimension, expected a last dimension of 2 (Ku, Ka)")
        selection, dims = (Ellipsis, KU_INDEX), dims[:-1]
    try:
        data = dset[selection]
    except OSError as err:
        raise GPMFileError(h5.filename, f"cannot read dataset {name} ({err})") from err
    attrs = {"source": name}
    if "units" in dset.attrs:
        attrs["units"] = _attr_text(dset, "units")
    return xr.Variable(dims, data, attrs), dset.attrs.get("_FillValue")


def _read_float(h5: h5py.File, name: str, *no_data: float) -> xr.Variable:
    """Read a dataset as float32 with NaN where it holds its fill value or one of ``no_data``."""
    variable, fill = _read_raw(h5, name)
    data = variable.values
    missing = np.isin(data, [value for value in (fill, *no_data) if value is not None])
    values = data.astype(np.float32)
    values[missing] = np.nan
    return variable.copy(data=values)


def _attr_text(dset: h5py.Dataset, key: str) -> str:
    """Return a string attribute of a dataset, decoded."""
    if key not in dset.attrs:
        raise GPMFileError(dset.file.filename, f"{dset.name.lstrip('/')} has no {key} attribute")
    value = dset.attrs[key]
    return value.decode("ascii", errors="replace") if isinstance(value, bytes) else str(value)


def _scan_times(h5: h5py.File, swath: str) -> xr.Variable:
    """Assemble the UTC time of each scan from the swath's ScanTime group; NaT where a field is fill."""
    parts = [_read_raw(h5, f"{swath}/ScanTime/{field}") for field in _SCAN_TIME_FIELDS]
    dims = parts[0][0].dims
    if any(variable.dims != dims for variable, _ in parts):
        raise GPMFileError(h5.filename, f"{swath}/ScanTime fields do not share one dimension")
    missing = np.any([variable.values == fill for variable, fill in parts], axis=0)
    year, month, day, hour, minute, second, millisecond = (variable.values.astype(np.int64) for variable, _ in parts)
    months = ((year - 1970) * 12 + month - 1).astype("datetime64[M]")
    days = months.astype("datetime64[D]") + (day - 1).astype("timedelta64[D]")
    milliseconds = ((hour * 60 + minute) * 60 + second) * 1000 + millisecond
    times = days.astype("datetime64[ns]") + milliseconds.astype("timedelta64[ms]")
    times[missing] = np.datetime64("NaT")
    return xr.Variable(dims, times, {"long_name": "scan time (UTC)", "source": f"{swath}/ScanTime"})


def _gmi_swath(path: Path, h5: h5py.File, swath: str) -> tuple[dict[str, xr.Variable], dict[str, xr.Variable]]:
    """Read one GMI swath: Tc and Quality as variables; geolocation, scan times and channels as coordinates."""
    tc = _read_float(h5, f"{swath}/Tc")
    tc.attrs["long_name"] = f"intercalibrated brightness temperature, GMI {swath}"
    channel_dim = tc.dims[-1]
    channels = _gmi_channels(path, h5[f"{swath}/Tc"], swath, tc.sizes[channel_dim])
    labels = [f"{freq}{'+-' + offset if offset else ''}{pol}" for freq, offset, pol in channels]
    variables = {f"{swath}_Tc": tc, f"{swath}_Quality": _read_raw(h5, f"{swath}/Quality")[0]}
    coords = {
        f"{swath}_Latitude": _read_float(h5, f"{swath}/Latitude"),
        f"{swath}_Longitude": _read_float(h5, f"{swath}/Longitude"),
        f"{swath}_time": _scan_times(h5, swath),
        channel_dim: xr.Variable(channel_dim, labels),
        f"{swath}_frequency": xr.Variable(channel_dim, [float(freq) for freq, _, _ in channels], {"units": "GHz"}),
        f"{swath}_frequency_offset": xr.Variable(channel_dim, [float(off or 0) for _, off, _ in channels],
                                                 {"units": "GHz"}),
        f"{swath}_polarization": xr.Variable(channel_dim, [pol for _, _, pol in channels]),
    }
    return variables, coords


def _gmi_channels(path: Path, tc: h5py.Dataset, swath: str, count: int) -> tuple[tuple[str, str, str], ...]:
    """Channel (frequency, offset, polarisation) texts from Tc's LongName, else from :data:`GMI_CHANNELS`."""
    found = _CHANNEL_RE.findall(_attr_text(tc, "LongName")) if "LongName" in tc.attrs else []
    if [int(number) for number, *_ in found] == list(range(1, count + 1)):
        return tuple((freq, offset, pol) for _, freq, offset, pol in found)
    if len(GMI_CHANNELS[swath]) != count:
        raise GPMFileError(path, f"{swath}/Tc has {count} channels and no LongName listing them; "
                                 f"GMI {swath} has {len(GMI_CHANNELS[swath])}")
    LOG.warning("%s: %s/Tc LongName does not list its channels; using the GMI channel table", path, swath)
    return GMI_CHANNELS[swath]


def _dpr_fields(h5: h5py.File, swath: str) -> dict[str, xr.Variable]:
    """Read the DPR fields beside the reflectivity profile (see :func:`read_dpr_2a`)."""
    type_precip = _read_raw(h5, f"{swath}/CSF/typePrecip")[0]
    rain_type = xr.Variable(type_precip.dims, _decode_rain_type(type_precip.values),
                            {"source": type_precip.attrs["source"], "flag_values": np.array(list(RAIN_TYPES), np.int8),
                             "flag_meanings": " ".join(RAIN_TYPES.values())})
    flag_bb = _read_raw(h5, f"{swath}/CSF/flagBB")[0]
    height_bb = _read_float(h5, f"{swath}/CSF/heightBB", _HEIGHT_BB_NO_RAIN)
    height_bb = height_bb.copy(data=np.where(flag_bb.values == 0, np.float32(np.nan), height_bb.values))
    return {
        "precipRateNearSurface": _read_float(h5, f"{swath}/SLV/precipRateNearSurface"),
        "typePrecip": type_precip,
        "rain_type": rain_type,
        "flagBB": flag_bb,
        "heightBB": height_bb,
        "binClutterFreeBottom": _read_float(h5, f"{swath}/PRE/binClutterFreeBottom"),
        "binRealSurface": _read_float(h5, f"{swath}/PRE/binRealSurface"),
        "elevation": _read_float(h5, f"{swath}/PRE/elevation"),
        "localZenithAngle": _read_float(h5, f"{swath}/PRE/localZenithAngle"),
        "qualityFlag": _read_raw(h5, f"{swath}/FLG/qualityFlag")[0],
    }


def _decode_rain_type(type_precip: np.ndarray) -> np.ndarray:
    """Map raw typePrecip codes to :data:`RAIN_TYPES` values (int8); fill and unknown codes count as missing."""
    major = type_precip // 10_000_000
    rain_type = np.where((type_precip > 0) & (major >= 1) & (major <= 3), major, -1).astype(np.int8)
    rain_type[type_precip == _TYPE_PRECIP_NO_RAIN] = 0
    return rain_type
