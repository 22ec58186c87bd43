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
        reconstructions: Autoencoder outputs F_R at strides 2, 4 and 8, for the reconstruction loss.
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
        self.comwe = nn.ModuleList(
            CoMWE(in_channels=widths[i], channels=widths[i + 1], config=config) for i in range(3)
        )
        self.down = Down(in_channels=widths[3], out_channels=widths[4])
        self.ups = nn.ModuleList(
            Up(in_channels=widths[i + 1], skip_channels=2 * widths[i] if i else widths[0], out_channels=widths[i])
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
                random coordinated masking; pass ones for an unmasked forward in training mode.

        Returns:
            The decoder output (B, widths[0], H, W), the CNN features and the reconstructions.

        Raises:
            ValueError: If H or W is not a multiple of `size_multiple`.
        """
        check_size(x, self.size_multiple)
        keep = None
        if mask is None and self.training:
            batch, _, height, width = x.shape
            cell, ratio = self.config.mask_cell, self.config.mask_ratio
            keep = coordinated_mask(batch, height, width, cell=cell, ratio=ratio, device=x.device)
        skip = self.stem(x)
        skips, features, reconstructions = [skip], [], []
        for level, (stage, comwe) in enumerate(zip(self.stages, self.comwe, strict=True), start=1):
            stage_keep, stage_mask = _downsample(keep, 2**level), _downsample(mask, 2**level)
            feature = stage(skip, stage_keep)
            reconstruction = comwe(skip, feature, keep=stage_keep, mask=stage_mask)
            features.append(feature)
            reconstructions.append(reconstruction)
            skips.append(torch.cat([reconstruction, feature], dim=1))
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
