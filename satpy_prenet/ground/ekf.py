# SPDX-License-Identifier: GPL-3.0-or-later
"""Extended Kalman filter tracking Z = a R^b against rain-gauge accumulations.

The state is x = [ln a, b] with a random-walk process model. Each step brings the radar reflectivities of one
accumulation window and the gauge tips in it; the observation is y = ln G with G = tips x bucket size and the
forward model is h(x) = ln sum_i (Z_i / a)^(1/b) dt_i (rates are summed, Z is never averaged). With
``fixed_b=True`` the filter is the mean-field-bias variant: b stays at its initial value and only ln a, a
multiplicative bias on the rain (R scales as a^(-1/b)), is tracked.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from satpy_prenet.atomic import atomic_path
from satpy_prenet.ground.zr import ZR

LOG = logging.getLogger(__name__)

STATE_VERSION = 1


@dataclass(frozen=True)
class EKFConfig:
    """Settings of the filter.

    Attributes:
        q_ln_a: Process-noise variance of ln a per hour.
        q_b: Process-noise variance of b per hour (ignored with ``fixed_b``).
        bucket_mm: Tipping-bucket size q in mm.
        sigma_repr: Representativeness error of the gauge against the radar volume, in log space (0.1-0.3).
        min_tips: Fewest tips in a window for an update; windows with fewer are gated.
        reject_sigma: Innovations beyond this many standard deviations are rejected.
        max_rejections: After this many consecutive rejections the relation is taken to have changed (a new
            rain regime, a recalibrated radar): the next large innovation widens the covariance by its squared
            normalised size in the ln a direction and is accepted, so the filter cannot lock onto a stale relation.
        a_bounds: Physical range of a; the state is projected onto it after each update.
        b_bounds: Physical range of b.
    """

    q_ln_a: float = 0.02
    q_b: float = 0.002
    bucket_mm: float = 0.2
    sigma_repr: float = 0.2
    min_tips: int = 2
    reject_sigma: float = 3.0
    max_rejections: int = 2
    a_bounds: tuple[float, float] = (50.0, 1000.0)
    b_bounds: tuple[float, float] = (1.0, 1.8)

    def __post_init__(self):
        positive = {"q_ln_a": self.q_ln_a >= 0, "q_b": self.q_b >= 0, "bucket_mm": self.bucket_mm > 0,
                    "sigma_repr": self.sigma_repr >= 0, "min_tips": self.min_tips >= 1,
                    "reject_sigma": self.reject_sigma > 0, "max_rejections": self.max_rejections >= 0,
                    "a_bounds": 0 < self.a_bounds[0] < self.a_bounds[1],
                    "b_bounds": 0 < self.b_bounds[0] < self.b_bounds[1]}
        wrong = [key for key, ok in positive.items() if not ok]
        if wrong:
            raise ValueError(f"EKFConfig: invalid {', '.join(wrong)}")
        object.__setattr__(self, "a_bounds", tuple(float(v) for v in self.a_bounds))
        object.__setattr__(self, "b_bounds", tuple(float(v) for v in self.b_bounds))


@dataclass(frozen=True)
class StepRecord:
    """What one filter step did.

    Attributes:
        time: End of the window, seconds since the Unix epoch.
        status: ``"accepted"``, ``"rejected"`` (innovation beyond the threshold) or ``"gated"`` (no update tried).
        reason: Why a step was gated or rejected, or how an accepted step after rejections was made; else empty.
        prior: (a, b) after the prediction, before the update.
        posterior: (a, b) after the step.
        gauge_mm: Gauge accumulation G = tips x bucket size.
        radar_mm: Radar accumulation of the prior relation.
        innovation: y - h(x) in log space; NaN when gated.
        sigma: Standard deviation of the innovation; NaN when gated.
    """

    time: float
    status: str
    reason: str
    prior: tuple[float, float]
    posterior: tuple[float, float]
    gauge_mm: float
    radar_mm: float
    innovation: float
    sigma: float


def to_seconds(time):
    """Convert a numpy datetime64 or a number of seconds since the Unix epoch to float seconds."""
    if isinstance(time, np.datetime64):
        return float((time - np.datetime64(0, "s")) / np.timedelta64(1, "s"))
    return float(time)


def forward(x, z, dt):
    """Forward model h(x) = ln sum_i (Z_i / a)^(1/b) dt_i and its Jacobian.

    Args:
        x: State [ln a, b].
        z: Linear reflectivities of the window (finite, >= 0; zeros give no rain).
        dt: Duration of each sample in hours (scalar or array).

    Returns:
        (h, jacobian, radar_mm): h is -inf and the Jacobian zero when the window holds no echo. The Jacobian is
        [-1/b, -sum_i w_i ln(Z_i/a) / b^2] with w_i = R_i dt_i / sum_j R_j dt_j.
    """
    ln_a, b = x
    z = np.asarray(z, dtype=float).ravel()
    dt = np.broadcast_to(np.asarray(dt, dtype=float), z.shape)
    echo = z > 0
    log_ratio = np.log(z[echo]) - ln_a
    depth = np.exp(log_ratio / b) * dt[echo]
    total = float(depth.sum())
    if total <= 0:
        return -np.inf, np.zeros(2), 0.0
    weights = depth / total
    jacobian = np.array([-1.0 / b, -float(np.sum(weights * log_ratio)) / b**2])
    return float(np.log(total)), jacobian, total


class ZREKF:
    """Extended Kalman filter of Z = a R^b against a tipping-bucket gauge.

    Args:
        a: Initial a.
        b: Initial b (kept for good with ``fixed_b``).
        std_ln_a: Initial standard deviation of ln a.
        std_b: Initial standard deviation of b.
        config: Filter settings.
        fixed_b: Track ln a only (mean-field bias).
    """

    def __init__(self, a=200.0, b=1.6, std_ln_a=0.5, std_b=0.2, config=None, fixed_b=False):
        self.config = config or EKFConfig()
        self.fixed_b = bool(fixed_b)
        self.x = np.array([np.log(a), b], dtype=float)
        self.P = np.diag([std_ln_a**2, 0.0 if self.fixed_b else std_b**2])
        self.time = None
        self.last_update = None
        self.counters = {"steps": 0, "accepted": 0, "rejected": 0, "gated": 0}
        self.consecutive_rejections = 0
        self._project()

    @property
    def a(self):
        """Current a."""
        return float(np.exp(self.x[0]))

    @property
    def b(self):
        """Current b."""
        return float(self.x[1])

    @property
    def relation(self):
        """Current relation as a :class:`ZR`."""
        return ZR(self.a, self.b, "ekf")

    def _project(self):
        """Clip the state onto the physical box and keep the covariance symmetric with bounded variances."""
        low = np.array([np.log(self.config.a_bounds[0]), self.config.b_bounds[0]])
        high = np.array([np.log(self.config.a_bounds[1]), self.config.b_bounds[1]])
        self.x = np.clip(self.x, low, high)
        self.P = 0.5 * (self.P + self.P.T)
        cap = ((high - low) / 2) ** 2
        scale = np.sqrt(np.minimum(1.0, cap / np.maximum(np.diag(self.P), 1e-300)))
        self.P = self.P * np.outer(scale, scale)

    def _predict(self, time):
        hours = 0.0 if self.time is None else max(time - self.time, 0.0) / 3600.0
        q_b = 0.0 if self.fixed_b else self.config.q_b
        self.P = self.P + np.diag([self.config.q_ln_a, q_b]) * hours
        self.time = time
        self._project()

    def _gate(self, z, tips, radar_mm):
        if not np.all(np.isfinite(z)) or np.any(z < 0):
            return "radar reflectivity missing or negative in the window"
        if tips < self.config.min_tips:
            return f"{tips} tips < min_tips {self.config.min_tips}"
        if radar_mm <= 0:
            return "no radar echo in the window"
        return ""

    def _update(self, innovation, jacobian, variance_obs):
        if self.fixed_b:
            jacobian = jacobian * np.array([1.0, 0.0])
        ph = self.P @ jacobian
        variance = float(jacobian @ ph + variance_obs)
        sigma = float(np.sqrt(variance))
        note = ""
        if abs(innovation) > self.config.reject_sigma * sigma:
            if self.consecutive_rejections < self.config.max_rejections:
                self.consecutive_rejections += 1
                return sigma, f"|innovation| {abs(innovation):.3g} > {self.config.reject_sigma} sigma ({sigma:.3g})"
            # Open ln a alone (the bias direction) until the innovation is one standard deviation: widening b too
            # would let one window, which constrains only a ridge of (ln a, b), throw the state to the bounds.
            added = (innovation**2 - variance) / jacobian[0] ** 2
            note = f"after {self.consecutive_rejections} rejections: variance of ln a raised by {added:.3g}"
            self.P = self.P + np.diag([added, 0.0])
            ph = self.P @ jacobian
            variance = float(jacobian @ ph + variance_obs)
            sigma = float(np.sqrt(variance))
        self.consecutive_rejections = 0
        gain = ph / variance
        keep = np.eye(2) - np.outer(gain, jacobian)
        self.x = self.x + gain * innovation
        self.P = keep @ self.P @ keep.T + np.outer(gain, gain) * variance_obs
        self._project()
        return sigma, note

    def step(self, z, dt, tips, time):
        """Predict to the end of a window and update with its gauge tips.

        Args:
            z: Linear reflectivities (mm^6 m^-3) over the gauge during the window.
            dt: Duration of each reflectivity sample in hours (scalar or array).
            tips: Gauge tips counted in the window.
            time: End of the window: numpy datetime64 or seconds since the Unix epoch. Process noise grows with
                the time since the previous step.

        Returns:
            The record of the step.
        """
        time = to_seconds(time)
        z = np.asarray(z, dtype=float).ravel()
        self._predict(time)
        prior = (self.a, self.b)
        gauge_mm = tips * self.config.bucket_mm
        finite = np.where(np.isfinite(z) & (z > 0), z, 0.0)
        h, jacobian, radar_mm = forward(self.x, finite, dt)
        self.counters["steps"] += 1
        reason = self._gate(z, tips, radar_mm)
        innovation = sigma = np.nan
        if reason:
            status = "gated"
        else:
            innovation = float(np.log(gauge_mm) - h)
            variance_obs = (self.config.bucket_mm / (np.sqrt(6.0) * gauge_mm)) ** 2 + self.config.sigma_repr**2
            sigma, reason = self._update(innovation, jacobian, variance_obs)
            status = "rejected" if reason.startswith("|innovation|") else "accepted"
        self.counters[status] += 1
        if status == "accepted":
            self.last_update = time
        else:
            LOG.debug("EKF step at %s %s: %s", time, status, reason)
        return StepRecord(time, status, reason, prior, (self.a, self.b), gauge_mm, radar_mm, innovation, sigma)

    def rain_rate(self, z):
        """Rain rate (mm/h) of linear reflectivity with the current relation."""
        return self.relation.rain_rate(z)

    def to_dict(self):
        """JSON-safe state: settings, state vector, covariance, counters and times."""
        return {"version": STATE_VERSION, "config": asdict(self.config), "fixed_b": self.fixed_b,
                "x": self.x.tolist(), "P": self.P.tolist(), "counters": dict(self.counters),
                "consecutive_rejections": self.consecutive_rejections, "time": self.time,
                "last_update": self.last_update}

    @classmethod
    def from_dict(cls, state):
        """Rebuild a filter from :meth:`to_dict` output.

        Raises:
            ValueError: Missing keys, wrong version, or a state or covariance of the wrong shape or not finite.
        """
        try:
            if state["version"] != STATE_VERSION:
                raise ValueError(f"state version {state['version']!r}, expected {STATE_VERSION}")
            config = EKFConfig(**state["config"])
            x = np.asarray(state["x"], dtype=float)
            cov = np.asarray(state["P"], dtype=float)
            counters = {key: int(state["counters"][key]) for key in ("steps", "accepted", "rejected", "gated")}
            times = [None if state[key] is None else float(state[key]) for key in ("time", "last_update")]
            fixed_b = bool(state["fixed_b"])
            rejections = int(state.get("consecutive_rejections", 0))  # absent from states saved before it existed
        except (KeyError, TypeError) as err:
            raise ValueError(f"EKF state incomplete or malformed: {err!r}") from err
        if x.shape != (2,) or cov.shape != (2, 2) or not (np.all(np.isfinite(x)) and np.all(np.isfinite(cov))):
            raise ValueError("EKF state: x must be 2 finite values and P a finite 2 x 2 matrix")
        ekf = cls(config=config, fixed_b=fixed_b)
        ekf.x, ekf.P, ekf.counters, ekf.consecutive_rejections = x, cov, counters, rejections
        ekf.time, ekf.last_update = times
        return ekf

    def save(self, path):
        """Write the state as JSON atomically (:func:`satpy_prenet.atomic.atomic_path`; the folder is created)."""
        with atomic_path(Path(path)) as partial:
            partial.write_text(json.dumps(self.to_dict(), indent=1))

    @classmethod
    def load(cls, path):
        """Read a state written by :meth:`save`.

        Raises:
            FileNotFoundError: No file at ``path``.
            ValueError: The file is not valid JSON or not a valid state; the message names the file.
        """
        path = Path(path)
        text = path.read_text()
        try:
            return cls.from_dict(json.loads(text))
        except ValueError as err:
            raise ValueError(f"corrupt EKF state file {path}: {err}") from err
