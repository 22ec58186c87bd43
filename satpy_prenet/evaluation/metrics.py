# SPDX-License-Identifier: GPL-3.0-or-later
"""Pooled skill scores as in the PRE-Net paper's tables: RMSE, Pearson CC, POD, FAR, CSI, and CSI-4 / CSI-8.

Rain is a rate of at least the threshold (0.1 mm/h): the inequality is inclusive, unlike pysteps' categorical
scores, which use a strict ``>``. Pixels whose label or prediction is not finite are left out. CSI-k scores the
maxima of non-overlapping k x k blocks instead of pixels (a displacement of less than a block is not a miss); a block
holding any invalid pixel is left out, and the counts are summed over the evaluated set (:func:`block_counts`).

:class:`StreamingScores` gives the same scores batch by batch from running float64 sums, so that a test split of
any size is scored in constant memory.
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
    pred, true = _valid_pairs(prediction, label)
    rmse = float(np.sqrt(np.mean((pred - true) ** 2))) if pred.size else float("nan")
    return _scores(rmse, pearson(pred, true), *_contingency(pred, true, threshold), pred.size)


def _valid_pairs(prediction: np.ndarray, label: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The finite (prediction, label) pairs as float64, after checking that the shapes agree."""
    prediction = np.asarray(prediction, dtype=np.float64)
    label = np.asarray(label, dtype=np.float64)
    if prediction.shape != label.shape:
        raise ValueError(f"prediction shape {prediction.shape} differs from label shape {label.shape}")
    valid = np.isfinite(prediction) & np.isfinite(label)
    return prediction[valid], label[valid]


def _contingency(pred: np.ndarray, true: np.ndarray, threshold: float) -> tuple[int, int, int]:
    """Hits, misses and false alarms (rain where the rate is at least ``threshold``)."""
    pred_rain, true_rain = pred >= threshold, true >= threshold
    return (np.count_nonzero(pred_rain & true_rain), np.count_nonzero(~pred_rain & true_rain),
            np.count_nonzero(pred_rain & ~true_rain))


def _scores(rmse: float, cc: float, hits: float, misses: float, false_alarms: float, n_pixels: float) -> Scores:
    """Scores from the RMSE, the CC and the contingency counts."""
    return Scores(rmse=rmse, cc=cc, pod=_ratio(hits, hits + misses), far=_ratio(false_alarms, hits + false_alarms),
                  csi=_ratio(hits, hits + misses + false_alarms), n_pixels=int(n_pixels))


class StreamingScores:
    """Pooled scores accumulated batch by batch: equal to :func:`scores` (and CSI-k) over the concatenated batches.

    Keeps float64 running sums (pixel count, sums, squares and cross products of prediction and label, squared
    error, hits, misses and false alarms) and the summed block counts of each block size; memory does not grow with
    the number of pixels.

    Args:
        threshold: Rain threshold in mm/h (inclusive).
        blocks: Block sizes of the neighbourhood CSIs (e.g. ``(4, 8)`` for CSI-4 and CSI-8).
    """

    _FIELDS = ("n", "sum_p", "sum_t", "sum_pp", "sum_tt", "sum_pt", "sse", "hits", "misses", "false_alarms")

    def __init__(self, threshold: float = RAIN_THRESHOLD, blocks: tuple[int, ...] = ()) -> None:
        self.threshold = threshold
        self.sums = np.zeros(len(self._FIELDS), np.float64)
        self.blocks = {size: np.zeros(3, np.int64) for size in blocks}

    def update(self, prediction: np.ndarray, label: np.ndarray) -> None:
        """Add a batch of rates and labels (same shape, mm/h; images (..., H, W) when block sizes are set)."""
        pred, true = _valid_pairs(prediction, label)
        self.sums += [pred.size, pred.sum(), true.sum(), pred @ pred, true @ true, pred @ true,
                      (pred - true) @ (pred - true), *_contingency(pred, true, self.threshold)]
        for size, counts in self.blocks.items():
            counts += block_counts(prediction, label, size, self.threshold)

    def result(self) -> Scores:
        """The pooled scores so far (NaN where undefined; CC 0 when either side is constant)."""
        n, sum_p, sum_t, sum_pp, sum_tt, sum_pt, sse, hits, misses, false_alarms = self.sums.tolist()
        rmse = float(np.sqrt(sse / n)) if n else float("nan")
        return _scores(rmse, _pearson_from_sums(n, sum_p, sum_t, sum_pp, sum_tt, sum_pt), hits, misses,
                       false_alarms, n)

    def block_csi(self) -> dict[str, float]:
        """``{"csi4": ..., "csi8": ...}``: CSI of the summed block counts of each block size."""
        return {f"csi{size}": csi_from_counts(counts) for size, counts in self.blocks.items()}


def _pearson_from_sums(n: float, sum_p: float, sum_t: float, sum_pp: float, sum_tt: float, sum_pt: float) -> float:
    """Pearson correlation from running sums; 0 when either side is constant or fewer than 2 pixels."""
    if n < 2:
        return 0.0
    var_p = max(sum_pp - sum_p * sum_p / n, 0.0)
    var_t = max(sum_tt - sum_t * sum_t / n, 0.0)
    tiny = 1e-12 * n  # rounding of the sums of a constant side
    if var_p <= tiny * max(1.0, sum_pp / n) or var_t <= tiny * max(1.0, sum_tt / n):
        return 0.0
    return float((sum_pt - sum_p * sum_t / n) / np.sqrt(var_p * var_t))


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


@dataclass(frozen=True)
class RegressionScores:
    """Scores of an estimate against a reference, as the ground system's tables give them.

    ``r2`` is the coefficient of determination 1 - SSE / SST (negative when the estimate is worse than the
    reference's mean); ``pearson_r`` is the correlation coefficient, which some papers also call R^2.
    """

    rmse: float
    mae: float
    r2: float
    pearson_r: float
    bias: float
    n: int

    def to_dict(self) -> dict:
        """Plain dictionary of the scores."""
        return asdict(self)


def regression_scores(estimate: np.ndarray, reference: np.ndarray) -> RegressionScores:
    """RMSE, MAE, coefficient of determination, Pearson r and mean bias over the finite pairs."""
    estimate, reference = _valid_pairs(np.asarray(estimate, dtype=float), np.asarray(reference, dtype=float))
    if estimate.size == 0:
        raise ValueError("regression_scores: no finite (estimate, reference) pairs")
    error = estimate - reference
    spread = np.sum((reference - reference.mean()) ** 2)
    return RegressionScores(
        rmse=float(np.sqrt(np.mean(error**2))), mae=float(np.mean(np.abs(error))),
        r2=float(1.0 - np.sum(error**2) / spread) if spread > 0 else float("nan"),
        pearson_r=pearson(estimate, reference), bias=float(np.mean(error)), n=int(estimate.size))


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else float("nan")
