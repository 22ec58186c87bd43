# SPDX-License-Identifier: GPL-3.0-or-later
"""Pooled skill scores as in the PRE-Net paper's tables: RMSE, Pearson CC, POD, FAR and CSI.

Rain is a rate of at least the threshold (0.1 mm/h): the inequality is inclusive, unlike pysteps' categorical
scores, which use a strict ``>``. Pixels whose label or prediction is not finite are left out.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

RAIN_THRESHOLD = 0.1


@dataclass(frozen=True)
class Scores:
    """Scores pooled over all valid pixels of an evaluated set."""

    rmse: float
    cc: float
    pod: float
    far: float
    csi: float
    n_pixels: int

    def to_dict(self) -> dict:
        """Plain dict, e.g. for a bundle's provenance."""
        return asdict(self)


def scores(prediction: np.ndarray, label: np.ndarray, threshold: float = RAIN_THRESHOLD) -> Scores:
    """Pooled scores of ``prediction`` against ``label`` (same shape, mm/h)."""
    prediction = np.asarray(prediction, dtype=np.float64)
    label = np.asarray(label, dtype=np.float64)
    if prediction.shape != label.shape:
        raise ValueError(f"prediction shape {prediction.shape} differs from label shape {label.shape}")
    valid = np.isfinite(prediction) & np.isfinite(label)
    pred, true = prediction[valid], label[valid]
    hits = np.count_nonzero((pred >= threshold) & (true >= threshold))
    misses = np.count_nonzero((pred < threshold) & (true >= threshold))
    false_alarms = np.count_nonzero((pred >= threshold) & (true < threshold))
    return Scores(
        rmse=float(np.sqrt(np.mean((pred - true) ** 2))) if pred.size else float("nan"),
        cc=pearson(pred, true),
        pod=_ratio(hits, hits + misses),
        far=_ratio(false_alarms, hits + false_alarms),
        csi=_ratio(hits, hits + misses + false_alarms),
        n_pixels=int(pred.size),
    )


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation; 0 when either side is constant (as the paper's tables count it)."""
    if a.size < 2 or np.std(a) == 0 or np.std(b) == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else float("nan")
