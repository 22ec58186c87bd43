# SPDX-License-Identifier: GPL-3.0-or-later
"""ViT-style transformer encoder whose linear layers (qkv, proj, fc1, fc2) LoRA can target by name."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def sincos_position_embedding(height: int, width: int, dim: int, *, device: torch.device | None = None) -> Tensor:
    """Return the fixed 2D sine-cosine position embedding of a token grid.

    Half of the channels encode the row, half the column, each as sines and cosines of geometrically spaced
    frequencies, so that any grid size can be embedded.

    Args:
        height: Token rows.
        width: Token columns.
        dim: Embedding width, a multiple of 4.
        device: Device of the result.

    Returns:
        Tensor of shape (height * width, dim), row-major over the grid.
    """
    quarter = dim // 4
    omega = 1.0 / 10000 ** (torch.arange(quarter, device=device, dtype=torch.float32) / quarter)
    rows, cols = torch.meshgrid(
        torch.arange(height, device=device, dtype=torch.float32),
        torch.arange(width, device=device, dtype=torch.float32),
        indexing="ij",
    )
    angle_rows = rows.reshape(-1, 1) * omega
    angle_cols = cols.reshape(-1, 1) * omega
    return torch.cat([angle_rows.sin(), angle_rows.cos(), angle_cols.sin(), angle_cols.cos()], dim=1)


class Attention(nn.Module):
    """Multi-head self-attention with fused qkv projection."""

    def __init__(self, *, dim: int, heads: int) -> None:
        """Build the layer.

        Args:
            dim: Token width, a multiple of `heads`.
            heads: Number of attention heads.
        """
        super().__init__()
        self.heads = heads
        self.qkv = nn.Linear(dim, 3 * dim)
        self.proj = nn.Linear(dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        """Attend over the tokens of `x` (B, N, dim)."""
        batch, tokens, dim = x.shape
        q, k, v = self.qkv(x).reshape(batch, tokens, 3, self.heads, dim // self.heads).permute(2, 0, 3, 1, 4)
        x = F.scaled_dot_product_attention(q, k, v)
        return self.proj(x.transpose(1, 2).reshape(batch, tokens, dim))


class Mlp(nn.Module):
    """Two-layer perceptron with GELU."""

    def __init__(self, *, dim: int, hidden_dim: int) -> None:
        """Build the layer.

        Args:
            dim: Token width.
            hidden_dim: Hidden width.
        """
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x: Tensor) -> Tensor:
        """Apply the perceptron token-wise."""
        return self.fc2(self.act(self.fc1(x)))


class Block(nn.Module):
    """Pre-norm transformer block: x + attn(norm(x)), then x + mlp(norm(x))."""

    def __init__(self, *, dim: int, heads: int, mlp_ratio: float) -> None:
        """Build the block.

        Args:
            dim: Token width.
            heads: Number of attention heads.
            mlp_ratio: Hidden width of the MLP relative to `dim`.
        """
        super().__init__()
        self.norm1 = nn.LayerNorm(dim)
        self.attn = Attention(dim=dim, heads=heads)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim=dim, hidden_dim=int(dim * mlp_ratio))

    def forward(self, x: Tensor) -> Tensor:
        """Transform the tokens of `x` (B, N, dim)."""
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class TransformerEncoder(nn.Module):
    """Stack of transformer blocks with a final layer norm."""

    def __init__(self, *, dim: int, depth: int, heads: int, mlp_ratio: float) -> None:
        """Build the encoder; linear weights start Xavier-uniform with zero bias, as in ViT.

        Args:
            dim: Token width.
            depth: Number of blocks.
            heads: Number of attention heads.
            mlp_ratio: Hidden width of the MLPs relative to `dim`.
        """
        super().__init__()
        self.blocks = nn.Sequential(*(Block(dim=dim, heads=heads, mlp_ratio=mlp_ratio) for _ in range(depth)))
        self.norm = nn.LayerNorm(dim)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: Tensor) -> Tensor:
        """Encode the tokens of `x` (B, N, dim)."""
        return self.norm(self.blocks(x))
