# SPDX-License-Identifier: GPL-3.0-or-later
"""Losses of the training stages: the task losses, feature distillation and reconstruction.

Decisions (docs/training.md):

* Rain is a label of at least 0.1 mm/h (inclusive). Pixels without a label (NaN, e.g. swath padding or space)
  never count, in particular never as "no rain".
* The classifier's loss is the cross-entropy over labelled pixels. The regressor's is the squared error over the
  labelled pixels with rain by default (``regressor_pixels: rain``): the product shows the regressed rate only where
  the classifier says rain, so the regressor learns the rate given rain, as the trunk's demo recipe did; the
  option ``valid`` counts every labelled pixel.
* Feature distillation (KL): at every pixel the student's and the teacher's channels are turned into distributions
  by a softmax at temperature T; the KL divergence KL(teacher || student) is summed over channels, averaged over
  pixels, multiplied by T^2 and divided by the number of channels C of the scale. The division makes the value the
  mean over all elements, the normalisation of the reference implementation, so the paper's lambda = 0.2 and the
  scale weights 1, 2, 4 (strides 2, 4, 8) keep their meaning; the scales are summed with those weights.
* Reconstruction: the mean squared error between the autoencoder output and the teacher feature, averaged over
  elements and summed over the three scales.
* Response distillation (an option beyond the paper, ``lambda_response``): the student's output against the
  teacher's at every pixel of the footprint, labelled or not: T^2 KL(teacher || student) of the class
  distributions softened at temperature T for the classifier, the squared difference of the rates for the
  regressor; averaged over the pixels. Measured for the classifier only (docs/training.md); the regressor's term
  also counts dry pixels, where a teacher trained on raining pixels alone (``regressor_pixels: rain``) was never
  taught a rate.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from satpy_prenet.evaluation.metrics import RAIN_THRESHOLD

#: Class index of "rain" in the classifier's logits.
RAIN_CLASS = 1
IGNORE_INDEX = -100


def rain_target(label: Tensor) -> Tensor:
    """Class targets (B, H, W): 1 where label >= 0.1 mm/h, 0 below, IGNORE_INDEX where the label is missing."""
    target = (label >= RAIN_THRESHOLD).long()
    return target.masked_fill(~torch.isfinite(label), IGNORE_INDEX)


def counted_pixels(head: str, label: Tensor, regressor_pixels: str = "rain") -> Tensor:
    """Boolean (B, H, W): the pixels the task loss of ``head`` counts."""
    valid = torch.isfinite(label)
    if head == "regressor" and regressor_pixels == "rain":
        return valid & (label >= RAIN_THRESHOLD)
    return valid


def task_loss_map(head: str, output: Tensor, label: Tensor, regressor_pixels: str = "rain") -> Tensor:
    """Per-pixel task loss (B, H, W), 0 on pixels the loss does not count.

    Args:
        head: ``classifier`` (output: logits B x 2 x H x W) or ``regressor`` (output: B x 1 x H x W, mm/h).
        output: Network output.
        label: Rain rate in mm/h (B, H, W), NaN where missing.
        regressor_pixels: ``rain`` or ``valid`` (see the module docstring).
    """
    counted = counted_pixels(head, label, regressor_pixels)
    output = output.float()
    if head == "classifier":
        return F.cross_entropy(output, rain_target(label), ignore_index=IGNORE_INDEX, reduction="none")
    error = (output[:, 0] - torch.nan_to_num(label, nan=0.0)) ** 2
    return torch.where(counted, error, torch.zeros_like(error))


def task_loss(head: str, output: Tensor, label: Tensor, regressor_pixels: str = "rain") -> tuple[Tensor, Tensor]:
    """Task loss: the mean of the per-pixel loss over the counted pixels, and the per-pixel map.

    A batch without any counted pixel gives a zero loss that still depends on the output (so every process of a
    distributed run takes part in the backward pass).
    """
    loss_map = task_loss_map(head, output, label, regressor_pixels)
    count = counted_pixels(head, label, regressor_pixels).sum()
    return loss_map.sum() / count.clamp_min(1) + 0.0 * output.sum(), loss_map


def check_feature_widths(student: Sequence[Tensor], teacher: Sequence[Tensor]) -> None:
    """Raise a ValueError unless student and teacher features agree in number and shape at every scale."""
    if len(student) != len(teacher):
        raise ValueError(f"the student gives {len(student)} feature scales, the teacher {len(teacher)}")
    for scale, (mine, theirs) in enumerate(zip(student, teacher, strict=True)):
        if mine.shape != theirs.shape:
            raise ValueError(f"feature shapes differ at stride {2 ** (scale + 1)}: student {tuple(mine.shape)}, "
                             f"teacher {tuple(theirs.shape)}; train the teacher with the student's preset")


def footprint_masks(footprint: Tensor | None, features: Sequence[Tensor]) -> list[Tensor | None]:
    """The input footprint mask (B, H, W; 1 = real pixel, 0 = padding) min-pooled to the size of each feature.

    A feature position is valid only if every input pixel of its cell is. None (no padding) gives None per scale.
    """
    if footprint is None:
        return [None] * len(features)
    masks = []
    for feature in features:
        stride = footprint.shape[-1] // feature.shape[-1]
        pooled = -F.max_pool2d(-footprint.float()[:, None], stride)[:, 0]
        masks.append(pooled.to(feature.device))
    return masks


def _masked_mean(values: Tensor, mask: Tensor | None) -> Tensor:
    """Mean of ``values`` (B, H, W) over the positions where ``mask`` is 1 (over all when None)."""
    if mask is None:
        return values.mean()
    return (values * mask).sum() / mask.sum().clamp_min(1.0)


def feature_kd(student: Sequence[Tensor], teacher: Sequence[Tensor], *, temperature: float,
               weights: Sequence[float], footprint: Tensor | None = None) -> Tensor:
    """Feature distillation: sum over scales of weight * T^2 * mean over valid pixels of KL(teacher || student) / C.

    Args:
        student: Student features (B, C, H, W) at strides 2, 4, 8.
        teacher: Teacher features of the same shapes (no gradient needed).
        temperature: Softmax temperature T.
        weights: Weight of each scale.
        footprint: Input-resolution mask (B, H, W) of real pixels (0 on padding); None counts every position.
    """
    check_feature_widths(student, teacher)
    total = student[0].new_zeros((), dtype=torch.float32)
    masks = footprint_masks(footprint, student)
    for weight, mine, theirs, mask in zip(weights, student, teacher, masks, strict=True):
        log_p_student = F.log_softmax(mine.float() / temperature, dim=1)
        log_p_teacher = F.log_softmax(theirs.float() / temperature, dim=1)
        kl = (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum(dim=1)
        total = total + weight * temperature**2 * _masked_mean(kl, mask) / mine.shape[1]
    return total


def reconstruction_loss(reconstructions: Sequence[Tensor], teacher: Sequence[Tensor], *,
                        footprint: Tensor | None = None) -> Tensor:
    """Sum over scales of the mean squared error (over channels and valid positions) to the teacher features.

    Args:
        reconstructions: Autoencoder outputs (B, C, H, W) at strides 2, 4, 8.
        teacher: Teacher features of the same shapes.
        footprint: Input-resolution mask (B, H, W) of real pixels (0 on padding); None counts every position.
    """
    check_feature_widths(reconstructions, teacher)
    masks = footprint_masks(footprint, reconstructions)
    return sum(_masked_mean(((mine.float() - theirs.float()) ** 2).mean(dim=1), mask)
               for mine, theirs, mask in zip(reconstructions, teacher, masks, strict=True))


def response_kd(head: str, student: Tensor, teacher: Tensor, *, temperature: float,
                footprint: Tensor | None = None) -> Tensor:
    """Response distillation: the mean over the footprint's pixels of the student's output mismatch to the teacher's.

    Args:
        head: ``classifier`` (outputs: logits B x 2 x H x W) or ``regressor`` (B x 1 x H x W, mm/h).
        student: The student's output.
        teacher: The teacher's output of the same shape (no gradient needed).
        temperature: Softmax temperature T of the classifier's distributions.
        footprint: Mask (B, H, W) of real pixels (0 on padding); None counts every pixel.
    """
    if head == "classifier":
        log_p_student = F.log_softmax(student.float() / temperature, dim=1)
        log_p_teacher = F.log_softmax(teacher.float() / temperature, dim=1)
        mismatch = temperature**2 * (log_p_teacher.exp() * (log_p_teacher - log_p_student)).sum(dim=1)
    else:
        mismatch = (student[:, 0].float() - teacher[:, 0].float()) ** 2
    return _masked_mean(mismatch, None if footprint is None else footprint.to(mismatch.dtype))
