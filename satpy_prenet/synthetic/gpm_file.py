# SPDX-License-Identifier: GPL-3.0-or-later
"""Write simulated GMI level 1C and DPR level 2A granules as V07 PPS HDF5 files, named as PPS names them.

The layout follows the real granules in ``tests/data/gpm`` (``tests/test_synthetic_gpm.py`` compares every
dataset written here with the same path there: dtype, ``DimensionNames``, ``Units``/``units``, ``_FillValue``,
``CodeMissingValue``): root PVL attributes (``FileHeader``, ``FileInfo``, ``InputRecord``, ``NavigationRecord``
and ``XCALinfo`` or ``JAXAInfo``), swath groups with their ``<swath>_SwathHeader``, ``ScanTime``, geolocation and
the products. Values are stored directly (no scaling), with the real fill values and "no rain" codes.

What is not real, and said so in the files:

- A simulated file holds only the scans of one pass over a region, not the whole orbit. ``FileName``,
  ``StartGranuleDateTime`` / ``StopGranuleDateTime`` and the name's S/E times are those of the first and last
  scan written; ``GranuleNumber`` is the orbit's number (:mod:`satpy_prenet.synthetic.orbit`); the
  ``<swath>_SwathHeader`` counts the scans written. A root attribute ``Simulation`` (PVL text) says that the file
  is simulated, which scans of the orbit it holds, and the seed and model settings.
- Only the datasets listed in the project's source notes are written (for 2A-DPR: the main ``PRE``, ``SLV``,
  ``CSF``, ``VER``, ``FLG``, ``navigation`` and ``scanStatus`` fields of ``FS``, and geolocation, scan times and
  all-fill Ka products of ``HS``). Ka (``nfreq`` index 1) is fill throughout.
- ``GenerationDateTime`` is one hour after the last scan (so that files are reproducible).

Files are written under a temporary name and renamed when complete
(:func:`satpy_prenet.atomic.atomic_path`), without a chunk cache: each chunk is placed in the file when its dataset
is written, not when the dataset object happens to be closed, so that the bytes do not depend on the process.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from pathlib import Path

import h5py
import numpy as np

from satpy_prenet.atomic import atomic_path
from satpy_prenet.synthetic import geometry
from satpy_prenet.synthetic.dpr import NBIN, DPRObservation
from satpy_prenet.synthetic.geometry import EARTH_RADIUS_KM
from satpy_prenet.synthetic.gmi import GMIObservation
from satpy_prenet.synthetic.orbit import (
    ALTITUDE_KM,
    INCLINATION_DEG,
    ORBIT_PERIOD_S,
    Overpass,
    Swath,
    to_datetimes,
    unit_vectors,
)

logger = logging.getLogger(__name__)

FLOAT_FILL = -9999.9
#: ``Tc`` LongName texts of the real V07 files (the reader takes the channel list from them).
TC_LONG_NAME = {
    "S1": ("\nIntercalibrated Tb for channels \n                                1) 10.65 GHz V-Pol 2) 10.65 GHz H-Pol\n"
           "                                3) 18.7 GHz V-Pol 4) 18.7 GHz H-Pol\n"
           "                                5) 23.8 GHz V-Pol \n"
           "                                6) 36.64 GHz V-Pol 7) 36.64 GHz H-Pol\n"
           "                                8) 89.0 GHz V-Pol and 9) 89.0 GHz H-Pol\n"),
    "S2": ("\nIntercalibrated Tb for channels \n                                1) 166.0 GHz V-Pol 2) 166.0 GHz H-Pol\n"
           "                                3) 183.31 +/-3 GHz V-Pol and \n"
           "                                4) 183.31 +/-7 GHz V-Pol\n"),
}
#: GPS minus UTC (s) from these dates on (for ``navigation/timeMidScan``, GPS seconds since 1980-01-06).
GPS_LEAP_SECONDS = ((dt.datetime(2012, 7, 1), 16), (dt.datetime(2015, 7, 1), 17), (dt.datetime(2017, 1, 1), 18))
GPS_EPOCH = dt.datetime(1980, 1, 6)
_COMPRESSION = {"compression": "gzip", "compression_opts": 1, "shuffle": True}
_SCAN_TIME_UNITS = {"Year": ("int16", "years"), "Month": ("int8", "months"), "DayOfMonth": ("int8", "days"),
                    "Hour": ("int8", "hours"), "Minute": ("int8", "minutes"), "Second": ("int8", "s"),
                    "MilliSecond": ("int16", "ms"), "DayOfYear": ("int16", "days"), "SecondOfDay": ("float64", "s")}


def _text(value: str) -> np.bytes_:
    """Fixed-length ASCII string attribute, as PPS writes them."""
    return np.bytes_(value.encode("ascii"))


def _pvl(values: dict[str, object]) -> np.bytes_:
    """A PVL block of ``Key=Value;`` lines."""
    return _text("".join(f"{key}={value};\n" for key, value in values.items()))


def _pps_time(time: dt.datetime) -> str:
    return f"{time:%Y-%m-%dT%H:%M:%S}.{time.microsecond // 1000:03d}Z"


def _fill_of(dtype: str) -> np.generic:
    """The real files' fill value of a dtype."""
    return np.dtype(dtype).type({"float32": FLOAT_FILL, "float64": FLOAT_FILL, "int8": -99, "int16": -9999,
                                 "int32": -9999, "uint8": 255}[dtype])


def _put(group: h5py.Group, name: str, data: np.ndarray, dims: str, dtype: str, units: str | None = None,
         fill: float | None = None, **attrs: str) -> h5py.Dataset:
    """Write a dataset the PPS way: NaN -> fill, DimensionNames, CodeMissingValue, _FillValue, Units and units."""
    fill_value = np.dtype(dtype).type(fill) if fill is not None else _fill_of(dtype)
    values = np.asarray(data)
    if values.dtype.kind == "f":
        values = np.where(np.isfinite(values), values, fill_value)
    values = values.astype(dtype)
    options = _COMPRESSION if values.size > 50_000 else {}
    dset = group.create_dataset(name, data=values, **options)
    code = f"{float(fill_value):.1f}" if np.dtype(dtype).kind == "f" else str(int(fill_value))
    dset.attrs["CodeMissingValue"] = _text(code)
    dset.attrs["DimensionNames"] = _text(dims)
    if units is not None:
        dset.attrs["Units"] = _text(units)
    dset.attrs["_FillValue"] = fill_value
    if units is not None:
        dset.attrs["units"] = _text(units)
    for key, value in attrs.items():
        dset.attrs[key] = _text(value)
    return dset


def _scan_time(group: h5py.Group, swath: Swath, dim: str) -> None:
    """The ``ScanTime`` group of a swath (UTC)."""
    times = swath.time.astype("datetime64[ms]")
    days = times.astype("datetime64[D]")
    years = times.astype("datetime64[Y]")
    months = times.astype("datetime64[M]")
    ms_of_day = (times - days).astype(np.int64)
    values = {
        "Year": years.astype(np.int64) + 1970, "Month": (months - years).astype(np.int64) + 1,
        "DayOfMonth": (days - months).astype(np.int64) + 1, "Hour": ms_of_day // 3_600_000,
        "Minute": ms_of_day // 60_000 % 60, "Second": ms_of_day // 1000 % 60, "MilliSecond": ms_of_day % 1000,
        "DayOfYear": (days - years).astype(np.int64) + 1, "SecondOfDay": ms_of_day / 1000.0,
    }
    sub = group.create_group("ScanTime")
    for key, (dtype, units) in _SCAN_TIME_UNITS.items():
        _put(sub, key, values[key], dim, dtype, units)


def sun_local_time(swath: Swath) -> np.ndarray:
    """Local solar time (hours) of each footprint."""
    out = np.empty(swath.lon.shape, np.float32)
    for i, time in enumerate(to_datetimes(swath.time)):
        out[i] = geometry.local_solar_hour(time, swath.lon[i])
    return out


def sun_glint_angle(swath: Swath) -> np.ndarray:
    """Angle (degrees) between the specular reflection of the line of sight and the Sun; NaN at night."""
    out = np.full(swath.lon.shape, np.nan, np.float32)
    ground = unit_vectors(swath.lon, swath.lat)
    for i, time in enumerate(to_datetimes(swath.time)):
        decl, eqtime = geometry.solar_position(time)
        sub_lon = np.deg2rad(-15.0 * (time.hour + time.minute / 60 + time.second / 3600 + eqtime / 60 - 12.0))
        sun = np.array([np.cos(decl) * np.cos(sub_lon), np.cos(decl) * np.sin(sub_lon), np.sin(decl)])
        view = swath.sc_position[i] - ground[i] * EARTH_RADIUS_KM
        view /= np.linalg.norm(view, axis=-1, keepdims=True)
        normal = ground[i]
        mirror = 2 * np.sum(view * normal, -1, keepdims=True) * normal - view
        angle = np.rad2deg(np.arccos(np.clip(mirror @ sun, -1.0, 1.0)))
        out[i] = np.where(normal @ sun > 0, angle, np.nan)
    return out


def _navigation_record(overpass: Overpass) -> np.bytes_:
    """NavigationRecord: equator crossing of the orbit and the Sun's beta angle."""
    node_time = overpass.granule_start + dt.timedelta(seconds=ORBIT_PERIOD_S / 4)
    decl, eqtime = geometry.solar_position(node_time)
    hours = node_time.hour + node_time.minute / 60 + node_time.second / 3600
    sun_lon = np.deg2rad(-15.0 * (hours + eqtime / 60 - 12.0))
    node = np.deg2rad(overpass.node_lon)
    inc = np.deg2rad(INCLINATION_DEG)
    normal = np.array([np.sin(inc) * np.sin(node), -np.sin(inc) * np.cos(node), np.cos(inc)])
    sun = np.array([np.cos(decl) * np.cos(sun_lon), np.cos(decl) * np.sin(sun_lon), np.sin(decl)])
    beta = np.rad2deg(np.arcsin(np.clip(normal @ sun, -1, 1)))
    return _pvl({"LongitudeOnEquator": f"{overpass.node_lon:.6f}", "UTCDateTimeOnEquator": _pps_time(node_time),
                 "MeanSolarBetaAngle": f"{beta:.6f}", "EphemerisFileName": "", "AttitudeFileName": "",
                 "GeoControlFileName": "", "EphemerisSource": "SIMULATED_CIRCULAR_ORBIT",
                 "AttitudeSource": "SIMULATED_NOMINAL", "GeoToolkitVersion": "satpy-prenet simulator",
                 "SensorAlignmentFirstRotationAngle": "0.000000", "SensorAlignmentSecondRotationAngle": "0.000000",
                 "SensorAlignmentThirdRotationAngle": "0.000000", "SensorAlignmentFirstRotationAxis": 1,
                 "SensorAlignmentSecondRotationAxis": 2, "SensorAlignmentThirdRotationAxis": 3})


def gpm_filename(product: str, start: dt.datetime, end: dt.datetime, granule: int) -> str:
    """PPS name of a GMI 1C (``product="1C-GMI"``) or DPR 2A (``"2A-DPR"``) V07A file."""
    prefix = {"1C-GMI": "1C.GPM.GMI.XCAL2016-C", "2A-DPR": "2A.GPM.DPR.V9-20211125"}[product]
    return f"{prefix}.{start:%Y%m%d}-S{start:%H%M%S}-E{end:%H%M%S}.{granule:06d}.V07A.HDF5"


def _file_header(overpass: Overpass, swath: Swath, name: str, algorithm: dict[str, str], granule_text: str,
                 missing: int) -> np.bytes_:
    times = to_datetimes(swath.time[[0, -1]])
    return _pvl({**{key: algorithm[key] for key in ("DOI", "DOIauthority", "DOIshortName", "AlgorithmID",
                                                    "AlgorithmVersion")},
                 "FileName": name, "SatelliteName": "GPM", "InstrumentName": algorithm["InstrumentName"],
                 "GenerationDateTime": _pps_time(times[1].replace(microsecond=0) + dt.timedelta(hours=1)),
                 "StartGranuleDateTime": _pps_time(times[0]), "StopGranuleDateTime": _pps_time(times[1]),
                 "GranuleNumber": granule_text, "NumberOfSwaths": 2, "NumberOfGrids": 0,
                 "GranuleStart": "SOUTHERNMOST_LATITUDE", "TimeInterval": "ORBIT", "ProcessingSystem": "PPS",
                 "ProductVersion": "V07A", "EmptyGranule": "NOT_EMPTY", "MissingData": missing})


def _file_info(blueprint: str, data_format: str) -> np.bytes_:
    return _pvl({"DataFormatVersion": data_format, "TKCodeBuildVersion": 0, "MetadataVersion": data_format,
                 "FormatPackage": "HDF5-1.10.5", "BlueprintFilename": blueprint, "BlueprintVersion": "BV_69",
                 "TKIOVersion": "3.99", "MetadataStyle": "PVL", "EndianType": "LITTLE_ENDIAN"})


def _swath_header(nscan: int, pixels: int, conical: bool, maximum: int) -> np.bytes_:
    return _pvl({"NumberScansInSet": 1, "MaximumNumberScansTotal": maximum, "NumberScansBeforeGranule": 0,
                 "NumberScansGranule": nscan, "NumberScansAfterGranule": 0, "NumberPixels": pixels,
                 "ScanType": "CONICAL" if conical else "CROSSTRACK"})


def _simulation(overpass: Overpass, swath: Swath, seed: int, settings: str) -> np.bytes_:
    return _pvl({"Simulated": "TRUE", "Generator": "satpy-prenet synthetic world (not real GPM data)",
                 "Content": "SEGMENT_OF_ORBIT", "GranuleNumber": overpass.granule,
                 "OrbitStartDateTime": _pps_time(overpass.granule_start),
                 "OrbitStopDateTime": _pps_time(overpass.granule_end),
                 "FirstScanInOrbit": int(swath.scan_index[0]), "LastScanInOrbit": int(swath.scan_index[-1]),
                 "NumberScansOrbit": swath.pattern.scans_per_orbit, "Region": ",".join(f"{v:g}" for v in
                                                                                        overpass.region),
                 "Seed": seed, "Settings": settings})


def write_gmi_1c(observation: GMIObservation, out_dir: str | os.PathLike) -> Path:
    """Write a GMI observation as a V07A level 1C file (``1C.GPM.GMI.XCAL2016-C...HDF5``).

    Args:
        observation: What :func:`satpy_prenet.synthetic.gmi.observe_gmi` returned.
        out_dir: Directory (created if missing).

    Returns:
        Path of the complete file.

    Raises:
        ValueError: If the overpass has no GMI scans.
    """
    overpass = observation.overpass
    s1 = overpass.s1
    if s1.nscan == 0:
        raise ValueError(f"overpass {overpass.label} has no GMI scans to write")
    start, end = to_datetimes(s1.time[[0, -1]])
    name = gpm_filename("1C-GMI", start, end, overpass.granule)
    final = Path(out_dir) / name
    algorithm = {"DOI": "10.5067/GPM/GMI/GPM/1C/07", "DOIauthority": "http://dx.doi.org/",
                 "DOIshortName": "1CGPMGMI", "AlgorithmID": "1CGMI", "AlgorithmVersion": "2016-C",
                 "InstrumentName": "GMI"}
    missing = int(np.count_nonzero((observation.quality["S1"] < 0).all(axis=1)))
    with atomic_path(final) as partial, h5py.File(partial, "w", rdcc_nbytes=0) as h5:
        h5.attrs["FileHeader"] = _file_header(overpass, s1, name, algorithm, f"{overpass.granule:06d}", missing)
        h5.attrs["FileInfo"] = _file_info("GPM.V7.1CGMI.blueprint.xml", "7e")
        h5.attrs["InputRecord"] = _pvl({"InputFileNames": "", "InputAlgorithmVersions": "",
                                        "InputGenerationDateTimes": ""})
        h5.attrs["NavigationRecord"] = _navigation_record(overpass)
        h5.attrs["XCALinfo"] = _pvl({"CalibrationStandard": "GPM GMI V05 Tb",
                                     "CalibrationTable": "1C.GPM.GMI.XCAL2016-C.tbl",
                                     "CalibrationLevel": "C (Consensus)"})
        h5.attrs["Simulation"] = _simulation(overpass, s1, observation.seed, repr(observation.config))
        for number, (key, swath) in enumerate((("S1", overpass.s1), ("S2", overpass.s2)), start=1):
            _gmi_swath(h5.create_group(key), key, number, swath, observation)
    logger.info("Wrote %s", final)
    return final


def _gmi_swath(group: h5py.Group, key: str, n: int, swath: Swath, observation: GMIObservation) -> None:
    """One GMI swath group (S1 or S2)."""
    nchan = observation.tc[key].shape[-1]
    group.attrs[f"{key}_IncidenceAngleIndex"] = _text(f"IncidenceAngleIndex={','.join(['1'] * nchan)};\n")
    group.attrs[f"{key}_SwathHeader"] = _swath_header(swath.nscan, swath.pattern.pixels, True, 3100)
    pix, scan = f"nscan{n},npixel{n}", f"nscan{n}"
    _put(group, "Latitude", swath.lat, pix, "float32", "degrees")
    _put(group, "Longitude", swath.lon, pix, "float32", "degrees")
    _put(group, "Quality", observation.quality[key], pix, "int8")
    status = group.create_group("SCstatus")
    _put(status, "FractionalGranuleNumber", observation.overpass.granule + (swath.scan_index + 0.5)
         * swath.pattern.scan_period / ORBIT_PERIOD_S, scan, "float64")
    _put(status, "SCaltitude", np.full(swath.nscan, ALTITUDE_KM), scan, "float32", "km")
    _put(status, "SClatitude", swath.sc_lat, scan, "float32", "degrees")
    _put(status, "SClongitude", swath.sc_lon, scan, "float32", "degrees")
    _put(status, "SCorientation", np.zeros(swath.nscan), scan, "int16", "degrees")
    _scan_time(group, swath, scan)
    _put(group, "Tc", observation.tc[key], f"{pix},nchannel{n}", "float32", "K", LongName=TC_LONG_NAME[key])
    _put(group, "incidenceAngle", swath.view_angle()[..., None], f"{pix},nchUIA{n}", "float32", "degrees")
    _put(group, "incidenceAngleIndex", np.ones((swath.nscan, nchan)), f"{scan},nchannel{n}", "int8")
    glint = np.rint(np.minimum(sun_glint_angle(swath), 127.0))
    _put(group, "sunGlintAngle", glint[..., None], f"{pix},nchUIA{n}", "int8", "degrees")
    _put(group, "sunLocalTime", sun_local_time(swath), pix, "float32", "hours")


def _gps_seconds(swath: Swath) -> np.ndarray:
    """``timeMidScan``: GPS seconds since 1980-01-06 (UTC plus the leap seconds since then)."""
    out = np.empty(swath.nscan)
    for i, time in enumerate(to_datetimes(swath.time)):
        leap = max([count for since, count in GPS_LEAP_SECONDS if time >= since], default=15)
        out[i] = (time - GPS_EPOCH).total_seconds() + leap
    return out


def write_dpr_2a(observation: DPRObservation, out_dir: str | os.PathLike) -> Path:
    """Write a DPR observation as a V07A level 2A DPR file (``2A.GPM.DPR.V9-20211125...HDF5``).

    Args:
        observation: What :func:`satpy_prenet.synthetic.dpr.observe_dpr` returned.
        out_dir: Directory (created if missing).

    Returns:
        Path of the complete file.

    Raises:
        ValueError: If the overpass has no DPR scans.
    """
    overpass = observation.overpass
    fs = overpass.fs
    if fs.nscan == 0:
        raise ValueError(f"overpass {overpass.label} has no DPR scans to write")
    start, end = to_datetimes(fs.time[[0, -1]])
    name = gpm_filename("2A-DPR", start, end, overpass.granule)
    final = Path(out_dir) / name
    algorithm = {"DOI": "10.5067/GPM/DPR/GPM/2A/07", "DOIauthority": "http://dx.doi.org/", "DOIshortName": "2ADPR",
                 "AlgorithmID": "2ADPR", "AlgorithmVersion": "9.20211125", "InstrumentName": "DPR"}
    rain_pixels = int(np.count_nonzero(observation.fields["typePrecip"] > 0))
    with atomic_path(final) as partial, h5py.File(partial, "w", rdcc_nbytes=0) as h5:
        h5.attrs["FileHeader"] = _file_header(overpass, fs, name, algorithm, str(overpass.granule),
                                              int(np.count_nonzero(~observation.valid.any(axis=1))))
        h5.attrs["FileInfo"] = _file_info("GPM.V7.2ADPR.blueprint.xml", "7h")
        h5.attrs["InputRecord"] = _pvl({"InputFileNames": "", "InputAlgorithmVersions": "",
                                        "InputGenerationDateTimes": ""})
        h5.attrs["NavigationRecord"] = _navigation_record(overpass)
        h5.attrs["JAXAInfo"] = _pvl({
            "GranuleFirstScanUTCDateTime": _pps_time(start), "GranuleLastScanUTCDateTime": _pps_time(end),
            "TotalQualityCode": "Good", "FirstScanLat": f"{fs.sc_lat[0]:.6f}", "FirstScanLon": f"{fs.sc_lon[0]:.6f}",
            "LastScanLat": f"{fs.sc_lat[-1]:.6f}", "LastScanLon": f"{fs.sc_lon[-1]:.6f}",
            "NumberOfRainPixelsFS": rain_pixels, "NumberOfRainPixelsHS": 0, "ProcessingSubSystem": "ALGORITHM",
            "ProcessingMode": "STD", "LightSpeed": 299792458, "DielectricFactorKa": "0.898900",
            "DielectricFactorKu": "0.925500"})
        h5.attrs["Simulation"] = _simulation(overpass, fs, observation.seed, repr(observation.config))
        runtime = "SIMULATED by satpy-prenet: no algorithm look-up tables were used\n"
        h5.create_dataset("AlgorithmRuntimeInfo", data=np.array([runtime.encode("ascii")], dtype=f"S{len(runtime)}"))
        _dpr_fs(h5.create_group("FS"), observation)
        _dpr_hs(h5.create_group("HS"), fs)
    logger.info("Wrote %s", final)
    return final


def _ku(values: np.ndarray) -> np.ndarray:
    """Add the ``nfreq`` dimension: Ku as given, Ka missing."""
    values = np.asarray(values)
    fill = np.nan if values.dtype.kind == "f" else -9999
    ka = np.full_like(values, fill, dtype=values.dtype if values.dtype.kind == "f" else np.int32)
    return np.stack([values.astype(ka.dtype), ka], axis=-1)


def _masked(values: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Footprints outside the simulated scenes become missing."""
    values = np.asarray(values)
    if values.dtype.kind == "f":
        return np.where(valid.reshape(valid.shape + (1,) * (values.ndim - 2)), values, np.nan)
    return np.where(valid.reshape(valid.shape + (1,) * (values.ndim - 2)), values, -9999)


def _dpr_fs(group: h5py.Group, obs: DPRObservation) -> None:
    """The FS group of 2A-DPR V07."""
    fs = obs.overpass.fs
    f = obs.fields
    ok = obs.valid
    ray, rbin, scan = "nscan,nray", "nscan,nray,nbin", "nscan"
    group.attrs["FS_SwathHeader"] = _swath_header(fs.nscan, fs.pattern.pixels, False, 10000)
    _put(group, "Latitude", fs.lat, ray, "float32", "degrees")
    _put(group, "Longitude", fs.lon, ray, "float32", "degrees")
    _put(group, "sunLocalTime", sun_local_time(fs), ray, "float32", "hours")
    _scan_time(group, fs, scan)
    pre = group.create_group("PRE")
    measured = np.where(ok[..., None], obs.z_measured, np.nan)
    _put(pre, "zFactorMeasured", _ku(measured), f"{rbin},nfreq", "float32", "dBZ")
    _put(pre, "binClutterFreeBottom", _masked(f["binClutterFreeBottom"], ok), ray, "int16")
    _put(pre, "binRealSurface", _ku(_masked(f["binRealSurface"], ok)), f"{ray},nfreq", "int16")
    _put(pre, "binStormTop", f["binStormTop"], ray, "int16")
    _put(pre, "height", obs.height, rbin, "float32", "m")
    _put(pre, "flagPrecip", f["flagPrecip"], ray, "int32")
    _put(pre, "elevation", _masked(obs.elevation, ok), ray, "float32", "m")
    _put(pre, "ellipsoidBinOffset", np.zeros(ok.shape), ray, "float32", "m")
    _put(pre, "heightStormTop", f["heightStormTop"], ray, "float32", "m")
    _put(pre, "localZenithAngle", _ku(obs.local_zenith), f"{ray},nfreq", "float32", "degree")
    _put(pre, "landSurfaceType", _masked(np.where(obs.land, 100, 0), ok), ray, "int32")
    _put(pre, "sigmaZeroMeasured", _ku(_masked(f["sigmaZeroMeasured"], ok)), f"{ray},nfreq", "float32", "dB")
    slv = group.create_group("SLV")
    _put(slv, "zFactorFinal", _ku(obs.z_final), f"{rbin},nfreq", "float32", "dBZ")
    _put(slv, "zFactorFinalNearSurface", _ku(f["zFactorFinalNearSurface"]), f"{ray},nfreq", "float32", "dBZ")
    _put(slv, "zFactorFinalESurface", _ku(f["zFactorFinalNearSurface"]), f"{ray},nfreq", "float32", "dBZ")
    _put(slv, "precipRate", np.where(ok[..., None], obs.precip_rate, np.nan), rbin, "float32", "mm/hr")
    _put(slv, "precipRateNearSurface", f["precipRateNearSurface"], ray, "float32", "mm/hr")
    _put(slv, "precipRateESurface", f["precipRateNearSurface"], ray, "float32", "mm/hr")
    band = (obs.height >= 2000.0) & (obs.height <= 4000.0) & np.isfinite(obs.precip_rate)
    with np.errstate(invalid="ignore"):
        ave = np.where(band, obs.precip_rate, 0.0).sum(-1) / band.sum(-1)
    _put(slv, "precipRateAve24", np.where(ok, ave, np.nan), ray, "float32", "mm/hr")
    _put(slv, "piaFinal", _ku(f["piaFinal"]), f"{ray},nfreq", "float32", "dB")
    _dpr_csf_ver_flg(group, obs)
    _dpr_navigation(group, obs)


def _dpr_csf_ver_flg(group: h5py.Group, obs: DPRObservation) -> None:
    """CSF (classification, bright band), VER (freezing level, air temperature) and FLG groups."""
    f, ok, ray = obs.fields, obs.valid, "nscan,nray"
    csf = group.create_group("CSF")
    _put(csf, "typePrecip", f["typePrecip"], ray, "int32")
    _put(csf, "flagBB", f["flagBB"], ray, "int32")
    _put(csf, "heightBB", f["heightBB"], ray, "float32", "m")
    _put(csf, "widthBB", f["widthBB"], ray, "float32", "m")
    for key in ("binBBPeak", "binBBTop", "binBBBottom"):
        _put(csf, key, f[key], ray, "int16")
    _put(csf, "flagShallowRain", f["flagShallowRain"], ray, "int32")
    ver = group.create_group("VER")
    _put(ver, "heightZeroDeg", _masked(f["heightZeroDeg"], ok), ray, "float32", "m")
    _put(ver, "binZeroDeg", f["binZeroDeg"], ray, "int16")
    _put(ver, "airTemperature", np.where(ok[..., None], obs.air_temperature, np.nan), "nscan,nray,nbin", "float32",
         "K")
    flg = group.create_group("FLG")
    _put(flg, "qualityFlag", _ku(np.where(ok, 0, -99).astype(np.int32)).clip(-99), f"{ray},nfreq", "int8",
         fill=-99)
    nscan = obs.overpass.fs.nscan
    _put(flg, "flagScanPattern", np.stack([np.zeros(nscan), np.full(nscan, -99)], -1), "nscan,nfreq", "int16",
         fill=-99)


def _dpr_navigation(group: h5py.Group, obs: DPRObservation) -> None:
    """Navigation and scanStatus groups."""
    fs = obs.overpass.fs
    scan = "nscan"
    nav = group.create_group("navigation")
    _put(nav, "dprAlt", np.full(fs.nscan, ALTITUDE_KM * 1000.0), scan, "float32", "m")
    _put(nav, "scAlt", np.full(fs.nscan, ALTITUDE_KM * 1000.0), scan, "float32", "m")
    _put(nav, "scLat", fs.sc_lat, scan, "float32", "degrees")
    _put(nav, "scLon", fs.sc_lon, scan, "float32", "degrees")
    _put(nav, "scPos", fs.sc_position * 1000.0, "nscan,XYZ", "float32", "m")
    _put(nav, "scVel", fs.sc_velocity * 1000.0, "nscan,XYZ", "float32", "m/s")
    _put(nav, "scHeadingGround", fs.heading, scan, "float32", "degrees")
    _put(nav, "timeMidScan", _gps_seconds(fs), scan, "float64", "s")
    _put(nav, "timeMidScanOffset", np.zeros(fs.nscan), scan, "float64", "s")
    status = group.create_group("scanStatus")
    _put(status, "FractionalGranuleNumber", obs.overpass.granule + (fs.scan_index + 0.5) * fs.pattern.scan_period
         / ORBIT_PERIOD_S, scan, "float64")
    _put(status, "SCorientation", np.zeros(fs.nscan), scan, "int16", "degrees")
    ku_only = np.stack([np.zeros(fs.nscan), np.full(fs.nscan, -99)], -1)
    for key, dtype in (("dataQuality", "int8"), ("missing", "int8"), ("geoError", "int16")):
        _put(status, key, ku_only, "nscan,nfreq", dtype, fill=-99 if dtype == "int8" else -9999)


def _dpr_hs(group: h5py.Group, fs: Swath) -> None:
    """The HS (Ka high-sensitivity) group: geolocation between FS rays 12 and 36, scan times, Ka products as fill."""
    group.attrs["HS_SwathHeader"] = _swath_header(fs.nscan, 24, False, 10000)
    position = 12.5 + np.arange(24)
    lower = np.floor(position).astype(int)
    weight = position - lower
    lat = fs.lat[:, lower] * (1 - weight) + fs.lat[:, lower + 1] * weight
    lon = fs.lon[:, lower] * (1 - weight) + fs.lon[:, lower + 1] * weight
    ray = "nscan,nrayHS"
    _put(group, "Latitude", lat, ray, "float32", "degrees")
    _put(group, "Longitude", lon, ray, "float32", "degrees")
    _scan_time(group, fs, "nscan")
    empty = np.full((fs.nscan, 24, NBIN // 2), np.nan)
    _put(group.create_group("PRE"), "zFactorMeasured", empty, "nscan,nrayHS,nbinHS", "float32", "dBZ")
    slv = group.create_group("SLV")
    _put(slv, "zFactorFinal", empty, "nscan,nrayHS,nbinHS", "float32", "dBZ")
    _put(slv, "precipRateNearSurface", np.full((fs.nscan, 24), np.nan), ray, "float32", "mm/hr")
    _put(group.create_group("FLG"), "flagScanPattern", np.full(fs.nscan, -99), "nscan", "int16", fill=-99)

