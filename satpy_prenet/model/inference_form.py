# SPDX-License-Identifier: GPL-3.0-or-later
"""A trained model turned into its faster inference form: the same outputs to float32 rounding, no training.

Measured over a full disc on a 2-core AVX2 CPU with the demonstration bundle (``benchmarks/full_disc_inference.py
--forms``, docs/benchmarks.md): NHWC (channels-last) weights make oneDNN's convolutions, and the whole retrieval,
1.15x faster; folding the batch norms into their convolutions adds about 1 %. Channels-last has not been measured
on a GPU yet, so CUDA models keep torch's default layout.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval


def fold_batch_norms(model: nn.Module) -> int:
    """Fold every batch norm that follows a convolution in an `nn.Sequential` into that convolution, in place.

    The batch norms become identities, so the model is for inference only afterwards.

    Returns:
        The number of batch norms folded.

    Raises:
        ValueError: If the model is in training mode (its batch norms would still be learning their statistics).
    """
    if model.training:
        raise ValueError("fold_batch_norms needs a model in eval mode")
    folded = 0
    for sequence in model.modules():
        if not isinstance(sequence, nn.Sequential):
            continue
        for index in range(len(sequence) - 1):
            conv, norm = sequence[index], sequence[index + 1]
            if isinstance(conv, nn.Conv2d) and isinstance(norm, nn.BatchNorm2d):
                sequence[index] = fuse_conv_bn_eval(conv, norm)
                sequence[index + 1] = nn.Identity()
                folded += 1
    return folded


def inference_form(model: nn.Module, device: torch.device) -> nn.Module:
    """Put ``model`` in eval mode on ``device``, fold its batch norms and, on the CPU, store it channels-last."""
    fold_batch_norms(model.eval())
    model.to(device)
    if device.type == "cpu":
        model.to(memory_format=torch.channels_last)
    return model
