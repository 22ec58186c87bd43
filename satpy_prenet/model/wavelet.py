# SPDX-License-Identifier: GPL-3.0-or-later
"""Single-level 2D Haar wavelet transform of feature maps, differentiable."""

from __future__ import annotations

from torch import Tensor


def haar_dwt2d(x: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Split an NCHW tensor into its four Haar sub-bands at half resolution.

    Bands are named as in the paper: HL holds the horizontal, LH the vertical and HH the diagonal
    details. In PyWavelets' terms, ``pywt.dwt2(x, "haar")`` returns ``(cA, (cH, cV, cD))`` with
    LL = cA, HL = cH, LH = cV and HH = cD, with identical values and signs.

    Args:
        x: Tensor of shape (B, C, H, W) with even H and W.

    Returns:
        The sub-bands (LL, LH, HL, HH), each of shape (B, C, H / 2, W / 2).

    Raises:
        ValueError: If H or W is odd.
    """
    # Owned rather than taken from ptwt: one Haar level on even-sized maps is four strided slices, stays in the
    # autograd graph and, unlike ptwt 1.0, works in float16/bfloat16 (mixed-precision training) and on any device.
    if x.shape[-2] % 2 or x.shape[-1] % 2:
        raise ValueError(f"Haar DWT needs even height and width, got {tuple(x.shape[-2:])}")
    top_left, top_right = x[..., 0::2, 0::2], x[..., 0::2, 1::2]
    bottom_left, bottom_right = x[..., 1::2, 0::2], x[..., 1::2, 1::2]
    low = (top_left + top_right + bottom_left + bottom_right) / 2
    horizontal = (top_left + top_right - bottom_left - bottom_right) / 2
    vertical = (top_left - top_right + bottom_left - bottom_right) / 2
    diagonal = (top_left - top_right - bottom_left + bottom_right) / 2
    return low, vertical, horizontal, diagonal
