# SPDX-License-Identifier: GPL-3.0-or-later
"""Rain from CW radar reflectivity over a gauge: fixed, dynamic least-squares and EKF Z-R relations compared.

The record is cut into windows (30 minutes by default). Every method estimates each window's rain from its
reflectivities with the relation it holds *before* the window's gauge tips are known (one step ahead), then may
learn from them:

- a fixed relation never changes;
- the dynamic least-squares relation is fitted to the (Z, R) moments of the drop-size spectra of the trailing
  hours (the FMCW mode of the same radar);
- the EKF updates [ln a, b] (or ln a alone, the mean-field-bias variant) with the window's tips.

Input layout (what :func:`satpy_prenet.ground.simulator.simulate_site` writes): ``reflectivity_cw`` (time, dBZ,
NaN where no echo), ``radar_missing`` (time, 1 where the radar minute is missing), ``gauge_tips`` (time, with a
``bucket_mm`` attribute), regular 1-minute ``time``; ``rain_rate`` (time, mm/h), the true ground rain, if present;
``drop_spectrum`` (time, height, diameter) with ``diameter_width`` and ``fall_speed`` for the dynamic relation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import xarray as xr

from satpy_prenet.evaluation.metrics import RegressionScores, regression_scores
from satpy_prenet.ground.ekf import ZREKF, EKFConfig
from satpy_prenet.ground.simulator import gate_moments
from satpy_prenet.ground.zr import MARSHALL_PALMER, PRESETS, ZR, dbz_to_linear, dynamic_zr

_REQUIRED = ("reflectivity_cw", "radar_missing", "gauge_tips")


@dataclass(frozen=True)
class Windows:
    """A radar-gauge record cut into windows.

    Attributes:
        end: End time of each window.
        z: Linear reflectivity per window and sample (0: no echo, NaN: missing).
        sample_hours: Duration of one sample in hours.
        tips: Gauge tips per window.
        bucket_mm: Gauge bucket size.
        truth_mm: True ground rain per window (NaN when the record has none).
    """

    end: np.ndarray
    z: np.ndarray
    sample_hours: float
    tips: np.ndarray
    bucket_mm: float
    truth_mm: np.ndarray

    @property
    def gauge_mm(self) -> np.ndarray:
        """Gauge accumulation per window."""
        return self.tips * self.bucket_mm

    def radar_mm(self, relation: ZR, rows=slice(None)) -> np.ndarray:
        """Rain per window (of the given rows) with one relation (NaN where a sample is missing)."""
        return np.sum(relation.rain_rate(self.z[rows]), axis=-1) * self.sample_hours

    @property
    def wet(self) -> np.ndarray:
        """Windows scored: rain at the ground, a gauge tip or a radar echo."""
        with np.errstate(invalid="ignore"):
            echo = np.nansum(self.z, axis=1) > 0
        return echo | (self.tips > 0) | (np.nan_to_num(self.truth_mm) > 0)


def windows_from_record(record: xr.Dataset, minutes: int = 30) -> Windows:
    """Cut a 1-minute radar-gauge record into windows of ``minutes`` (a trailing partial window is dropped).

    Raises:
        ValueError: Missing variables, a record shorter than one window, or a time step other than 1 minute.
    """
    missing = [name for name in _REQUIRED if name not in record]
    if missing:
        raise ValueError(f"radar-gauge record lacks {missing}")
    steps = np.diff(record["time"].values)
    wrong = np.flatnonzero(steps != np.timedelta64(1, "m"))
    if wrong.size:
        raise ValueError(f"radar-gauge record must have a regular 1-minute time step, got {steps[wrong[0]]} after "
                         f"{record['time'].values[wrong[0]]}")
    count = record.sizes["time"] // minutes
    if count == 0:
        raise ValueError(f"radar-gauge record shorter than one {minutes}-minute window")
    size = count * minutes
    dbz = record["reflectivity_cw"].values[:size]
    missing_minute = record["radar_missing"].values[:size].astype(bool)
    z = np.where(missing_minute, np.nan, np.where(np.isnan(dbz), 0.0, dbz_to_linear(np.nan_to_num(dbz))))
    truth = (record["rain_rate"].values[:size].reshape(count, minutes).sum(axis=1) / 60.0
             if "rain_rate" in record else np.full(count, np.nan))
    return Windows(end=record["time"].values[minutes - 1:size:minutes], z=z.reshape(count, minutes),
                   sample_hours=1 / 60.0, tips=record["gauge_tips"].values[:size].reshape(count, minutes).sum(axis=1),
                   bucket_mm=float(record["gauge_tips"].attrs["bucket_mm"]), truth_mm=truth)


def dynamic_least_squares(windows: Windows, z_pairs: np.ndarray, r_pairs: np.ndarray, history_hours: float = 2.0,
                          min_pairs: int = 20, initial: ZR = MARSHALL_PALMER) -> tuple[np.ndarray, list[ZR]]:
    """One-step-ahead rain of a relation refitted before every window to the drop-spectrum (Z, R) pairs.

    This is the dynamic Z-R of a site with a disdrometer or an FMCW rain radar: Z = a R^b is fitted by least squares
    to the per-minute moments of the measured spectra of the trailing ``history_hours`` and applied to the CW
    reflectivity of the next window. It follows the drop-size changes but, unlike the EKF, never sees the gauge, so
    a calibration bias of the CW reflectivity stays. Where the trailing hours hold too few pairs, or the fit leaves
    the physical bounds the EKF keeps to (a in [50, 1000], b in [1.0, 1.8]), the last relation, at first
    ``initial``, is kept.

    Args:
        windows: The record.
        z_pairs: Linear reflectivity of the spectra, one per minute of the record.
        r_pairs: Rain rate of the spectra, one per minute.
        history_hours: Length of the moving window.
        min_pairs: Fewest pairs (R > 0.1 mm/h) for a fit.
        initial: Relation used before the first fit.

    Returns:
        Rain per window (mm) and the relation used for each window.
    """
    minutes = windows.z.shape[1]
    size = len(windows.end) * minutes
    times = np.arange(size, dtype=float) * 60.0
    a, b = dynamic_zr(times, z_pairs[:size], r_pairs[:size], history_hours * 3600.0, min_pairs=min_pairs)
    bounds = EKFConfig()
    relation, used, estimates = initial, [], np.empty(len(windows.end))
    for index in range(len(windows.end)):
        last = index * minutes - 1  # the fit of the minutes before the window
        if last >= 0 and bounds.a_bounds[0] <= a[last] <= bounds.a_bounds[1] \
                and bounds.b_bounds[0] <= b[last] <= bounds.b_bounds[1]:
            relation = ZR(float(a[last]), float(b[last]), "dynamic_ls")
        used.append(relation)
        estimates[index] = windows.radar_mm(relation, index)
    return estimates, used


def ekf_estimates(windows: Windows, ekf: ZREKF) -> tuple[np.ndarray, list]:
    """One-step-ahead rain of an EKF relation, updated with each window's tips after its estimate.

    Returns:
        Rain per window (mm, NaN where a sample is missing) and the filter's step records.
    """
    estimates, records = np.empty(len(windows.end)), []
    for index, end in enumerate(windows.end):
        estimates[index] = windows.radar_mm(ekf.relation, index)
        records.append(ekf.step(windows.z[index], windows.sample_hours, int(windows.tips[index]), end))
    return estimates, records


@dataclass(frozen=True)
class MethodResult:
    """One method's estimates and scores over a record.

    Attributes:
        name: Method name.
        estimates_mm: Rain per window.
        final: The relation held at the end of the record.
        scores: Scores of the wet windows against the reference.
    """

    name: str
    estimates_mm: np.ndarray
    final: ZR
    scores: RegressionScores


def compare_relations(record: xr.Dataset, minutes: int = 30, reference: str = "truth",
                      ekf_config: EKFConfig | None = None, initial: ZR = MARSHALL_PALMER,
                      history_hours: float = 2.0) -> tuple[Windows, list[MethodResult]]:
    """Run the preset relations, the dynamic least-squares relation and the two EKF variants over a record.

    Args:
        record: Radar-gauge record (layout in the module docstring).
        minutes: Window length.
        reference: Score against the ``"truth"`` (true ground rain) or the ``"gauge"`` accumulation.
        ekf_config: Filter settings (the bucket size is taken from the record).
        initial: Starting relation of the dynamic and EKF methods.
        history_hours: Moving window of the dynamic least-squares fit.

    Returns:
        The windows and one result per method: the presets, ``dynamic_ls`` (only when the record has drop-size
        spectra), ``ekf`` and ``ekf_fixed_b``.
    """
    if reference not in ("truth", "gauge"):
        raise ValueError(f"reference must be 'truth' or 'gauge', got {reference!r}")
    windows = windows_from_record(record, minutes)
    target = windows.truth_mm if reference == "truth" else windows.gauge_mm
    if reference == "truth" and not np.any(np.isfinite(target)):
        raise ValueError("the record has no true rain (rain_rate); score against the gauge instead")
    wet = windows.wet
    settings = dict(vars(ekf_config or EKFConfig()), bucket_mm=windows.bucket_mm)
    results = []

    def add(name, estimates, final):
        results.append(MethodResult(name, estimates, final, regression_scores(estimates[wet], target[wet])))

    for relation in PRESETS.values():
        add(relation.name, windows.radar_mm(relation), relation)
    if "drop_spectrum" in record:
        height = float(record["reflectivity_cw"].attrs.get("height_m", record["height"].values[-1]))
        z_pairs, r_pairs = gate_moments(record, height)
        estimates, used = dynamic_least_squares(windows, z_pairs, r_pairs, history_hours=history_hours,
                                                initial=initial)
        add("dynamic_ls", estimates, used[-1])
    for name, fixed_b in (("ekf", False), ("ekf_fixed_b", True)):
        ekf = ZREKF(initial.a, initial.b, config=EKFConfig(**settings), fixed_b=fixed_b)
        estimates, _ = ekf_estimates(windows, ekf)
        add(name, estimates, ZR(ekf.a, ekf.b, name))
    return windows, results
