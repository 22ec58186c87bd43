# SPDX-License-Identifier: GPL-3.0-or-later
"""Convolutional building blocks shared by the student PRE-Net and the teacher UNet."""

from __future__ import annotations

import torch
from torch import Tensor, nn


def conv_bn_relu(in_channels: int, out_channels: int, *, kernel_size: int) -> nn.Sequential:
    """Return a bias-free convolution ('same' padding), batch norm and ReLU."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU(inplace=True),
    )


class DoubleConv(nn.Sequential):
    """Two 3x3 convolutions, each followed by batch norm and ReLU."""

    def __init__(self, *, in_channels: int, out_channels: int) -> None:
        """Build the block.

        Args:
            in_channels: Input channels.
            out_channels: Output channels of both convolutions.
        """
        super().__init__(
            conv_bn_relu(in_channels, out_channels, kernel_size=3),
            conv_bn_relu(out_channels, out_channels, kernel_size=3),
        )


class Down(nn.Sequential):
    """2x2 max-pooling followed by a DoubleConv."""

    def __init__(self, *, in_channels: int, out_channels: int) -> None:
        """Build the block.

        Args:
            in_channels: Input channels.
            out_channels: Output channels.
        """
        super().__init__(nn.MaxPool2d(2), DoubleConv(in_channels=in_channels, out_channels=out_channels))


class Up(nn.Module):
    """Transposed-convolution up-sampling, concatenation with a skip feature, DoubleConv."""

    def __init__(self, *, in_channels: int, skip_channels: int, out_channels: int) -> None:
        """Build the block.

        Args:
            in_channels: Channels of the coarse input.
            skip_channels: Channels of the skip feature at twice the input resolution.
            out_channels: Output channels (also those of the up-sampled input).
        """
        super().__init__()
        self.up = nn.ConvTranspose2d(in_channels, out_channels, kernel_size=2, stride=2)
        self.conv = DoubleConv(in_channels=out_channels + skip_channels, out_channels=out_channels)

    def forward(self, x: Tensor, skip: Tensor) -> Tensor:
        """Up-sample `x` by 2 and fuse it with `skip`."""
        return self.conv(torch.cat([self.up(x), skip], dim=1))


class Bottleneck(nn.Module):
    """Residual bottleneck 1x1-3x3-1x1 with batch norm (ResNet style)."""

    def __init__(self, *, channels: int, hidden_channels: int) -> None:
        """Build the block.

        Args:
            channels: Input and output channels.
            hidden_channels: Channels of the inner 3x3 convolution.
        """
        super().__init__()
        self.branch = nn.Sequential(
            conv_bn_relu(channels, hidden_channels, kernel_size=1),
            conv_bn_relu(hidden_channels, hidden_channels, kernel_size=3),
            nn.Conv2d(hidden_channels, channels, 1, bias=False),
            nn.BatchNorm2d(channels),
        )
        self.act = nn.ReLU(inplace=True)

    def forward(self, x: Tensor) -> Tensor:
        """Return ReLU(x + branch(x))."""
        return self.act(x + self.branch(x))


class MaskedConvStage(nn.Module):
    """Masked-convolution encoder stage, eq. 1: F_c_i = MaskedConv(phi(F_c_{i-1}) x M_c_i).

    phi is a 2x2 max-pooling and a 1x1 convolution to the stage width; the masked convolution a residual
    bottleneck applied to the masked feature.
    """

    def __init__(self, *, in_channels: int, out_channels: int, bottleneck_ratio: int) -> None:
        """Build the stage.

        Args:
            in_channels: Channels of the previous stage.
            out_channels: Stage width.
            bottleneck_ratio: Width reduction inside the bottleneck.
        """
        super().__init__()
        self.phi = nn.Sequential(nn.MaxPool2d(2), conv_bn_relu(in_channels, out_channels, kernel_size=1))
        self.masked_conv = Bottleneck(channels=out_channels, hidden_channels=out_channels // bottleneck_ratio)

    def forward(self, x: Tensor, keep: Tensor | None = None) -> Tensor:
        """Down-sample `x` by 2 and encode it.

        Args:
            x: Previous stage output (B, C_in, H, W).
            keep: Optional mask (B, 1, H / 2, W / 2), 1 where visible.
        """
        x = self.phi(x)
        if keep is not None:
            x = x * keep
        return self.masked_conv(x)


class SpatialAttention(nn.Module):
    """Spatial attention: channel mean and max, a convolution and a sigmoid weight per pixel."""

    def __init__(self, *, kernel_size: int = 7) -> None:
        """Build the block.

        Args:
            kernel_size: Side of the convolution over the two pooled maps.
        """
        super().__init__()
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2)

    def forward(self, x: Tensor) -> Tensor:
        """Re-weight every pixel of `x` by its attention in (0, 1)."""
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.conv(pooled))
