# SPDX-License-Identifier: GPL-3.0-or-later
"""The student PRE-Net: a UNet over infrared bands whose encoder carries CoMWE at strides 2, 4 and 8."""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from satpy_prenet.model.blocks import DoubleConv, Down, MaskedConvStage, Up
from satpy_prenet.model.comwe import CoMWE, coordinated_mask
from satpy_prenet.model.config import PRENetConfig


class PRENetOutput(NamedTuple):
    """What the student returns.

    Attributes:
        out: Logits (B, 2, H, W) of the classifier or values (B, 1, H, W) of the regressor.
        features: CNN features F_c at strides 2, 4 and 8, for feature distillation.
        reconstructions: Autoencoder outputs F_R at strides 2, 4 and 8, for the reconstruction loss; empty
            without RMKD (no autoencoder).
    """

    out: Tensor
    features: tuple[Tensor, ...]
    reconstructions: tuple[Tensor, ...]


def check_size(x: Tensor, multiple: int) -> None:
    """Raise a ValueError unless the height and width of `x` are multiples of `multiple`."""
    height, width = x.shape[-2:]
    if height % multiple or width % multiple:
        raise ValueError(f"Input height and width must be multiples of {multiple}, got {height} x {width}")


def _downsample(mask: Tensor | None, stride: int) -> Tensor | None:
    """Bring an input-resolution mask to a stage: a stage pixel is kept where any of its input pixels is."""
    return None if mask is None else F.max_pool2d(mask, stride)


class PRENet(nn.Module):
    """Student PRE-Net.

    Stem DoubleConv; masked-convolution stages at strides 2, 4, 8, each with its own CoMWE; a plain down
    block at stride 16; transposed-convolution decoder whose skips at strides 8, 4, 2 are [F_R, F_c]
    and at stride 1 the stem output; 1x1 head.

    In training mode, unless an external mask is given, each forward draws one coordinated mask (cells of
    `mask_cell` input pixels, the same at every scale) that hides cells from the masked convolutions and
    splits the visible tokens of every CoMWE (RMKD). In evaluation mode nothing is masked and each
    autoencoder makes one pass: the output is deterministic.

    The ablation switches of the configuration (`rmkd`, `dawe`) remove parts of CoMWE; without RMKD nothing
    is masked in training either, and without both parts there is no CoMWE and the skips at strides 8, 4, 2
    are F_c alone: a plain UNet.
    """

    def __init__(self, config: PRENetConfig) -> None:
        """Build the network.

        Args:
            config: Architecture of the network.
        """
        super().__init__()
        self.config = config
        widths = config.widths
        self.stem = DoubleConv(in_channels=config.in_channels, out_channels=widths[0])
        self.stages = nn.ModuleList(
            MaskedConvStage(in_channels=widths[i], out_channels=widths[i + 1], bottleneck_ratio=config.bottleneck_ratio)
            for i in range(3)
        )
        self.comwe = None
        if config.rmkd or config.dawe:
            self.comwe = nn.ModuleList(
                CoMWE(in_channels=widths[i], channels=widths[i + 1], config=config) for i in range(3)
            )
        skip_factor = 1 if self.comwe is None else 2
        skip_widths = [widths[0], *(skip_factor * width for width in widths[1:4])]
        self.down = Down(in_channels=widths[3], out_channels=widths[4])
        self.ups = nn.ModuleList(
            Up(in_channels=widths[i + 1], skip_channels=skip_widths[i], out_channels=widths[i])
            for i in reversed(range(4))
        )
        self.head = nn.Conv2d(widths[0], config.out_channels, 1)

    @property
    def size_multiple(self) -> int:
        """Factor that input heights and widths must be multiples of."""
        return self.config.size_multiple

    def forward_features(
        self, x: Tensor, mask: Tensor | None = None
    ) -> tuple[Tensor, tuple[Tensor, ...], tuple[Tensor, ...]]:
        """Encode and decode `x`.

        Args:
            x: Normalised infrared input (B, C, H, W), H and W multiples of `size_multiple`.
            mask: Optional external mask (B, 1, H, W), 1 = keep, multiplied onto F_c + F_h before every
                autoencoder (Self-MaskTune), in training or evaluation mode. When given it replaces the
                random coordinated masking; pass ones for an unmasked forward in training mode. Without
                RMKD there is no autoencoder and it is ignored.

        Returns:
            The decoder output (B, widths[0], H, W), the CNN features and the reconstructions.

        Raises:
            ValueError: If H or W is not a multiple of `size_multiple`.
        """
        check_size(x, self.size_multiple)
        keep = None
        if mask is None and self.training and self.config.rmkd:
            batch, _, height, width = x.shape
            cell, ratio = self.config.mask_cell, self.config.mask_ratio
            keep = coordinated_mask(batch, height, width, cell=cell, ratio=ratio, device=x.device)
        skip = self.stem(x)
        skips, features, reconstructions = [skip], [], []
        for level, stage in enumerate(self.stages, start=1):
            stage_keep = _downsample(keep, 2**level)
            feature = stage(skip, stage_keep)
            features.append(feature)
            if self.comwe is None:
                skips.append(feature)
            else:
                fused = self.comwe[level - 1](skip, feature, keep=stage_keep, mask=_downsample(mask, 2**level))
                if self.config.rmkd:
                    reconstructions.append(fused)
                skips.append(torch.cat([fused, feature], dim=1))
            skip = feature
        y = self.down(skip)
        for up, skip_feature in zip(self.ups, reversed(skips), strict=True):
            y = up(y, skip_feature)
        return y, tuple(features), tuple(reconstructions)

    def forward_head(self, decoded: Tensor) -> Tensor:
        """Map the decoder output to logits or values."""
        return self.head(decoded)

    def forward(self, x: Tensor, mask: Tensor | None = None) -> PRENetOutput:
        """Run the network; see `forward_features` for the arguments."""
        decoded, features, reconstructions = self.forward_features(x, mask)
        return PRENetOutput(self.forward_head(decoded), features, reconstructions)
