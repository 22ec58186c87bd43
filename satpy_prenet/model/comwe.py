# SPDX-License-Identifier: GPL-3.0-or-later
"""CoMWE: coordinated-mask reconstruction (RMKD) with detail-aware wavelet enhancement (DAWE), eq. 1-5."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from satpy_prenet.model.blocks import SpatialAttention
from satpy_prenet.model.config import PRENetConfig
from satpy_prenet.model.transformer import TransformerEncoder, sincos_position_embedding
from satpy_prenet.model.wavelet import haar_dwt2d


def coordinated_mask(
    batch: int, height: int, width: int, *, cell: int, ratio: float, device: torch.device | None = None
) -> Tensor:
    """Draw the coordinated mask: per sample, round(ratio * cells) random square cells are hidden.

    Args:
        batch: Number of samples.
        height: Input height, a multiple of `cell`.
        width: Input width, a multiple of `cell`.
        cell: Side of a cell in input pixels.
        ratio: Fraction of cells to hide.
        device: Device of the result.

    Returns:
        Float tensor (batch, 1, height, width), 1 where visible and 0 where hidden.
    """
    rows, cols = height // cell, width // cell
    hidden = round(ratio * rows * cols)
    rank = torch.rand(batch, rows * cols, device=device).argsort(dim=1).argsort(dim=1)
    keep = (rank >= hidden).float().reshape(batch, 1, rows, cols)
    return keep.repeat_interleave(cell, dim=2).repeat_interleave(cell, dim=3)


def split_visible(keep: Tensor, parts: int) -> Tensor:
    """Shuffle the visible tokens of every sample and split them into disjoint, near-equal parts.

    Args:
        keep: Boolean tensor (B, N), True for visible tokens.
        parts: Number of parts n.

    Returns:
        Boolean tensor (n, B, N): view j shows only the visible tokens of part j.
    """
    scores = torch.rand(keep.shape, device=keep.device).masked_fill(~keep, 2.0)
    rank = scores.argsort(dim=1).argsort(dim=1)
    part = rank * parts // keep.sum(dim=1, keepdim=True).clamp_min(1)
    part = part.masked_fill(~keep, -1)
    return part.unsqueeze(0) == torch.arange(parts, device=keep.device).view(-1, 1, 1)


class DAWE(nn.Module):
    """Detail-aware wavelet enhancement, eq. 4-5: F_h = SA(phi(cat(HL, LH, HH)))."""

    def __init__(self, *, in_channels: int, out_channels: int) -> None:
        """Build the module.

        Args:
            in_channels: Channels of the stage input.
            out_channels: Stage width.
        """
        super().__init__()
        self.reduce = nn.Conv2d(3 * in_channels, out_channels, 1)
        self.attention = SpatialAttention()

    def forward(self, x: Tensor) -> Tensor:
        """Return the high-frequency cue of `x` (B, C_in, H, W) at half resolution."""
        _, lh, hl, hh = haar_dwt2d(x)
        return self.attention(self.reduce(torch.cat([hl, lh, hh], dim=1)))


class FeatureAutoencoder(nn.Module):
    """SimMIM-style autoencoder of a feature map: patch tokens, transformer encoder, linear head back to pixels.

    Hidden tokens are replaced by a learnable mask token, so the encoder always sees the full token grid.
    """

    def __init__(self, *, channels: int, patch_size: int, dim: int, depth: int, heads: int, mlp_ratio: float) -> None:
        """Build the autoencoder.

        Args:
            channels: Channels of the feature map.
            patch_size: Side of the patch that becomes one token.
            dim: Token width.
            depth: Number of transformer blocks.
            heads: Attention heads.
            mlp_ratio: Hidden width of the MLPs relative to `dim`.
        """
        super().__init__()
        self.patch_size = patch_size
        self.embed = nn.Linear(channels * patch_size**2, dim)
        self.mask_token = nn.Parameter(torch.zeros(dim))
        self.encoder = TransformerEncoder(dim=dim, depth=depth, heads=heads, mlp_ratio=mlp_ratio)
        self.head = nn.Linear(dim, channels * patch_size**2)
        nn.init.normal_(self.mask_token, std=0.02)

    def forward(self, x: Tensor, visible: Tensor | None = None) -> Tensor:
        """Reconstruct the feature map `x` (B, C, H, W).

        Args:
            x: Feature map with H and W multiples of the patch size.
            visible: Optional boolean tensor (V, B, N) over the N row-major tokens; each of the V views
                replaces the tokens it does not show by the mask token.

        Returns:
            The reconstruction (B, C, H, W), or (V, B, C, H, W) with one reconstruction per view.
        """
        batch, _, height, width = x.shape
        rows, cols = height // self.patch_size, width // self.patch_size
        tokens = self.embed(F.pixel_unshuffle(x, self.patch_size).flatten(2).transpose(1, 2))
        if visible is not None:
            tokens = torch.where(visible.unsqueeze(-1), tokens, self.mask_token).flatten(0, 1)
        position = sincos_position_embedding(rows, cols, tokens.shape[-1], device=x.device)
        tokens = self.encoder(tokens + position.to(tokens.dtype))
        pixels = F.pixel_shuffle(self.head(tokens).transpose(1, 2).unflatten(2, (rows, cols)), self.patch_size)
        return pixels if visible is None else pixels.unflatten(0, (visible.shape[0], batch))


class CoMWE(nn.Module):
    """CoMWE of one scale: F_R = AE((F_c + F_h) x M_R), eq. 2-3, with the RMKD split in training.

    In training, given the coordinated mask, the visible tokens are shuffled and split into n disjoint parts;
    each part makes one view (hidden ratio (n + alpha - 1) / n) and the n reconstructions are averaged with
    softmax-normalised learnable weights. Without it (evaluation), one pass over all tokens gives the plain
    reconstruction, which is what the weighted average of n identical views would be.

    The ablation switches of the configuration remove parts: without RMKD there is no autoencoder and the
    output is F_c + F_h; without DAWE, F_h = 0.
    """

    def __init__(self, *, in_channels: int, channels: int, config: PRENetConfig) -> None:
        """Build the module.

        Args:
            in_channels: Channels of the stage input (for DAWE).
            channels: Stage width.
            config: Student configuration (autoencoder sizes, patch size, number of splits, ablation switches).
        """
        super().__init__()
        self.dawe = DAWE(in_channels=in_channels, out_channels=channels) if config.dawe else None
        self.autoencoder = None
        if config.rmkd:
            self.autoencoder = FeatureAutoencoder(
                channels=channels,
                patch_size=config.patch_size,
                dim=config.ae_dim,
                depth=config.ae_depth,
                heads=config.ae_heads,
                mlp_ratio=config.ae_mlp_ratio,
            )
            self.split_logits = nn.Parameter(torch.zeros(config.n_splits))

    def forward(
        self, stage_input: Tensor, features: Tensor, *, keep: Tensor | None = None, mask: Tensor | None = None
    ) -> Tensor:
        """Reconstruct the stage features.

        Args:
            stage_input: Input of the stage (B, C_in, 2H, 2W), decomposed by DAWE.
            features: Masked-convolution features F_c (B, C, H, W).
            keep: Optional binary coordinated mask (B, 1, H, W), 1 = visible, aligned with the tokens; when
                given, the visible tokens are split into n views (RMKD training).
            mask: Optional external mask (B, 1, H, W), 1 = keep, multiplied onto F_c + F_h before a single
                pass over all tokens (Self-MaskTune); it takes precedence over `keep`.

        Returns:
            The reconstruction F_R (B, C, H, W); without RMKD, F_c + F_h, and both masks are ignored.
        """
        x = features if self.dawe is None else features + self.dawe(stage_input)
        if self.autoencoder is None:
            return x
        if mask is not None:
            return self.autoencoder(x * mask)
        if keep is None:
            return self.autoencoder(x)
        return self._split_reconstruction(x, keep)

    def _split_reconstruction(self, x: Tensor, keep: Tensor) -> Tensor:
        """Weighted average of the reconstructions of the n views of the visible tokens."""
        token_keep = F.max_pool2d(keep, self.autoencoder.patch_size).flatten(1) > 0.5
        views = self.autoencoder(x, split_visible(token_keep, self.split_logits.numel()))
        weights = torch.softmax(self.split_logits, dim=0).view(-1, 1, 1, 1, 1)
        return (weights * views).sum(dim=0)
