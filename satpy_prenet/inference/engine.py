# Copyright (c) 2026 satpy-prenet developers
#
# This program is free software: you can redistribute it and/or modify it under the terms of the GNU General Public
# License as published by the Free Software Foundation, either version 3 of the License, or (at your option) any later
# version. See the LICENSE file.
"""The retrieval engine: a PRE-Net model run over a whole image through the tile grid and a device runner."""

from __future__ import annotations

import uuid

import dask.array as da
import numpy as np
import torch

from satpy_prenet.inference.lazy import retrieve_dask
from satpy_prenet.inference.runner import DeviceRunner
from satpy_prenet.inference.tiling import Region, TileGrid

#: The engine's outputs, in order.
OUTPUTS = ("probability", "rate")


def gate_rate(probability, rate, probability_threshold: float, rain_threshold: float):
    """The product's rate: the regressed rate where it rains, 0 elsewhere (NaN stays NaN).

    It rains where the probability reaches ``probability_threshold`` and the regressed rate reaches
    ``rain_threshold`` (0.1 mm/h), the rule the bundle's threshold was chosen and its test scores counted with, so
    that a positive rate, the rain flag and a rate the scores count as rain are the same pixels. The model gates each
    tile's pixels; where tiles overlap, the blend is gated again with the blended values. Works on numpy and dask
    arrays alike.
    """
    return np.where((probability < probability_threshold) | (rate < rain_threshold), np.float32(0), rate)


class TiledRetrieval:
    """Run a `PrecipitationRetriever` over a full image in overlapping, globally anchored tiles.

    Args:
        model: Takes brightness temperatures (B, C, T, T) in K (NaN allowed) and returns
            ``(probability, rate)``, each (B, T, T).
        tile_size: Side ``T`` of the tiles, a multiple of the model's ``size_multiple`` (the bundle's ``tile_size``).
        overlap: Overlap of neighbouring tiles in pixels, a multiple of the model's ``size_multiple``, smaller than
            ``T``; default ``T / 8`` rounded down to that multiple, at least one multiple (0 if ``T`` is one).
        batch_size, device, precision, progress: Those of `satpy_prenet.inference.runner.DeviceRunner`.
    """

    def __init__(self, model: torch.nn.Module, *, tile_size: int, overlap: int | None = None,
                 batch_size: int | None = None, device: str | torch.device = "auto", precision: str = "auto",
                 progress: bool = False):
        """Check the tiling and put the model on its device."""
        multiple = _size_multiple(model)
        tile_size = int(tile_size)
        if tile_size <= 0 or tile_size % multiple:
            raise ValueError(f"tile_size {tile_size} must be a positive multiple of the model's size multiple "
                             f"{multiple}")
        if overlap is None:
            overlap = max(multiple, tile_size // 8 // multiple * multiple) if tile_size > multiple else 0
        if overlap % multiple:
            raise ValueError(f"overlap {overlap} must be a multiple of {multiple} in [0, {tile_size})")
        self.grid = TileGrid(tile_size, int(overlap))
        self.runner = DeviceRunner(model, device=device, batch_size=batch_size, precision=precision,
                                   progress=progress)
        #: Identity of the model in dask task names (`from_bundle` sets the bundle's sha256).
        self.token = uuid.uuid4().hex

    @classmethod
    def from_bundle(cls, bundle, **kwargs) -> TiledRetrieval:
        """Engine for a loaded `satpy_prenet.bundle.Bundle`: its model, tile size and device unless given."""
        kwargs.setdefault("tile_size", bundle.header.tile_size)
        kwargs.setdefault("device", bundle.device)
        engine = cls(bundle.model, **kwargs)
        engine.token = f"{bundle.header.sha256}-{engine.runner.precision}"
        return engine

    @property
    def tile_size(self) -> int:
        """Side of the tiles in pixels."""
        return self.grid.tile_size

    @property
    def overlap(self) -> int:
        """Overlap of neighbouring tiles in pixels."""
        return self.grid.overlap

    @property
    def device(self) -> torch.device:
        """The device the model runs on."""
        return self.runner.device

    @property
    def batch_size(self) -> int:
        """Tiles per forward pass (smaller after a GPU out-of-memory error)."""
        return self.runner.batch_size

    def predict(self, bt: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Probability and rate of a whole image.

        Args:
            bt: Brightness temperatures (C, H, W) in K, NaN where invalid or in space; any float dtype.

        Returns:
            ``(probability, rate)``, each float32 (H, W).
        """
        _, height, width = bt.shape
        return self._predict_region(bt, (0, 0), (height, width), (0, height, 0, width))

    def predict_block(self, bt_block: np.ndarray, block_origin: tuple[int, int], image_shape: tuple[int, int],
                      halo: int | tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Probability and rate of one block of a larger image, identical to the whole image's values there.

        Args:
            bt_block: (C, h + 2 * halo_y, w + 2 * halo_x) brightness temperatures: the block and a halo on each
                side, NaN where the halo falls outside the image (as `dask.array.map_overlap` with
                ``boundary=np.nan`` gives it).
            block_origin: Global (row, column) of the block's first pixel (without the halo).
            image_shape: (H, W) of the full image.
            halo: Halo width, or (rows, columns); ``tile_size`` is always enough, and 0 is enough along an axis
                where the block spans the whole image.

        Returns:
            ``(probability, rate)`` of the block, each float32 (h, w).

        Raises:
            ValueError: If the halo is too narrow for a tile the block needs.
        """
        halo_y, halo_x = (halo, halo) if isinstance(halo, int) else halo
        _, rows, cols = bt_block.shape
        row0, col0 = block_origin
        core = (row0, row0 + rows - 2 * halo_y, col0, col0 + cols - 2 * halo_x)
        return self._predict_region(bt_block, (row0 - halo_y, col0 - halo_x), tuple(image_shape), core)

    def retrieve_dask(self, bt: da.Array, *, name_token: str | None = None,
                      min_block: int | None = None) -> tuple[da.Array, da.Array]:
        """Lazy probability and rate of a dask array (`satpy_prenet.inference.lazy.retrieve_dask`)."""
        return retrieve_dask(self, bt, name_token=name_token, min_block=min_block)

    def _predict_region(self, window: np.ndarray, window_origin: tuple[int, int], image_shape: tuple[int, int],
                        core: Region) -> tuple[np.ndarray, np.ndarray]:
        input_shape = (window.shape[0], self.tile_size, self.tile_size)

        def run(count, fill):
            return self.runner.map(count, fill, input_shape=input_shape)

        probability, rate = self.grid.blend(window, window_origin, image_shape, core, run, outputs=len(OUTPUTS))
        return probability, rate


def _size_multiple(model: torch.nn.Module) -> int:
    """Factor the model needs input sizes to be multiples of (1 when it does not say)."""
    for owner in (model, getattr(model, "classifier", None)):
        multiple = getattr(owner, "size_multiple", None)
        if multiple is not None:
            return int(multiple)
    return 1
