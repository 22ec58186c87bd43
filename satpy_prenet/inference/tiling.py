# Copyright (c) 2026 satpy-prenet developers
#
# This program is free software: you can redistribute it and/or modify it under the terms of the GNU General Public
# License as published by the Free Software Foundation, either version 3 of the License, or (at your option) any later
# version. See the LICENSE file.
"""The tile grid: where tiles start, how they are cut from an image and how their outputs are blended (numpy only).

The grid is anchored to the *global* pixel coordinates of the full image: tile ``(i, j)`` starts at row
``i * stride`` and column ``j * stride`` (``stride = T - overlap``); tiles reaching past the image edge are padded
with NaN. Any block of the image can therefore be computed on its own, given a halo of ``T`` pixels, and gives the
same values as the whole image.

Blending: every tile output is multiplied by a separable window ``w(y) * w(x)``, with ``w`` equal to 1 in the tile's
interior and falling smoothly (sin^2 ramp) over ``overlap`` pixels towards each edge, but never to 0 (its smallest
value, at the outermost pixel, is ``sin^2(pi / (4 * overlap))``). The weighted outputs and the weights are summed
and divided, so every pixel covered by a tile gets a value (no gaps at the image border, where one tile only covers
a pixel), and pixels near a tile edge, where the network sees less context, count less than those of the
neighbouring tile's interior.

Skipping: a tile is run only if the part of it that falls in the requested region holds at least one pixel with all
channels finite; tiles entirely in space are never run. Outputs are NaN wherever any input channel is NaN.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np

#: A region of the image in global pixel coordinates: (first row, end row, first column, end column).
Region = tuple[int, int, int, int]

#: Runs ``count`` tiles: ``fill(buffer, index)`` writes tile ``index`` into a (C, T, T) buffer; yields the indices
#: run and their outputs (k, outputs, T, T) (`satpy_prenet.inference.runner.DeviceRunner.map`).
TileRunner = Callable[[int, Callable[[np.ndarray, int], None]], Iterator[tuple[range, np.ndarray]]]


def blend_window(tile_size: int, overlap: int) -> np.ndarray:
    """The (tile_size, tile_size) float32 blending weights of one tile: 1 inside, smooth and > 0 at the edges."""
    distance = np.minimum(np.arange(tile_size), np.arange(tile_size)[::-1]) + 0.5
    ramp = np.ones(tile_size) if overlap == 0 else np.sin(np.pi / 2 * np.clip(distance / overlap, 0.0, 1.0)) ** 2
    return np.outer(ramp, ramp).astype(np.float32)


@dataclass(frozen=True)
class TileGrid:
    """Square tiles of ``tile_size`` pixels overlapping by ``overlap``, anchored at the image's pixel (0, 0)."""

    tile_size: int
    overlap: int
    window: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self):
        """Check the sizes and make the blending window."""
        if self.tile_size <= 0:
            raise ValueError(f"tile_size must be positive, got {self.tile_size}")
        if not 0 <= self.overlap < self.tile_size:
            raise ValueError(f"overlap {self.overlap} must be in [0, {self.tile_size})")
        object.__setattr__(self, "window", blend_window(self.tile_size, self.overlap))

    @property
    def stride(self) -> int:
        """Distance between the starts of neighbouring tiles."""
        return self.tile_size - self.overlap

    def starts(self, core: Region, image_shape: tuple[int, int]) -> list[tuple[int, int]]:
        """Global (top, left) of the grid's tiles that intersect ``core``, row-major."""
        ranges = []
        for low, high, size in ((core[0], core[1], image_shape[0]), (core[2], core[3], image_shape[1])):
            count = 1 + max(0, math.ceil((size - self.tile_size) / self.stride))
            first = max(0, (low - self.tile_size) // self.stride + 1)
            last = min(count - 1, (high - 1) // self.stride)
            ranges.append(range(first * self.stride, last * self.stride + 1, self.stride))
        return [(top, left) for top in ranges[0] for left in ranges[1]]

    def placement(self, top: int, left: int, core: Region) -> tuple[slice, slice, slice, slice]:
        """Slices of the tile at (top, left) inside ``core``: in core coordinates, then in tile coordinates."""
        row0, row1, col0, col1 = core
        y0, y1 = max(top, row0), min(top + self.tile_size, row1)
        x0, x1 = max(left, col0), min(left + self.tile_size, col1)
        return (slice(y0 - row0, y1 - row0), slice(x0 - col0, x1 - col0),
                slice(y0 - top, y1 - top), slice(x0 - left, x1 - left))

    def cut(self, buffer: np.ndarray, window: np.ndarray, window_origin: tuple[int, int],
            image_shape: tuple[int, int], top: int, left: int) -> None:
        """Copy the tile at global (top, left) from ``window`` (C, h, w) into ``buffer`` (C, T, T); NaN beyond."""
        buffer.fill(np.nan)
        y0 = max(top, 0, window_origin[0])
        y1 = min(top + self.tile_size, image_shape[0], window_origin[0] + window.shape[1])
        x0 = max(left, 0, window_origin[1])
        x1 = min(left + self.tile_size, image_shape[1], window_origin[1] + window.shape[2])
        if y1 > y0 and x1 > x0:
            buffer[:, y0 - top:y1 - top, x0 - left:x1 - left] = window[
                :, y0 - window_origin[0]:y1 - window_origin[0], x0 - window_origin[1]:x1 - window_origin[1]]

    def check_window(self, window_shape: tuple[int, int], window_origin: tuple[int, int],
                     image_shape: tuple[int, int], starts: list[tuple[int, int]]) -> None:
        """Raise ValueError unless the window holds every in-image pixel of the tiles at ``starts``."""
        if not starts:
            return
        for axis in (0, 1):
            needed_low = max(0, min(start[axis] for start in starts))
            needed_high = min(image_shape[axis], max(start[axis] for start in starts) + self.tile_size)
            if window_origin[axis] > needed_low or window_origin[axis] + window_shape[axis] < needed_high:
                raise ValueError(f"the block's halo is too narrow for tiles of {self.tile_size} pixels: it covers "
                                 f"{window_origin[axis]}..{window_origin[axis] + window_shape[axis]} along axis "
                                 f"{axis}, the tiles need {needed_low}..{needed_high}")

    def blend(self, window: np.ndarray, window_origin: tuple[int, int], image_shape: tuple[int, int], core: Region,
              run: TileRunner, *, outputs: int) -> np.ndarray:
        """Blend the tile outputs over the region ``core`` into an array (outputs, h, w).

        ``window`` (C, ...) holds the input from global pixel ``window_origin``; ``run`` computes the tiles (see
        `TileRunner`), each giving ``outputs`` maps. Memory: one float32 accumulator per output plus the weights,
        the size of ``core``; the window is never copied as a whole.
        """
        row0, row1, col0, col1 = core
        starts = self.starts(core, image_shape)
        self.check_window(window.shape[1:], window_origin, image_shape, starts)
        valid = np.isfinite(window[:, row0 - window_origin[0]:row1 - window_origin[0],
                                   col0 - window_origin[1]:col1 - window_origin[1]]).all(axis=0)
        starts = [start for start in starts if valid[self.placement(*start, core)[:2]].any()]

        def fill(buffer: np.ndarray, index: int) -> None:
            self.cut(buffer, window, window_origin, image_shape, *starts[index])

        sums = np.zeros((outputs, *valid.shape), dtype=np.float32)
        weights = np.zeros(valid.shape, dtype=np.float32)
        for indices, results in run(len(starts), fill):
            finite = np.isfinite(results).all(axis=1)
            for index, output, good in zip(indices, results, finite, strict=True):
                ys, xs, tile_ys, tile_xs = self.placement(*starts[index], core)
                weight = np.where(good, self.window, np.float32(0))[tile_ys, tile_xs]
                sums[:, ys, xs] += np.where(good[tile_ys, tile_xs], output[:, tile_ys, tile_xs], 0) * weight
                weights[ys, xs] += weight
        with np.errstate(invalid="ignore", divide="ignore"):
            blended = sums / weights
        blended[:, ~valid | (weights <= 0)] = np.nan
        return blended


def seam_contrast(field: np.ndarray, grid: TileGrid, origin: tuple[int, int] = (0, 0)) -> float:
    """How much more ``field`` (H, W) changes between neighbouring pixels where tiles hand over than elsewhere.

    The mean absolute difference between neighbours (along rows and columns) whose pair straddles or lies in an
    overlap zone of ``grid`` (``field[0, 0]`` is the image's pixel ``origin``), divided by the same mean over every
    other neighbouring pair; pairs with a NaN are left out. About 1 when the tiling leaves no trace; seams raise it.
    """
    inside, outside = [], []
    for axis in (0, 1):
        steps = np.abs(np.diff(field, axis=axis))
        position = (origin[axis] + np.arange(1, field.shape[axis])) % grid.stride  # of each pair's second pixel
        zone = position <= grid.overlap
        shape = [1, 1]
        shape[axis] = -1
        zone = np.broadcast_to(zone.reshape(shape), steps.shape)
        finite = np.isfinite(steps)
        inside.append(steps[zone & finite])
        outside.append(steps[~zone & finite])
    inside, outside = np.concatenate(inside), np.concatenate(outside)
    if not inside.size or not outside.size or outside.mean() == 0:
        raise ValueError("the field has too few valid neighbouring pixels inside and outside the tile overlaps")
    return float(inside.mean() / outside.mean())
