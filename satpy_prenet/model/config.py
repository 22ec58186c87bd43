# SPDX-License-Identifier: GPL-3.0-or-later
"""Architecture configurations of the student PRE-Net and the multimodal teacher, with named presets."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields
from typing import Any, TypeVar

#: Down-sampling steps of both UNets (strides 2, 4, 8, 16).
DEPTH = 4
#: Stride of the deepest masked encoder stage.
DEEPEST_MASKED_STRIDE = 8

_Config = TypeVar("_Config", bound="_DictConfig")


class _DictConfig:
    """JSON round trip shared by the configuration dataclasses."""

    def to_dict(self) -> dict[str, Any]:
        """Return the configuration as a JSON-serialisable dict (tuples become lists)."""
        return {key: list(value) if isinstance(value, tuple) else value for key, value in asdict(self).items()}

    @classmethod
    def from_dict(cls: type[_Config], data: Mapping[str, Any]) -> _Config:
        """Build a configuration from a dict written by `to_dict`; missing keys take their defaults.

        Raises:
            ValueError: If `data` holds a key that is not a field of the configuration.
        """
        unknown = sorted(set(data) - {field.name for field in fields(cls)})
        if unknown:
            raise ValueError(f"Unknown {cls.__name__} key(s): {', '.join(unknown)}")
        return cls(**{key: tuple(value) if isinstance(value, list) else value for key, value in data.items()})


def require(rules: list[tuple[bool, str]]) -> None:
    """Raise a ValueError with the message of the first rule that does not hold."""
    for holds, message in rules:
        if not holds:
            raise ValueError(message)


@dataclass(frozen=True, kw_only=True)
class PRENetConfig(_DictConfig):
    """Architecture of one student PRE-Net (classifier or regressor).

    The switches `rmkd` and `dawe` exist for the ablations of the paper (Tables 2 and 3); both default to True,
    the full PRE-Net. Without RMKD there is no coordinated masking and no autoencoder: the CoMWE output is
    F_c + F_h and the network returns no reconstructions. Without DAWE there is no wavelet branch (F_h = 0).
    Without both there is no CoMWE: a plain UNet with the same widths, whose skips are the CNN features.

    Attributes:
        in_channels: Number of infrared bands.
        out_channels: 2 for the rain/no-rain classifier (logits), 1 for the rain-rate regressor.
        widths: Channels of the stem and of the encoder stages at strides 2, 4, 8 and 16.
        bottleneck_ratio: Width reduction inside the residual bottleneck of the masked encoder stages.
        ae_dim: Token width of the CoMWE autoencoders.
        ae_depth: Number of transformer blocks per autoencoder.
        ae_heads: Attention heads per block.
        ae_mlp_ratio: Hidden width of the transformer MLP relative to `ae_dim`.
        patch_size: Side of the square patch that becomes one token, in feature-map pixels.
        mask_ratio: Fraction alpha of mask cells hidden in training.
        mask_cell: Side of a mask cell in input pixels; the same cells are hidden at every scale.
        n_splits: Number n of disjoint parts the visible tokens are split into.
        tile_size: Side of the square training and inference tiles in input pixels.
        rmkd: Keep the coordinated masking and the autoencoders (False removes them, for the ablations).
        dawe: Keep the wavelet branch (False removes it, for the ablations).
    """

    in_channels: int
    out_channels: int
    widths: tuple[int, ...] = (64, 128, 256, 512, 1024)
    bottleneck_ratio: int = 4
    ae_dim: int = 192
    ae_depth: int = 12
    ae_heads: int = 3
    ae_mlp_ratio: float = 4.0
    patch_size: int = 2
    mask_ratio: float = 0.25
    mask_cell: int = 16
    n_splits: int = 3
    tile_size: int = 256
    rmkd: bool = True
    dawe: bool = True

    def __post_init__(self) -> None:
        """Check that the sizes fit together."""
        require(
            [
                (len(self.widths) == DEPTH + 1, f"widths needs {DEPTH + 1} entries (stem, strides 2, 4, 8, 16)"),
                (
                    all(width % self.bottleneck_ratio == 0 for width in self.widths),
                    "bottleneck_ratio must divide widths",
                ),
                (self.ae_dim % self.ae_heads == 0, "ae_dim must be a multiple of ae_heads"),
                (self.ae_dim % 4 == 0, "ae_dim must be a multiple of 4 (2D sin-cos position embedding)"),
                (0.0 <= self.mask_ratio < 1.0, "mask_ratio must lie in [0, 1)"),
                (self.n_splits >= 1, "n_splits must be at least 1"),
                (
                    self.mask_cell % (DEEPEST_MASKED_STRIDE * self.patch_size) == 0,
                    f"mask_cell must be a multiple of {DEEPEST_MASKED_STRIDE} * patch_size (cells of whole tokens)",
                ),
                (self.tile_size % self.size_multiple == 0, f"tile_size must be a multiple of {self.size_multiple}"),
            ]
        )

    @property
    def size_multiple(self) -> int:
        """Factor that input heights and widths must be multiples of."""
        return math.lcm(2**DEPTH, DEEPEST_MASKED_STRIDE * self.patch_size, self.mask_cell)


@dataclass(frozen=True, kw_only=True)
class TeacherConfig(_DictConfig):
    """Architecture of the multimodal teacher UNet.

    Attributes:
        out_channels: 2 for the classifier teacher (logits), 1 for the regressor teacher.
        ir_channels: Infrared bands.
        pmw_channels: Passive-microwave (GMI) channels.
        pr_channels: Precipitation-radar (DPR) range bins.
        geo_channels: Geographic channels of the late-fusion head (elevation, latitude, longitude).
        widths: Channels of the stem and of the down stages at strides 2, 4, 8 and 16; equal to the student's.
    """

    out_channels: int
    ir_channels: int = 8
    pmw_channels: int = 13
    pr_channels: int = 176
    geo_channels: int = 3
    widths: tuple[int, ...] = (64, 128, 256, 512, 1024)

    def __post_init__(self) -> None:
        """Check the number of widths."""
        require([(len(self.widths) == DEPTH + 1, f"widths needs {DEPTH + 1} entries (stem, strides 2, 4, 8, 16)")])

    @property
    def size_multiple(self) -> int:
        """Factor that input heights and widths must be multiples of."""
        return 2**DEPTH


#: Architecture sizes by name: `paper` as published (48 M parameters), `small` for CPU training in minutes.
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {"widths": (64, 128, 256, 512, 1024), "ae_dim": 192, "ae_depth": 12, "ae_heads": 3, "tile_size": 256},
    "small": {"widths": (16, 32, 64, 128, 256), "ae_dim": 64, "ae_depth": 2, "ae_heads": 2, "tile_size": 128},
}


def _preset_sizes(name: str) -> dict[str, Any]:
    """Return the sizes of a named preset."""
    if name not in PRESETS:
        raise ValueError(f"Unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name]


def preset(name: str, *, in_channels: int, out_channels: int) -> PRENetConfig:
    """Return the student configuration of a named preset.

    Args:
        name: A key of `PRESETS`.
        in_channels: Number of infrared bands.
        out_channels: 2 for the classifier, 1 for the regressor.

    Raises:
        ValueError: If the preset is unknown.
    """
    return PRENetConfig(in_channels=in_channels, out_channels=out_channels, **_preset_sizes(name))


def teacher_preset(name: str, *, out_channels: int, ir_channels: int = 8) -> TeacherConfig:
    """Return the teacher configuration matching the student preset `name` (same widths).

    Args:
        name: A key of `PRESETS`.
        out_channels: 2 for the classifier teacher, 1 for the regressor teacher.
        ir_channels: Number of infrared bands.

    Raises:
        ValueError: If the preset is unknown.
    """
    return TeacherConfig(out_channels=out_channels, ir_channels=ir_channels, widths=_preset_sizes(name)["widths"])
