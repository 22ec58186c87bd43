# SPDX-License-Identifier: GPL-3.0-or-later
"""Validation scores accumulated batch by batch and summed over processes, and the choice of the best epoch.

Classifier: the task loss and CSI, POD, FAR of "rain" (P(rain) >= 0.5 from the softmax, inclusive) against labels
>= 0.1 mm/h. Regressor: the task loss, and the RMSE over labelled pixels with rain (the pixels where the product
shows the regressed rate). Everything is kept as sums, so the scores of a distributed run equal those of one
process over the same tiles.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from satpy_prenet.evaluation.metrics import RAIN_THRESHOLD
from satpy_prenet.training.losses import RAIN_CLASS, counted_pixels, task_loss_map

#: Rain probability from which the classifier's validation counts a pixel as rain (inclusive).
VALIDATION_PROBABILITY = 0.5

#: Sums kept per head.
_FIELDS = {"classifier": ("loss_sum", "count", "hits", "misses", "false_alarms"),
           "regressor": ("loss_sum", "count", "sse_rain", "n_rain")}


def selection_metric(head: str, validation_metric: str) -> tuple[str, bool]:
    """Name of the score that chooses the best epoch and whether higher is better."""
    if validation_metric == "loss":
        return "loss", False
    return ("csi", True) if head == "classifier" else ("rmse_rain", False)


def threshold_contingency(probability: Tensor, truth: Tensor, thresholds: Tensor, raining: Tensor | None = None
                          ) -> Tensor:
    """Hits, misses and false alarms (3, T) of "rain where ``probability >= threshold``" for each of ``thresholds``.

    ``probability`` and ``truth`` (rain in the label) hold the counted pixels, flattened; ``raining``, where given,
    must also be true for a pixel to be called rain (the product's rule: a regressed rate of at least 0.1 mm/h).
    """
    predicted = probability.double()[:, None] >= thresholds.to(probability.device, torch.float64)
    if raining is not None:
        predicted &= raining[:, None]
    truth = truth[:, None]
    return torch.stack([(predicted & truth).sum(0), (~predicted & truth).sum(0),
                        (predicted & ~truth).sum(0)]).double().cpu()


class ValidationScores:
    """Sums of one validation pass.

    Args:
        head: ``classifier`` or ``regressor``.
        regressor_pixels: Pixels the regressor's task loss counts (``rain`` or ``valid``).
    """

    def __init__(self, head: str, regressor_pixels: str = "rain") -> None:
        self.head = head
        self.regressor_pixels = regressor_pixels
        self.sums = torch.zeros(len(_FIELDS[head]), dtype=torch.float64)

    def update(self, output: Tensor, label: Tensor) -> None:
        """Add a batch: network output and label (B, H, W) in mm/h with NaN where missing."""
        output, label = output.detach().float(), label.detach()
        loss_map = task_loss_map(self.head, output, label, self.regressor_pixels)
        counted = counted_pixels(self.head, label, self.regressor_pixels)
        valid = torch.isfinite(label)
        truth = valid & (label >= RAIN_THRESHOLD)
        if self.head == "classifier":
            predicted = valid & (torch.softmax(output, dim=1)[:, RAIN_CLASS] >= VALIDATION_PROBABILITY)
            values = [loss_map.sum(), counted.sum(), (predicted & truth).sum(), (~predicted & truth).sum(),
                      (predicted & ~truth).sum()]
        else:
            error = (output[:, 0] - torch.nan_to_num(label)) ** 2
            values = [loss_map.sum(), counted.sum(), error[truth].sum(), truth.sum()]
        self.sums += torch.stack([torch.as_tensor(value, dtype=torch.float64).cpu() for value in values])

    def result(self) -> dict[str, float]:
        """The scores (NaN where undefined)."""
        sums = dict(zip(_FIELDS[self.head], self.sums.tolist(), strict=True))
        scores = {"loss": _ratio(sums["loss_sum"], sums["count"]), "pixels": int(sums["count"])}
        if self.head == "classifier":
            hits, misses, false_alarms = sums["hits"], sums["misses"], sums["false_alarms"]
            scores.update(csi=_ratio(hits, hits + misses + false_alarms), pod=_ratio(hits, hits + misses),
                          far=_ratio(false_alarms, hits + false_alarms))
        else:
            scores["rmse_rain"] = math.sqrt(_ratio(sums["sse_rain"], sums["n_rain"]))
        return scores


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else float("nan")
