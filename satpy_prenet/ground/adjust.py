# SPDX-License-Identifier: GPL-3.0-or-later
"""Rain-gauge adjustment of the satellite precipitation rate with the Z = a R^b Kalman filter.

The filter of :mod:`satpy_prenet.ground.ekf` tracks Z = a R^b against gauge accumulations; fed the satellite rates
at the gauge pixels in place of Z, it tracks R_sat = a R_gauge^b, and the adjusted rate is (R_sat / a)^(1/b). All
usable gauges of a window are pooled into one observation: y = ln sum_g G_g against
h = ln sum_g (R_sat,g / a)^(1/b) x window. By default b stays at 1 and only the multiplicative bias a is tracked
(mean-field bias); ``fixed_b=False`` tracks [ln a, b].

A gauge is usable for a window when it lies on a valid pixel of the image, every interval of the window is present
with a zero quality flag (:mod:`satpy_prenet.ground.gauges`), and the satellite rate at its pixel is finite and
not negative. The window (time - window, time] holds the gauge intervals whose *end* falls in it.
"""

from __future__ import annotations

import json
import logging
from collections import Counter
from dataclasses import dataclass

import numpy as np
import pandas as pd
import xarray as xr

from satpy_prenet.evaluation.metrics import regression_scores
from satpy_prenet.ground.ekf import ZREKF, EKFConfig, to_seconds
from satpy_prenet.ground.gauges import DUPLICATE, GAP, LOCATION, NEGATIVE, OUTSIDE, RATE, STUCK

LOG = logging.getLogger(__name__)

#: Filter settings for satellite adjustment: a is a bias factor and b an exponent near 1, not a radar Z-R relation.
SATELLITE_CONFIG = EKFConfig(q_ln_a=0.01, q_b=0.001, sigma_repr=0.5, a_bounds=(0.05, 20.0), b_bounds=(0.5, 2.0))
#: Starting point of a fresh filter: no bias, wide uncertainty on a.
INITIAL_STATE = {"a": 1.0, "b": 1.0, "std_ln_a": 1.0, "std_b": 0.2}
#: Mean Earth radius (m) for the station-to-pixel distance.
EARTH_RADIUS_M = 6_371_008.8
#: Why a station is left out, by flag bit, in the order the reasons are reported.
SKIP_REASONS = ((LOCATION, "invalid position"), (OUTSIDE, "outside the image"), (GAP, "gap in the window"),
                (NEGATIVE, "negative value"), (STUCK, "stuck value"), (RATE, "implausible rate"),
                (DUPLICATE, "duplicate record"))
NO_SATELLITE_RATE = "no satellite rate at the pixel"
NO_UPDATE = "gated: no gauge update"


@dataclass(frozen=True)
class GaugeObservation:
    """Gauge accumulations of one window and the satellite rates at the usable gauges.

    Attributes:
        time: End of the window (datetime64, UTC).
        window: Length of the window.
        stations: Identifiers of the usable stations.
        gauge_mm: Accumulation of each usable station over the window (mm).
        satellite_mm_h: Satellite rate at each usable station's pixel (mm/h).
        skipped: Reason for every station left out, by station.
    """

    time: np.datetime64
    window: pd.Timedelta
    stations: np.ndarray
    gauge_mm: np.ndarray
    satellite_mm_h: np.ndarray
    skipped: dict

    @property
    def n_used(self):
        """Number of usable stations."""
        return int(self.stations.size)

    @property
    def gauge_total_mm(self):
        """Sum of the usable accumulations (mm)."""
        return float(self.gauge_mm.sum())

    @property
    def hours(self):
        """Window length in hours."""
        return self.window / pd.Timedelta(hours=1)

    @property
    def gauge_mm_h(self):
        """Mean rate of each usable station over the window (mm/h)."""
        return self.gauge_mm / self.hours

    def skip_summary(self):
        """Counts of the skipped stations by reason, e.g. ``"3 outside the image, 1 gap in the window"``."""
        counts = Counter(self.skipped.values())
        return ", ".join(f"{count} {reason}" for reason, count in counts.most_common())


def parse_window(window):
    """Window length as a positive :class:`pandas.Timedelta` (``"1h"``, ``"30min"``, a timedelta...).

    Raises:
        ValueError: Not a duration, or not positive.
    """
    if isinstance(window, (int, float, np.number)):
        raise ValueError(f"window must be a duration such as '1h' or '30min', got the bare number {window!r}")
    try:
        length = pd.Timedelta(window)
    except (ValueError, TypeError) as err:
        raise ValueError(f"window must be a duration such as '1h' or '30min', got {window!r} ({err})") from err
    if pd.isna(length) or length <= pd.Timedelta(0):
        raise ValueError(f"window must be a positive duration, got {window!r}")
    return length


def match_gauges(gauges, area, max_distance_m=10_000.0):
    """Find the pixel of every station in a product's area.

    A station gets no pixel and the OUTSIDE flag when its position is not finite, it lies outside the area or off
    the Earth disc, or the centre of its pixel is more than ``max_distance_m`` away. Nothing is raised for them.

    Args:
        gauges: Dataset from :func:`satpy_prenet.ground.gauges.read_gauges`.
        area: pyresample area definition of the product.
        max_distance_m: Largest station-to-pixel-centre distance (m); AGRI 4 km pixels put a station within about
            3 km of the centre near nadir.

    Returns:
        Dataset along ``station`` with ``row`` and ``col`` (-1 without pixel), ``valid``, ``distance_m`` and
        ``flag`` (OUTSIDE where not valid).
    """
    lon = gauges["lon"].to_numpy().astype(float)
    lat = gauges["lat"].to_numpy().astype(float)
    row = np.full(lon.shape, -1, dtype=np.int64)
    col = np.full(lon.shape, -1, dtype=np.int64)
    distance = np.full(lon.shape, np.nan)
    placed = np.isfinite(lon) & np.isfinite(lat) & (np.abs(lon) <= 180) & (np.abs(lat) <= 90)
    if placed.any():
        # pyresample answers a single point with scalars: keep one value per placed station.
        x, y = (np.asarray(v, dtype=float).reshape(-1)
                for v in area.get_array_coordinates_from_lonlat(lon[placed], lat[placed]))
        with np.errstate(invalid="ignore"):
            x, y = np.floor(x + 0.5), np.floor(y + 0.5)
            inside = (x >= 0) & (x < area.width) & (y >= 0) & (y < area.height)
        index = np.flatnonzero(placed)[inside]
        col[index], row[index] = x[inside].astype(np.int64), y[inside].astype(np.int64)
        centre_lon, centre_lat = area.get_lonlat_from_array_coordinates(col[index], row[index])
        distance[index] = _great_circle_m(lon[index], lat[index], np.asarray(centre_lon), np.asarray(centre_lat))
    with np.errstate(invalid="ignore"):
        valid = distance <= max_distance_m
    row[~valid], col[~valid] = -1, -1
    return xr.Dataset(
        {"row": ("station", row), "col": ("station", col), "valid": ("station", valid),
         "distance_m": ("station", distance, {"units": "m"}),
         "flag": ("station", np.where(valid, 0, OUTSIDE).astype(np.uint8))},
        coords={"station": gauges["station"].to_numpy(), "lon": ("station", lon), "lat": ("station", lat)},
        attrs={"max_distance_m": float(max_distance_m)},
    )


def _great_circle_m(lon1, lat1, lon2, lat2):
    """Haversine distance in metres; NaN where a point is not finite (off the disc)."""
    lon1, lat1, lon2, lat2 = (np.radians(v) for v in (lon1, lat1, lon2, lat2))
    with np.errstate(invalid="ignore"):
        half = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
        return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(half, 0, 1)))


def gauge_observation(rate, gauges, matches, time, window):
    """Collect the gauge accumulations of the window (time - window, time] and the satellite rates at the gauges.

    Args:
        rate: Satellite rate (mm/h), a 2-D DataArray on the grid ``matches`` was made for; only the pixels of the
            usable gauges are computed.
        gauges: Dataset from :func:`satpy_prenet.ground.gauges.read_gauges`.
        matches: Output of :func:`match_gauges` for these gauges.
        time: End of the window (datetime, numpy datetime64 or ISO string); None: the rate's slot time.
        window: Window length; a multiple of the gauge interval.

    Returns:
        A :class:`GaugeObservation`.

    Raises:
        ValueError: The window is not a positive multiple of the gauge interval, no gauge record falls in the
            window, the rate is not 2-D, or ``matches`` lists other stations.
    """
    if rate.ndim != 2:
        raise ValueError(f"rate must be a 2-D (y, x) array, got dims {rate.dims}")
    window = parse_window(window).to_timedelta64()
    end = _to_datetime64(_slot_time(rate, time))
    stations = gauges["station"].to_numpy()
    if not np.array_equal(matches["station"].to_numpy(), stations):
        raise ValueError("matches and gauges list different stations: match the same gauges (match_gauges)")
    times = _window_times(gauges, end, window)
    flags = gauges["flag"].reindex(time=times, fill_value=GAP).to_numpy()
    values = gauges["precipitation_mm"].reindex(time=times).to_numpy().astype(float)
    unexplained = ~np.isfinite(values) & (flags == 0)  # a missing value without a flag is a gap too
    station_flag = np.bitwise_or.reduce(flags | np.where(unexplained, GAP, 0).astype(np.uint8), axis=1)
    station_flag = station_flag | matches["flag"].to_numpy()
    skipped = {}
    for bit, reason in SKIP_REASONS:
        for station in stations[(station_flag & bit).astype(bool)]:
            skipped.setdefault(str(station), reason)
    usable = station_flag == 0
    satellite = _sample(rate, matches["row"].to_numpy()[usable], matches["col"].to_numpy()[usable])
    with np.errstate(invalid="ignore"):
        has_rate = np.isfinite(satellite) & (satellite >= 0)
    skipped.update({str(station): NO_SATELLITE_RATE for station in stations[usable][~has_rate]})
    used = stations[usable][has_rate]
    return GaugeObservation(end, pd.Timedelta(window), used, values[usable].sum(axis=1)[has_rate],
                            satellite[has_rate], skipped)


def _window_times(gauges, end, window):
    """Interval ends of the window on the gauges' grid; raises when none of them is in the file."""
    step = pd.Timedelta(seconds=gauges.attrs["interval_s"]).to_timedelta64()
    if window % step:
        raise ValueError(f"window of {_minutes(window)} is not a multiple of the gauge interval {_minutes(step)}")
    first, last = gauges["time"].to_numpy()[[0, -1]]
    latest = first + ((end - first) // step) * step
    times = latest - step * np.arange(window // step)[::-1]
    if times[-1] < first or times[0] > last:
        raise ValueError(f"gauges cover {pd.Timestamp(first)} to {pd.Timestamp(last)}: no time overlap with the "
                         f"window ({pd.Timestamp(end - window)}, {pd.Timestamp(end)}]")
    return times


def _minutes(duration):
    return f"{pd.Timedelta(duration) / pd.Timedelta(minutes=1):g} min"


def _sample(rate, rows, cols):
    """Values of ``rate`` at (row, col) pairs; with dask, only the chunks holding them are computed."""
    if rows.size == 0:
        return np.empty(0)
    ydim, xdim = rate.dims
    picked = rate.isel({ydim: xr.DataArray(rows, dims="station"), xdim: xr.DataArray(cols, dims="station")})
    return np.asarray(picked.values, dtype=float)


def _slot_time(rate, time):
    if time is not None:
        return time
    for key in ("start_time", "end_time"):
        if rate.attrs.get(key) is not None:
            return rate.attrs[key]
    raise ValueError("rate has neither start_time nor end_time: pass the time of the slot")


def _to_datetime64(time):
    """UTC datetime64 without a time zone (an explicit offset is converted to UTC)."""
    stamp = pd.Timestamp(time)
    if stamp.tzinfo is not None:
        stamp = stamp.tz_convert("UTC").tz_localize(None)
    return stamp.to_datetime64()


def adjust_precipitation_rate(rate, gauges, state=None, window="15min", fixed_b=True, config=None, time=None):
    """Adjust a satellite precipitation rate to rain gauges with one filter step for this slot.

    Args:
        rate: Satellite rate (mm/h): 2-D DataArray with an ``area`` attribute (pyresample area definition); dask
            stays lazy, only the gauge pixels are computed.
        gauges: Dataset from :func:`satpy_prenet.ground.gauges.read_gauges`, or None when there are no gauge data
            (the relation is then only predicted).
        state: Filter state of the previous slot: the ``gauge_adjustment_state`` attribute of its product (JSON
            string or dict) or a :class:`~satpy_prenet.ground.ekf.ZREKF` (left unchanged); None: a fresh filter.
        window: Gauge accumulation window ending at the slot time.
        fixed_b: Track the bias a only (b = 1); else [ln a, b]. Only for a fresh filter: a state keeps its own.
        config: Settings of a fresh filter (default :data:`SATELLITE_CONFIG`).
        time: Slot time; default the rate's ``start_time`` (else ``end_time``).

    Returns:
        DataArray ``<name>_adjusted`` (e.g. ``precipitation_rate_adjusted``) with the dims, coordinates and area of
        ``rate``, in mm/h; zero stays zero and NaN stays NaN. Attributes: ``gauge_adjustment_state`` (JSON),
        ``gauge_adjustment_a``, ``gauge_adjustment_b``, ``gauge_adjustment_status`` (``accepted``, or ``rejected:``
        / ``gated:`` and the reason), ``gauge_adjustment_n_gauges`` and ``gauge_adjustment_skipped``.

    Raises:
        ValueError: The rate has no area or another shape than its area, no slot time, the window is not a positive
            duration (or not a multiple of the gauge interval), the gauges have no time overlap with the window, or
            the state is malformed.
    """
    window = parse_window(window)
    area = rate.attrs.get("area")
    if area is None:
        raise ValueError("rate has no 'area' attribute: the gauges cannot be placed on its grid")
    if tuple(area.shape) != tuple(rate.shape):
        raise ValueError(f"rate shape {rate.shape} differs from its area's shape {area.shape}")
    end = _to_datetime64(_slot_time(rate, time))
    ekf = _filter(state, fixed_b, config)
    observation = None
    if ekf.time is not None and to_seconds(end) <= ekf.time:
        status = (f"{NO_UPDATE}: the filter is already at {pd.Timestamp(ekf.time, unit='s')}, this slot is "
                  f"{pd.Timestamp(end)}")
    elif gauges is None:
        ekf.step(np.empty(0), window / pd.Timedelta(hours=1), 0, end)  # a step without data only predicts
        status = f"{NO_UPDATE}: no gauge data"
    else:
        observation = gauge_observation(rate, gauges, match_gauges(gauges, area), end, window)
        status = _update(ekf, observation)
    LOG.info("Gauge adjustment at %s: %s; a = %.3g, b = %.3g, %d gauge(s) used", pd.Timestamp(end), status, ekf.a,
             ekf.b, 0 if observation is None else observation.n_used)
    return _adjusted(rate, ekf, status, observation)


def _filter(state, fixed_b, config):
    """A fresh filter, or a copy of the given state."""
    if state is None:
        return ZREKF(**INITIAL_STATE, config=config or SATELLITE_CONFIG, fixed_b=fixed_b)
    if isinstance(state, ZREKF):
        state = state.to_dict()
    elif isinstance(state, str):
        state = json.loads(state)
    ekf = ZREKF.from_dict(state)
    if ekf.fixed_b != bool(fixed_b):
        LOG.warning("The gauge-adjustment state has fixed_b=%s; fixed_b=%s applies to a fresh filter only",
                    ekf.fixed_b, bool(fixed_b))
    return ekf


def _update(ekf, observation):
    """One filter step with the pooled observation; the status of the step."""
    reason = _no_update_reason(observation, ekf.config)
    if reason:
        ekf.step(np.empty(0), observation.hours, 0, observation.time)  # prediction only
        return f"{NO_UPDATE}: {reason}"
    record = ekf.step(observation.satellite_mm_h, observation.hours,
                      observation.gauge_total_mm / ekf.config.bucket_mm, observation.time)
    return f"{record.status}: {record.reason}" if record.reason else record.status


def _no_update_reason(observation, config):
    if observation.n_used == 0:
        skipped = observation.skip_summary()
        return f"no usable gauges ({skipped})" if skipped else "no gauges"
    least = config.min_tips * config.bucket_mm
    if observation.gauge_total_mm < least:
        return (f"{observation.gauge_total_mm:.3g} mm at {observation.n_used} gauge(s), less than {least:.3g} mm "
                "(min_tips x bucket_mm)")
    if not np.any(observation.satellite_mm_h > 0):
        return f"no satellite rain at the {observation.n_used} usable gauge(s)"
    return ""


def _adjusted(rate, ekf, status, observation):
    """The adjusted product (rate / a)^(1/b) with the filter state in its attributes."""
    dtype = np.result_type(rate.dtype, np.float32)
    data = (rate.data / dtype.type(ekf.a)) ** dtype.type(1.0 / ekf.b)
    name = f"{rate.attrs.get('name') or rate.name or 'precipitation_rate'}_adjusted"
    adjusted = rate.copy(deep=False, data=data).rename(name)
    attrs = adjusted.attrs
    attrs.pop("_satpy_id", None)  # satpy's identifier of the unadjusted product
    attrs.update({
        "name": name, "units": "mm h-1",
        "long_name": f"{rate.attrs.get('long_name', 'precipitation rate')}, adjusted to rain gauges",
        "gauge_adjustment_state": json.dumps(ekf.to_dict()),
        "gauge_adjustment_a": ekf.a, "gauge_adjustment_b": ekf.b, "gauge_adjustment_status": status,
        "gauge_adjustment_n_gauges": 0 if observation is None else observation.n_used,
        "gauge_adjustment_skipped": "" if observation is None else observation.skip_summary(),
    })
    return adjusted


def validate_against_gauges(rate, gauges, matches, time, window):
    """Scores of a rate against the usable gauges' mean rates over a window.

    Args:
        rate: Rate to score (mm/h), e.g. the satellite or the adjusted product.
        gauges: Dataset from :func:`satpy_prenet.ground.gauges.read_gauges`.
        matches: Output of :func:`match_gauges`.
        time: End of the window; None: the rate's slot time.
        window: Window length.

    Returns:
        Dict of ``rmse``, ``mae``, ``bias`` (mean rate minus gauge, mm/h), ``r2`` (coefficient of determination of
        the gauge rates), ``pearson_r`` and ``n`` (:func:`~satpy_prenet.evaluation.metrics.regression_scores`);
        NaN without usable gauges.
    """
    observation = gauge_observation(rate, gauges, matches, time, window)
    if observation.n_used == 0:
        return {"n": 0, "rmse": np.nan, "mae": np.nan, "bias": np.nan, "r2": np.nan, "pearson_r": np.nan}
    scores = regression_scores(observation.satellite_mm_h, observation.gauge_mm_h).to_dict()
    return {key: scores[key] for key in ("n", "rmse", "mae", "bias", "r2", "pearson_r")}
