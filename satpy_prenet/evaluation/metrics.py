# SPDX-License-Identifier: GPL-3.0-or-later
"""Pooled skill scores as in the PRE-Net paper's tables: RMSE, Pearson CC, POD, FAR, CSI, and CSI-4 / CSI-8.

Rain is a rate of at least the threshold (0.1 mm/h): the inequality is inclusive, unlike pysteps' categorical
scores, which use a strict ``>``. Pixels whose label or prediction is not finite are left out. CSI-k scores the
maxima of non-overlapping k x k blocks instead of pixels (a displacement of less than a block is not a miss); a block
holding any invalid pixel is left out, and the counts are summed over the evaluated set (:func:`block_counts`).
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


def block_counts(prediction: np.ndarray, label: np.ndarray, block: int,
                 threshold: float = RAIN_THRESHOLD) -> np.ndarray:
    """Hits, misses and false alarms of the maxima of non-overlapping ``block`` x ``block`` blocks.

    Args:
        prediction: Rates (..., H, W), mm/h; rows and columns beyond a whole number of blocks are ignored.
        label: Labels of the same shape; a block with any non-finite label or prediction is left out.
        block: Side of the blocks in pixels.
        threshold: Rain threshold (inclusive).

    Returns:
        ``[hits, misses, false_alarms]`` as int64; sum them over a set, then :func:`csi_from_counts`.
    """
    prediction = np.asarray(prediction, dtype=np.float64)
    label = np.asarray(label, dtype=np.float64)
    if prediction.shape != label.shape or prediction.ndim < 2:
        raise ValueError(f"prediction {prediction.shape} and label {label.shape} must be equal images (..., H, W)")
    rows, cols = (size - size % block for size in label.shape[-2:])
    blocks = (*label.shape[:-2], rows // block, block, cols // block, block)
    pred = prediction[..., :rows, :cols].reshape(blocks)
    true = label[..., :rows, :cols].reshape(blocks)
    valid = (np.isfinite(pred) & np.isfinite(true)).all(axis=(-3, -1))
    pred_rain = pred.max(axis=(-3, -1))[valid] >= threshold
    true_rain = true.max(axis=(-3, -1))[valid] >= threshold
    return np.array([np.count_nonzero(pred_rain & true_rain), np.count_nonzero(~pred_rain & true_rain),
                     np.count_nonzero(pred_rain & ~true_rain)], dtype=np.int64)


def csi_from_counts(counts: np.ndarray) -> float:
    """CSI of summed ``[hits, misses, false_alarms]`` (NaN when all are zero)."""
    hits, misses, false_alarms = (int(value) for value in counts)
    return _ratio(hits, hits + misses + false_alarms)


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation; 0 when either side is constant (as the paper's tables count it)."""
    if a.size < 2 or np.std(a) == 0 or np.std(b) == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


def _ratio(numerator: int, denominator: int) -> float:
    return numerator / denominator if denominator else float("nan")
