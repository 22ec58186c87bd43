# SPDX-License-Identifier: GPL-3.0-or-later
"""The multimodal teacher: a UNet over IR, PMW and PR swath data with a late-fusion geographic head."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import Tensor, nn

from satpy_prenet.model.blocks import DoubleConv, Down, Up
from satpy_prenet.model.config import TeacherConfig
from satpy_prenet.model.prenet import check_size


class TeacherOutput(NamedTuple):
    """What the teacher returns.

    Attributes:
        out: Logits (B, 2, H, W) of the classifier or values (B, 1, H, W) of the regressor.
        features: Outputs of the first three down stages (strides 2, 4, 8), distilled into the student.
    """

    out: Tensor
    features: tuple[Tensor, ...]


class MultimodalTeacher(nn.Module):
    """UNet of depth 4 with three modality stems fused by summation and a geographic late-fusion head."""

    def __init__(self, config: TeacherConfig) -> None:
        """Build the network.

        Args:
            config: Architecture of the network.
        """
        super().__init__()
        self.config = config
        widths = config.widths
        self.ir_stem = DoubleConv(in_channels=config.ir_channels, out_channels=widths[0])
        self.pmw_stem = DoubleConv(in_channels=config.pmw_channels, out_channels=widths[0])
        self.pr_stem = DoubleConv(in_channels=config.pr_channels, out_channels=widths[0])
        self.downs = nn.ModuleList(Down(in_channels=widths[i], out_channels=widths[i + 1]) for i in range(4))
        self.ups = nn.ModuleList(
            Up(in_channels=widths[i + 1], skip_channels=widths[i], out_channels=widths[i]) for i in reversed(range(4))
        )
        self.geo_stem = DoubleConv(in_channels=config.geo_channels, out_channels=widths[0])
        self.fusion = DoubleConv(in_channels=2 * widths[0], out_channels=widths[0])
        self.head = nn.Conv2d(widths[0], config.out_channels, 1)

    def forward(self, ir: Tensor, pmw: Tensor, pr: Tensor, geo: Tensor) -> TeacherOutput:
        """Run the teacher on co-located, normalised inputs of equal height and width.

        Args:
            ir: Infrared brightness temperatures (B, ir_channels, H, W).
            pmw: Microwave brightness temperatures (B, pmw_channels, H, W).
            pr: Radar reflectivity profiles (B, pr_channels, H, W).
            geo: Elevation, latitude and longitude (B, geo_channels, H, W).

        Raises:
            ValueError: If H or W is not a multiple of 16.
        """
        check_size(ir, self.config.size_multiple)
        x = self.ir_stem(ir) + self.pmw_stem(pmw) + self.pr_stem(pr)
        skips = [x]
        for down in self.downs:
            skips.append(down(skips[-1]))
        y = skips.pop()
        for up, skip in zip(self.ups, reversed(skips), strict=True):
            y = up(y, skip)
        y = self.fusion(torch.cat([y, self.geo_stem(geo)], dim=1))
        return TeacherOutput(self.head(y), tuple(skips[1:4]))
