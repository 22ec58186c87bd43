# SPDX-License-Identifier: GPL-3.0-or-later
"""Skill scores of a precipitation retrieval: the PRE-Net paper's table, MAE, bias, HSS, FSS, by threshold and class.

The paper's pooled RMSE, Pearson CC, POD, FAR, CSI, CSI-4 and CSI-8 come with MAE, mean bias, the Heidke skill score
(HSS) and the fractions skill score (FSS), the categorical scores by threshold and the continuous ones by rate class.

Conventions:

- Rain is a rate of at least the threshold (default 0.1 mm/h): the inequality is inclusive (``>=``), unlike pysteps'
  categorical scores, which use a strict ``>``.
- Pixels whose label or prediction is not finite (NaN, inf) are left out of every score.
- Scores are pooled: sums and counts over every valid pixel of the evaluated set, then one score (not a mean of
  per-image scores). A ratio with a zero denominator is NaN; the Pearson CC is 0 when either side is constant (as the
  paper's tables count it) and NaN when there is no pixel. Bias is the mean of prediction - label.
- CSI-k scores the maxima of non-overlapping k x k blocks instead of pixels (a displacement of less than a block is
  not a miss); a block holding any invalid pixel is left out, rows and columns beyond whole blocks are ignored.
- The FSS (Roberts and Lean, 2008) compares the fractions of rain pixels in centred n x n windows (n odd). Invalid
  pixels are missing in both fields: a fraction is taken over the valid pixels of its window only (normalised
  convolution; pixels beyond the image edge count as missing, not as dry), and scored at valid pixels only (the
  `scores` package and pysteps count NaN and the outside as dry instead). Its numerator and denominator are summed
  over all valid pixels of all images before the ratio is taken (aggregation as in Mittermaier, 2021).
- Rate classes select pixels by their label.

:class:`StreamingScores` accumulates all of them batch by batch in constant memory; :func:`scores` is the pixel
scores of one array pair. Inputs may be numpy arrays, xarray DataArrays (dask-backed too) or torch tensors
(:func:`as_float64`).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.ndimage import uniform_filter

#: Rain / no-rain threshold of labels and products, mm/h (inclusive: rain where rate >= threshold); the one
#: definition every part of the project (losses, builder, products, scores) uses.
RAIN_THRESHOLD = 0.1
#: Rain thresholds (mm/h) of the categorical scores by threshold.
THRESHOLDS = (0.1, 1.0, 2.0, 5.0, 10.0, 20.0)
#: Classes [lower, upper) of the label's rate (mm/h) of the continuous scores by class.
RATE_CLASSES = ((0.1, 1.0), (1.0, 5.0), (5.0, 10.0), (10.0, 20.0), (20.0, math.inf))
#: Window sides (pixels, odd) of the fractions skill score.
FSS_SCALES = (1, 5, 11, 21)
#: The paper's table columns in its order (for blocks ``(4, 8)``), then the extras.
PAPER_COLUMNS = ("rmse", "cc", "pod", "far", "csi", "csi4", "csi8", "mae", "bias", "hss")


@dataclass(frozen=True)
class Scores:
    """Scores pooled over all valid pixels of an evaluated set (categorical ones at one threshold)."""

    rmse: float
    cc: float
    pod: float
    far: float
    csi: float
    mae: float
    bias: float
    hss: float
    n_pixels: int

    def to_dict(self) -> dict:
        """Plain dict, e.g. for a bundle's provenance."""
        return asdict(self)


def as_float64(values: Any) -> np.ndarray:
    """``values`` as a float64 numpy array: numpy, xarray (dask-backed too) or a torch tensor on any device."""
    torch = sys.modules.get("torch")  # a tensor exists only once torch is imported
    if torch is not None and isinstance(values, torch.Tensor):
        return values.detach().to(device="cpu", dtype=torch.float64).numpy()
    return np.asarray(values, dtype=np.float64)


def scores(prediction: Any, label: Any, threshold: float = RAIN_THRESHOLD) -> Scores:
    """Pooled pixel scores of ``prediction`` against ``label`` (same shape, mm/h)."""
    accumulator = StreamingScores(threshold, thresholds=(), rate_classes=(), fss_scales=())
    accumulator.update(prediction, label)
    return accumulator.result()


class StreamingScores:
    """All scores accumulated batch by batch: equal to the pooled scores over the concatenated batches.

    Keeps float64 running sums (pixel count, sums, squares and cross products of prediction and label, squared and
    absolute errors) overall and per rate class, integer contingency counts per threshold for pixels and for each
    block size, and the two FSS sums per threshold and scale; memory does not grow with the number of pixels.

    Args:
        threshold: Rain threshold (mm/h, inclusive) of :meth:`result`, :meth:`block_csi` and :meth:`table_row`.
        blocks: Block sizes of the neighbourhood CSIs (e.g. ``(4, 8)`` for CSI-4 and CSI-8).
        thresholds: Thresholds of :meth:`by_threshold`; ``threshold`` is added to them.
        rate_classes: Label classes ``(lower, upper)`` of :meth:`by_rate_class`.
        fss_scales: Odd window sides of the FSS (e.g. :data:`FSS_SCALES`); none by default, since the box filters
            cost about ten times the other scores (training and export score without them).
    """

    def __init__(self, threshold: float = RAIN_THRESHOLD, blocks: tuple[int, ...] = (),
                 thresholds: Sequence[float] = THRESHOLDS,
                 rate_classes: Sequence[tuple[float, float]] = RATE_CLASSES,
                 fss_scales: Sequence[int] = ()) -> None:
        if any(size < 1 or size % 2 == 0 for size in fss_scales):
            raise ValueError(f"FSS window sides must be odd and positive, not {tuple(fss_scales)}")
        self.threshold = threshold
        self.thresholds = tuple(sorted({float(threshold), *map(float, thresholds)}))
        self.rate_classes = tuple(rate_classes)
        self.moments = np.zeros(len(_MOMENTS), np.float64)
        self.class_moments = np.zeros((len(self.rate_classes), len(_MOMENTS)), np.float64)
        self.counts = np.zeros((len(self.thresholds), 4), np.int64)
        self.blocks = {size: np.zeros((len(self.thresholds), 4), np.int64) for size in blocks}
        self.fss = {size: np.zeros((len(self.thresholds), 2), np.float64) for size in fss_scales}

    def update(self, prediction: Any, label: Any) -> None:
        """Add a batch of rates and labels (same shape, mm/h; images (..., H, W) for block and FSS scores)."""
        prediction, label = as_float64(prediction), as_float64(label)
        for size, counts in self.blocks.items():  # first: a batch that is not images changes nothing
            counts += _contingency(*_block_maxima(prediction, label, size), self.thresholds)
        for size, sums in self.fss.items():
            sums += fss_sums(prediction, label, size, self.thresholds)
        pred, true = _valid_pairs(prediction, label)
        self.moments += _moments(pred, true)
        self.counts += _contingency(pred, true, self.thresholds)
        for row, (lower, upper) in zip(self.class_moments, self.rate_classes, strict=True):
            inside = (true >= lower) & (true < upper)
            row += _moments(pred[inside], true[inside])

    def result(self) -> Scores:
        """The pooled pixel scores so far, categorical ones at ``threshold``."""
        return Scores(**_continuous(self.moments), **_categorical(self.counts[self._index]),
                      n_pixels=int(self.moments[0]))

    def block_csi(self) -> dict[str, float]:
        """``{"csi4": ..., "csi8": ...}``: CSI of the summed block counts of each block size at ``threshold``."""
        return {f"csi{size}": _categorical(counts[self._index])["csi"] for size, counts in self.blocks.items()}

    def table_row(self) -> dict[str, float]:
        """The paper's row: RMSE, CC, POD, FAR, CSI, CSI-k per block size, MAE, bias, HSS (:data:`PAPER_COLUMNS`)."""
        pixels = self.result().to_dict()
        return {**{key: pixels[key] for key in ("rmse", "cc", "pod", "far", "csi")}, **self.block_csi(),
                **{key: pixels[key] for key in ("mae", "bias", "hss")}}

    def by_threshold(self) -> list[dict[str, float]]:
        """Per threshold: ``threshold``, ``pod``, ``far``, ``csi``, ``hss``, ``csi<k>`` per block, ``fss_<n>``."""
        rows = []
        for index, threshold in enumerate(self.thresholds):
            row = {"threshold": threshold, **_categorical(self.counts[index])}
            row.update({f"csi{size}": _categorical(counts[index])["csi"] for size, counts in self.blocks.items()})
            row.update({f"fss_{size}": fss_from_sums(sums[index]) for size, sums in self.fss.items()})
            rows.append(row)
        return rows

    def by_rate_class(self) -> list[dict[str, float]]:
        """Per label class: ``lower``, ``upper`` (``inf`` for the last), ``n``, ``rmse``, ``mae``, ``bias``, ``cc``."""
        return [{"lower": float(lower), "upper": float(upper), "n": int(moments[0]), **_continuous(moments)}
                for (lower, upper), moments in zip(self.rate_classes, self.class_moments, strict=True)]

    @property
    def _index(self) -> int:
        """Row of ``threshold`` in the per-threshold counts."""
        return self.thresholds.index(float(self.threshold))


_MOMENTS = ("n", "sum_p", "sum_t", "sum_pp", "sum_tt", "sum_pt", "sse", "sae")


def _valid_pairs(prediction: np.ndarray, label: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The finite (prediction, label) pairs, flattened, after checking that the shapes agree."""
    if prediction.shape != label.shape:
        raise ValueError(f"prediction shape {prediction.shape} differs from label shape {label.shape}")
    valid = np.isfinite(prediction) & np.isfinite(label)
    return prediction[valid], label[valid]


def _moments(pred: np.ndarray, true: np.ndarray) -> np.ndarray:
    """Running sums of valid pairs, in the order of ``_MOMENTS``."""
    error = pred - true
    return np.array([pred.size, pred.sum(), true.sum(), pred @ pred, true @ true, pred @ true, error @ error,
                     np.abs(error).sum()])


def _continuous(moments: np.ndarray) -> dict[str, float]:
    """RMSE, MAE, bias and CC from running sums (NaN without pixels)."""
    n, sum_p, sum_t, sum_pp, sum_tt, sum_pt, sse, sae = moments.tolist()
    if not n:
        return {"rmse": math.nan, "mae": math.nan, "bias": math.nan, "cc": math.nan}
    return {"rmse": math.sqrt(sse / n), "mae": sae / n, "bias": (sum_p - sum_t) / n,
            "cc": _pearson_from_sums(n, sum_p, sum_t, sum_pp, sum_tt, sum_pt)}


def _pearson_from_sums(n: float, sum_p: float, sum_t: float, sum_pp: float, sum_tt: float, sum_pt: float) -> float:
    """Pearson correlation from running sums; 0 when either side is constant or there is one pixel."""
    if n < 2:
        return 0.0
    var_p = max(sum_pp - sum_p * sum_p / n, 0.0)
    var_t = max(sum_tt - sum_t * sum_t / n, 0.0)
    tiny = 1e-12 * n  # rounding of the sums of a constant side
    if var_p <= tiny * max(1.0, sum_pp / n) or var_t <= tiny * max(1.0, sum_tt / n):
        return 0.0
    return float((sum_pt - sum_p * sum_t / n) / np.sqrt(var_p * var_t))


def _contingency(pred: np.ndarray, true: np.ndarray, thresholds: Sequence[float]) -> np.ndarray:
    """Hits, misses, false alarms and correct negatives per threshold, int64 (len(thresholds), 4)."""
    counts = np.zeros((len(thresholds), 4), np.int64)
    for row, threshold in zip(counts, thresholds, strict=True):
        pred_rain, true_rain = pred >= threshold, true >= threshold
        hits = np.count_nonzero(pred_rain & true_rain)
        row[:] = (hits, np.count_nonzero(true_rain) - hits, np.count_nonzero(pred_rain) - hits,
                  np.count_nonzero(~(pred_rain | true_rain)))
    return counts


def _categorical(counts: np.ndarray) -> dict[str, float]:
    """POD, FAR, CSI and HSS of ``[hits, misses, false_alarms, correct_negatives]``."""
    hits, misses, false_alarms, negatives = (int(value) for value in counts)
    chance = (hits + misses) * (misses + negatives) + (hits + false_alarms) * (false_alarms + negatives)
    return {"pod": _ratio(hits, hits + misses), "far": _ratio(false_alarms, hits + false_alarms),
            "csi": _ratio(hits, hits + misses + false_alarms),
            "hss": _ratio(2 * (hits * negatives - misses * false_alarms), chance)}


def _images(prediction: Any, label: Any) -> tuple[np.ndarray, np.ndarray]:
    """Both as float64 arrays, after checking that they are images (..., H, W) of the same shape."""
    prediction, label = as_float64(prediction), as_float64(label)
    if prediction.shape != label.shape or prediction.ndim < 2:
        raise ValueError(f"prediction {prediction.shape} and label {label.shape} must be equal images (..., H, W)")
    return prediction, label


def _block_maxima(prediction: Any, label: Any, block: int) -> tuple[np.ndarray, np.ndarray]:
    """Maxima of the non-overlapping ``block`` x ``block`` blocks without an invalid pixel, flattened."""
    prediction, label = _images(prediction, label)
    rows, cols = (size - size % block for size in label.shape[-2:])
    blocks = (*label.shape[:-2], rows // block, block, cols // block, block)
    pred = prediction[..., :rows, :cols].reshape(blocks)
    true = label[..., :rows, :cols].reshape(blocks)
    valid = (np.isfinite(pred) & np.isfinite(true)).all(axis=(-3, -1))
    return pred.max(axis=(-3, -1))[valid], true.max(axis=(-3, -1))[valid]


def block_counts(prediction: Any, label: Any, block: int, threshold: float = RAIN_THRESHOLD) -> np.ndarray:
    """Hits, misses and false alarms of the maxima of non-overlapping ``block`` x ``block`` blocks.

    Args:
        prediction: Rates (..., H, W), mm/h; rows and columns beyond a whole number of blocks are ignored.
        label: Labels of the same shape; a block with any non-finite label or prediction is left out.
        block: Side of the blocks in pixels.
        threshold: Rain threshold (inclusive).

    Returns:
        ``[hits, misses, false_alarms]`` as int64; sum them over a set, then :func:`csi_from_counts`.
    """
    return _contingency(*_block_maxima(prediction, label, block), (threshold,))[0, :3]


def csi_from_counts(counts: np.ndarray) -> float:
    """CSI of summed ``[hits, misses, false_alarms]`` (NaN when all are zero)."""
    hits, misses, false_alarms = (int(value) for value in counts[:3])
    return _ratio(hits, hits + misses + false_alarms)


def fss_sums(prediction: Any, label: Any, size: int, thresholds: Sequence[float] = THRESHOLDS) -> np.ndarray:
    """Sums of the FSS over the valid pixels of images (..., H, W), per threshold.

    Args:
        prediction: Rates (..., H, W), mm/h.
        label: Labels of the same shape; non-finite pixels of either are missing in both.
        size: Odd side of the centred window in pixels.
        thresholds: Rain thresholds (inclusive).

    Returns:
        float64 (len(thresholds), 2): sum of (F_pred - F_label)^2 and of F_pred^2 + F_label^2, where F is the rain
        fraction among the valid pixels of the window; sum them over a set, then :func:`fss_from_sums`.
    """
    prediction, label = _images(prediction, label)
    valid = np.isfinite(prediction) & np.isfinite(label)
    coverage = _window_counts(valid, size).ravel()
    # 1 / coverage turns counts into fractions; 0 leaves the invalid pixels unscored
    weight = np.divide(1.0, coverage, out=np.zeros(coverage.shape), where=valid.ravel(), dtype=np.float64)
    sums = np.zeros((len(thresholds), 2), np.float64)
    for row, threshold in zip(sums, thresholds, strict=True):
        pred = _window_counts(valid & (prediction >= threshold), size).ravel() * weight
        true = _window_counts(valid & (label >= threshold), size).ravel() * weight
        difference = pred - true
        row[:] = difference @ difference, pred @ pred + true @ true
    return sums


def _window_counts(mask: np.ndarray, size: int) -> np.ndarray:
    """Number of set pixels in the centred ``size`` x ``size`` window of each pixel (none beyond the edges).

    A float32 box filter rounded to whole counts: exact while a window holds fewer than about a million pixels.
    """
    window = (1,) * (mask.ndim - 2) + (size, size)
    return np.rint(uniform_filter(mask.astype(np.float32), window, mode="constant") * np.float32(size * size))


def fss_from_sums(sums: np.ndarray) -> float:
    """FSS of summed ``[sum (F_pred - F_label)^2, sum F_pred^2 + F_label^2]`` (NaN when neither field has rain)."""
    difference, reference = (float(value) for value in sums)
    return 1.0 - difference / reference if reference else math.nan


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
    estimate, reference = _valid_pairs(as_float64(estimate), as_float64(reference))
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
