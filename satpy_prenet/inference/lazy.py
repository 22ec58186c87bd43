# Copyright (c) 2026 satpy-prenet developers
#
# This program is free software: you can redistribute it and/or modify it under the terms of the GNU General Public
# License as published by the Free Software Foundation, either version 3 of the License, or (at your option) any later
# version. See the LICENSE file.
"""The dask adapter: a tiled retrieval as a lazy dask graph, chunk by chunk, equal to the whole image's values."""

from __future__ import annotations

from typing import Protocol

import dask.array as da
import numpy as np
from dask.array.overlap import ensure_minimum_chunksize
from dask.base import tokenize

#: Smallest side of the blocks the model runs on, in tiles: the tiles in a block's halo run again in every block they
#: touch, so small blocks cost model time (one full disc on 2 cores: blocks of 687 pixels +31 %, of 1374 pixels
#: +1 %, against one block of 2748; docs/benchmarks.md). Smaller chunks of the input are merged with neighbours.
MIN_BLOCK_TILES = 8


class BlockRetrieval(Protocol):
    """What the adapter needs of an engine (`satpy_prenet.inference.TiledRetrieval` is one)."""

    tile_size: int
    overlap: int
    token: str

    def predict_block(self, bt_block: np.ndarray, block_origin: tuple[int, int], image_shape: tuple[int, int],
                      halo: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Probability and rate of one block given with its halo."""


def retrieve_dask(engine: BlockRetrieval, bt: da.Array, *, name_token: str | None = None,
                  min_block: int | None = None) -> tuple[da.Array, da.Array]:
    """Lazy probability and rate of a dask array, equal to the engine's values on the computed array.

    Each output chunk is computed from its input chunk and a halo of one tile size (NaN beyond the image) along the
    axes that have several chunks. Tiles straddling chunk borders are run once per chunk they touch, so large chunks
    waste less: chunks smaller than ``min_block`` are merged with neighbours first.

    Args:
        engine: Computes blocks (`BlockRetrieval`).
        bt: Brightness temperatures (C, H, W) in K.
        name_token: Stable identity of the model (default: the engine's ``token``, e.g. the bundle's sha256):
            graphs built with the same input, token and tiling get the same task names, so several products share
            one model run.
        min_block: Smallest block side in pixels (default `MIN_BLOCK_TILES` tiles; at least one tile).

    Returns:
        ``(probability, rate)``, float32 dask arrays (H, W).
    """
    size = engine.tile_size
    min_block = max(size, min_block or MIN_BLOCK_TILES * size)
    bt = bt.rechunk({0: -1, **{axis: ensure_minimum_chunksize(min(min_block, bt.shape[axis]), bt.chunks[axis])
                               for axis in (1, 2)}})
    depth = {0: 0, **{axis: size if len(bt.chunks[axis]) > 1 else 0 for axis in (1, 2)}}
    boundary = {axis: np.nan if depth[axis] else "none" for axis in depth}
    padded = da.overlap.overlap(bt, depth=depth, boundary=boundary) if depth[1] or depth[2] else bt
    chunks = ((2,), *(tuple(length - 2 * depth[axis] for length in padded.chunks[axis]) for axis in (1, 2)))
    token = tokenize(bt.name, name_token or engine.token, engine.tile_size, engine.overlap)
    both = da.map_blocks(_block, padded, engine=engine, image_shape=bt.shape[1:], halo=(depth[1], depth[2]),
                         dtype=np.float32, chunks=chunks, meta=np.empty((0, 0, 0), dtype=np.float32),
                         name=f"prenet-retrieval-{token}")
    return both[0], both[1]


def _block(block: np.ndarray, engine: BlockRetrieval, image_shape: tuple[int, int], halo: tuple[int, int],
           block_info=None) -> np.ndarray:
    """Both outputs of one chunk, stacked (2, h, w)."""
    location = block_info[None]["array-location"]
    return np.stack(engine.predict_block(block, (location[1][0], location[2][0]), image_shape, halo))
