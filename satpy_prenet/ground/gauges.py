# SPDX-License-Identifier: GPL-3.0-or-later
"""Rain-gauge records: tipping-bucket conversions, CSV/NetCDF readers and quality flags.

Input layouts accepted by :func:`read_gauges`:

- CSV (``.csv``): one row per station and interval with columns ``station``, ``lon``, ``lat``, ``time`` (ISO 8601,
  UTC; an explicit offset is converted to UTC) and exactly one of ``tips`` (bucket tips in the interval, with a
  ``bucket_mm`` column or the ``bucket_mm`` argument) or ``mm`` (accumulation in the interval).
- NetCDF (``.nc``, ``.nc4``, ``.netcdf``): variables/coordinates with the same names, either on a ``station`` x
  ``time`` grid (``lon``/``lat`` along ``station``) or as a flat table along one record dimension.

Output of :func:`read_gauges`: an :class:`xarray.Dataset` with dims ``(station, time)``; coordinates ``station``
(str), ``time`` (datetime64, UTC without a time zone, the *end* of each interval as written in the file, on a
regular grid), ``lon`` and ``lat`` (degrees, along ``station``); data variables ``precipitation_mm`` (float64,
accumulation per interval, NaN where missing or negative) and ``flag`` (uint8, bit flags below). The attribute
``interval_s`` holds the interval length in seconds, ``skipped_lines`` the malformed CSV lines that were skipped.

A malformed CSV line (a wrong number of fields, no station, a missing or unparseable time, a value that is not a
number, a ``bucket_mm`` not > 0 where tips are read) is skipped and the rest of the file is used; each is logged as a
warning and listed in ``skipped_lines`` as ``FILE:LINE: problem`` (LINE counted from 1, the header included). Empty
fields and pandas' other missing-value markers (``NA``, ``NaN``...) are missing values, not malformed.

Quality checks flag values, they never raise. Bits of ``flag``:

========  =====  ====================================================================================
Name      Value  Meaning
========  =====  ====================================================================================
GAP       1      no record for this interval (value NaN)
NEGATIVE  2      negative accumulation in the file (value set to NaN)
STUCK     4      same non-zero value repeated for at least ``stuck_intervals`` consecutive intervals
RATE      8      accumulation implies a rate above ``max_rate_mm_h``
DUPLICATE 16     the timestamp occurred more than once for the station; the first record is kept
LOCATION  32     station lon/lat not finite or outside [-180, 180] x [-90, 90] (all intervals)
OUTSIDE   64     station outside the area given to :func:`flag_outside` (all intervals)
========  =====  ====================================================================================
"""

from __future__ import annotations

import csv
import io
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

GAP = 1
NEGATIVE = 2
STUCK = 4
RATE = 8
DUPLICATE = 16
LOCATION = 32
OUTSIDE = 64
FLAGS = {"GAP": GAP, "NEGATIVE": NEGATIVE, "STUCK": STUCK, "RATE": RATE, "DUPLICATE": DUPLICATE,
         "LOCATION": LOCATION, "OUTSIDE": OUTSIDE}

LOG = logging.getLogger(__name__)

_REQUIRED = ("station", "lon", "lat", "time")
_EXPECTED = {"time": "an ISO 8601 time", "bucket_mm": "a number > 0"}  # in a CSV field; the others: "a number"
_NETCDF_SUFFIXES = (".nc", ".nc4", ".netcdf")
# Tolerance for cumulative depth / bucket landing just below an integer through floating point (0.3 / 0.1).
_TIP_EPS = 1e-9


def _check_bucket(bucket_mm):
    bucket = np.asarray(bucket_mm, dtype=float)
    if not np.all(np.isfinite(bucket)) or np.any(bucket <= 0):
        raise ValueError(f"bucket_mm must be finite and > 0, got {bucket_mm!r}")
    return bucket


def tips_from_depth(cumulative_depth_mm, bucket_mm):
    """Convert a cumulative rain depth into tips per interval of a tipping bucket.

    The tip count at each time is ``floor(cumulative / bucket)`` and the tips per interval are its differences, so
    the residual below one bucket carries over to the next interval instead of being rounded in each window.

    Args:
        cumulative_depth_mm: Non-decreasing cumulative depth (mm) since a zero at the start, along the last axis.
        bucket_mm: Bucket size (mm), e.g. 0.1 or 0.2; finite and > 0.

    Returns:
        Integer array of the same shape: tips in each interval (the first interval starts from zero depth).

    Raises:
        ValueError: The bucket is not positive, or the depth is negative, non-finite or decreasing.
    """
    bucket = _check_bucket(bucket_mm)
    depth = np.asarray(cumulative_depth_mm, dtype=float)
    if not np.all(np.isfinite(depth)) or np.any(depth < 0) or np.any(np.diff(depth, axis=-1) < 0):
        raise ValueError("cumulative_depth_mm must be finite, >= 0 and non-decreasing")
    count = np.floor(depth / bucket + _TIP_EPS).astype(np.int64)
    return np.diff(count, axis=-1, prepend=0)


def depth_from_tips(tips, bucket_mm):
    """Convert tips per interval into accumulation per interval.

    Args:
        tips: Tip counts (scalar or array).
        bucket_mm: Bucket size (mm), finite and > 0, scalar or broadcastable to ``tips``.

    Returns:
        Accumulation (mm) as float array.

    Raises:
        ValueError: The bucket is not positive.
    """
    return np.asarray(tips, dtype=float) * _check_bucket(bucket_mm)


def _read_table(path):
    """The file's records as a table, and the malformed lines of a CSV as sorted (line number, problem) pairs."""
    try:
        if path.suffix.lower() == ".csv":
            return _parse_lines(*_read_csv(path))
        if path.suffix.lower() in _NETCDF_SUFFIXES:
            with xr.open_dataset(path) as ds:
                return ds.to_dataframe().reset_index(), []
    except (OSError, ValueError, csv.Error) as err:
        raise ValueError(f"{path}: unreadable gauge file ({err})") from err
    raise ValueError(f"{path}: unknown gauge file type {path.suffix!r} (expected .csv or {_NETCDF_SUFFIXES})")


def _read_csv(path):
    """The CSV lines with as many fields as the header, as strings indexed by line number; the others' problems."""
    with open(path, newline="", encoding="utf-8-sig") as stream:
        reader = csv.reader(stream)
        header = next(reader, [])
        rows, malformed = {}, []
        for fields in reader:
            if not "".join(fields).strip():
                continue  # a blank line holds no record
            if len(fields) == len(header):
                rows[reader.line_num] = fields
            else:
                malformed.append((reader.line_num, f"{len(fields)} fields, expected {len(header)}"))
    text = io.StringIO()
    csv.writer(text).writerows([header, *rows.values()])
    text.seek(0)  # pandas reads the well-formed lines back: its missing-value markers apply
    return pd.read_csv(text, dtype=str).set_axis(list(rows)), malformed


def _parse_lines(table, malformed):
    """Parse the columns used of a CSV table of strings; the lines where that fails join the malformed ones."""
    columns = [*_REQUIRED, "mm", "tips", *(["bucket_mm"] if "tips" in table else [])]
    problems = {}
    for name in (name for name in columns if name in table):
        text = table[name]
        table[name], bad = _parse_column(name, text)
        for line, value in text[bad].items():
            problems.setdefault(line, []).append(
                f"no {name}" if pd.isna(value) else f"{name} {value!r} is not {_EXPECTED.get(name, 'a number')}")
    malformed += [(line, ", ".join(found)) for line, found in problems.items()]
    return table.drop(index=list(problems)), sorted(malformed)


def _parse_column(name, text):
    """A CSV column's values parsed from strings (NaN where missing), and which of them make the line unusable."""
    if name == "station":
        return text, text.isna()
    if name == "time":
        values = pd.to_datetime(text, utc=True, format="ISO8601", errors="coerce")
        return values, values.isna()
    values = pd.to_numeric(text, errors="coerce")
    if name == "bucket_mm":
        return values, ~(np.isfinite(values) & (values > 0))
    return values, values.isna() & text.notna()


def _depth_mm(table, bucket_mm, path):
    has_tips, has_mm = "tips" in table, "mm" in table
    if has_tips == has_mm:
        raise ValueError(f"{path}: need exactly one of the columns 'tips' and 'mm'")
    if has_mm:
        return table["mm"].to_numpy(dtype=float)
    if "bucket_mm" in table:
        bucket_mm = table["bucket_mm"].to_numpy(dtype=float)
    elif bucket_mm is None:
        raise ValueError(f"{path}: 'tips' given without a 'bucket_mm' column or argument")
    try:
        return depth_from_tips(table["tips"].to_numpy(dtype=float), bucket_mm)
    except ValueError as err:
        raise ValueError(f"{path}: {err}") from err


def _parse_times(values, path):
    try:
        times = pd.to_datetime(pd.Series(values), utc=True, format="ISO8601")
    except (ValueError, TypeError) as err:
        raise ValueError(f"{path}: unparseable times ({err})") from err
    if times.isna().any():
        raise ValueError(f"{path}: missing times")
    return times.dt.tz_convert(None).astype("datetime64[ns]")


def _time_grid(times, interval, path):
    unique = np.unique(times.to_numpy())
    if interval is None:
        if unique.size < 2:
            raise ValueError(f"{path}: cannot infer the interval from a single time; pass interval")
        step = np.diff(unique).min()
    else:
        step = pd.Timedelta(interval).to_timedelta64()
    if np.any((unique - unique[0]) % step != np.timedelta64(0, "ns")):
        raise ValueError(f"{path}: times are not on a regular grid of {pd.Timedelta(step)}")
    return np.arange(unique[0], unique[-1] + step, step), step


def _run_lengths(values):
    """Length of the run of equal consecutive values each element belongs to, along the last axis."""
    same = values[:, 1:] == values[:, :-1]
    forward = np.ones(values.shape, dtype=np.int64)
    backward = np.ones(values.shape, dtype=np.int64)
    for t in range(1, values.shape[1]):
        forward[:, t] = np.where(same[:, t - 1], forward[:, t - 1] + 1, 1)
        back = values.shape[1] - 1 - t
        backward[:, back] = np.where(same[:, back], backward[:, back + 1] + 1, 1)
    return forward + backward - 1


def quality_flags(precipitation_mm, interval_h, stuck_intervals=6, max_rate_mm_h=300.0):
    """Flag gaps, stuck values and implausible rates in a (station, time) accumulation array.

    Args:
        precipitation_mm: Accumulation per interval (mm), shape (station, time); NaN means missing.
        interval_h: Interval length in hours.
        stuck_intervals: Minimum number of consecutive equal non-zero values flagged as STUCK.
        max_rate_mm_h: Rates above this (mm/h) are flagged as RATE.

    Returns:
        uint8 array of GAP | STUCK | RATE bits with the shape of ``precipitation_mm``.
    """
    values = np.asarray(precipitation_mm, dtype=float)
    flags = np.where(np.isnan(values), GAP, 0).astype(np.uint8)
    stuck = (_run_lengths(values) >= stuck_intervals) & (values != 0) & np.isfinite(values)
    flags[stuck] |= STUCK
    with np.errstate(invalid="ignore"):
        flags[values / interval_h > max_rate_mm_h] |= RATE
    return flags


def _location_ok(lon, lat):
    return np.isfinite(lon) & np.isfinite(lat) & (np.abs(lon) <= 180) & (np.abs(lat) <= 90)


def read_gauges(path, bucket_mm=None, interval=None, stuck_intervals=6, max_rate_mm_h=300.0):
    """Read rain-gauge records into a (station, time) Dataset with quality flags (layout in the module docstring).

    Args:
        path: CSV or NetCDF file.
        bucket_mm: Bucket size (mm) for ``tips`` when the file has no ``bucket_mm`` column.
        interval: Interval length (anything :class:`pandas.Timedelta` accepts); default: the smallest time step.
        stuck_intervals: Minimum run of equal non-zero values flagged as STUCK.
        max_rate_mm_h: Rate (mm/h) above which an interval is flagged as RATE.

    Returns:
        Dataset with ``precipitation_mm`` and ``flag`` on (station, time); its attribute ``skipped_lines`` lists the
        malformed CSV lines skipped, as ``FILE:LINE: problem`` (empty for NetCDF).

    Raises:
        FileNotFoundError: The file does not exist.
        ValueError: The file is unreadable, lacks columns, has no usable record, has unparseable (NetCDF) or
            irregular times, or has both or neither of ``tips`` and ``mm``. Every message starts with the file path.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: gauge file not found")
    table, malformed = _read_table(path)
    skipped = [f"{path}:{line}: {problem}" for line, problem in malformed]
    for description in skipped:
        LOG.warning("Malformed gauge line skipped: %s", description)
    missing = [name for name in _REQUIRED if name not in table]
    if missing:
        raise ValueError(f"{path}: missing required columns {missing}")
    if table.empty:
        first = (f" ({len(malformed)} malformed lines, the first line {malformed[0][0]}: {malformed[0][1]})"
                 if malformed else "")
        raise ValueError(f"{path}: no usable gauge record{first}")
    table = pd.DataFrame({"station": table["station"].astype(str), "lon": table["lon"].astype(float),
                          "lat": table["lat"].astype(float), "time": _parse_times(table["time"], path),
                          "mm": _depth_mm(table, bucket_mm, path)})
    grid, step = _time_grid(table["time"], interval, path)
    duplicated = table.duplicated(["station", "time"], keep="first")
    dup_keys = table.loc[duplicated, ["station", "time"]].drop_duplicates()
    table = table[~duplicated]
    stations = pd.unique(table["station"])
    values = table.pivot(index="station", columns="time", values="mm").reindex(index=stations, columns=grid)
    values = values.to_numpy(dtype=float, copy=True)
    negative = values < 0
    values[negative] = np.nan
    flags = quality_flags(values, step / np.timedelta64(1, "h"), stuck_intervals, max_rate_mm_h)
    flags[negative] = NEGATIVE | (flags[negative] & ~np.uint8(GAP))
    rows = pd.Index(stations).get_indexer(dup_keys["station"])
    flags[rows, pd.Index(grid).get_indexer(dup_keys["time"])] |= DUPLICATE
    position = table.groupby("station", sort=False)[["lon", "lat"]].first().reindex(stations)
    lon, lat = position["lon"].to_numpy(), position["lat"].to_numpy()
    flags[~_location_ok(lon, lat)] |= LOCATION
    return _dataset(stations, grid, lon, lat, values, flags, step, skipped)


def _dataset(stations, grid, lon, lat, values, flags, step, skipped):
    meanings = " ".join(name.lower() for name in FLAGS)
    return xr.Dataset(
        {"precipitation_mm": (("station", "time"), values, {"units": "mm", "long_name": "accumulation per interval"}),
         "flag": (("station", "time"), flags, {"flag_masks": np.array(list(FLAGS.values()), dtype=np.uint8),
                                               "flag_meanings": meanings})},
        coords={"station": np.asarray(stations, dtype=str), "time": grid,
                "lon": ("station", lon, {"units": "degrees_east"}),
                "lat": ("station", lat, {"units": "degrees_north"})},
        attrs={"interval_s": float(step / np.timedelta64(1, "s")), "skipped_lines": skipped},
    )


def flag_outside(gauges, lon_min, lon_max, lat_min, lat_max):
    """Set the OUTSIDE bit for stations outside a lon/lat box (or with non-finite positions).

    Args:
        gauges: Dataset from :func:`read_gauges`.
        lon_min: Western edge (degrees east).
        lon_max: Eastern edge (degrees east).
        lat_min: Southern edge (degrees north).
        lat_max: Northern edge (degrees north).

    Returns:
        A copy of ``gauges`` with OUTSIDE set on every interval of the stations outside the box.
    """
    lon, lat = gauges["lon"].to_numpy(), gauges["lat"].to_numpy()
    with np.errstate(invalid="ignore"):
        inside = (lon >= lon_min) & (lon <= lon_max) & (lat >= lat_min) & (lat <= lat_max)
    out = gauges.copy(deep=True)
    flags = out["flag"].to_numpy()
    flags[~inside] |= OUTSIDE
    out["flag"].values = flags
    return out
