# Copyright (c) 2026 satpy-prenet developers
#
# This program is free software: you can redistribute it and/or modify it under the terms of the GNU General Public
# License as published by the Free Software Foundation, either version 3 of the License, or (at your option) any later
# version. See the LICENSE file.
"""Tiled inference of PRE-Net on the native AGRI grid: tiling, blending, batching and device choice.

The image is cut into square tiles of the model's tile size ``T`` that overlap by ``overlap`` pixels. The tile
grid is anchored to the *global* pixel coordinates of the full image: tile ``(i, j)`` starts at row ``i * stride``
and column ``j * stride`` (``stride = T - overlap``); tiles reaching past the image edge are padded with NaN. Any
block of the image can therefore be computed on its own, given a halo of ``T`` pixels, and gives the same values as
the whole image: this is what `TiledRetrieval.retrieve_dask` does for dask arrays.

Blending: every tile output is multiplied by a separable window ``w(y) * w(x)``, with ``w`` equal to 1 in the tile's
interior and falling smoothly (sin^2 ramp) over ``overlap`` pixels towards each edge, but never to 0 (its smallest
value, at the outermost pixel, is ``sin^2(pi / (4 * overlap))``). The weighted outputs and the weights are summed
and divided, so every pixel covered by a tile gets a value (no gaps at the image border, where one tile only covers
a pixel), and pixels near a tile edge, where the network sees less context, count less than those of the
neighbouring tile's interior.

Skipping and masking: a tile is run only if the part of it that falls in the requested region holds at least one
pixel with all channels finite; tiles entirely in space are therefore never run. Outputs are NaN wherever any
input channel is NaN (space, or invalid input).

Memory: the accumulators of the requested region (three float32 arrays) plus one batch of tiles; the input array
is never copied as a whole.
"""

from __future__ import annotations

import contextlib
import logging
import math
import threading
import uuid
from collections.abc import Iterator

import dask.array as da
import numpy as np
import torch
from dask.array.overlap import ensure_minimum_chunksize
from dask.base import tokenize

LOG = logging.getLogger(__name__)

#: Tiles per batch when none is given: the GPU takes more at once than the CPU.
DEFAULT_BATCH_SIZE = {"cpu": 4, "cuda": 16}


def gate_rate(probability, rate, probability_threshold: float, rain_threshold: float):
    """The product's rate: the regressed rate where it rains, 0 elsewhere (NaN stays NaN).

    It rains where the probability reaches ``probability_threshold`` and the regressed rate reaches
    ``rain_threshold`` (0.1 mm/h), the rule the bundle's threshold was chosen and its test scores counted with, so
    that a positive rate, the rain flag and a rate the scores count as rain are the same pixels. Each tile gates its
    own pixels; where tiles overlap, the blend is gated again with the blended values. Works on numpy and dask
    arrays alike.
    """
    return np.where((probability < probability_threshold) | (rate < rain_threshold), np.float32(0), rate)


def select_device(requested: str | torch.device | None = "auto") -> torch.device:
    """Choose the torch device to run on, and log the choice.

    Args:
        requested: ``auto`` (or None: the first GPU if CUDA is available, else the CPU), ``cpu``, ``cuda``,
            ``cuda:N``, another torch device string, or a `torch.device`.

    Returns:
        The device. When CUDA is requested but not available, the CPU, with a logged warning.

    Raises:
        ValueError: If the string names no torch device, or ``cuda:N`` names a GPU that does not exist.
    """
    if requested is None or (isinstance(requested, str) and requested.strip().lower() == "auto"):
        device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        LOG.info("Running PRE-Net on %s (device 'auto')", _describe(device))
        return device
    try:
        device = torch.device(requested.strip().lower() if isinstance(requested, str) else requested)
    except (RuntimeError, TypeError) as error:
        raise ValueError(f"Unknown torch device {requested!r}; use auto, cpu, cuda or cuda:N") from error
    if device.type == "cuda":
        if not torch.cuda.is_available():
            LOG.warning("CUDA device %r requested but CUDA is not available; running PRE-Net on the CPU",
                        str(requested))
            return torch.device("cpu")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ValueError(f"CUDA device {device} requested but only {torch.cuda.device_count()} GPU(s) exist")
    LOG.info("Running PRE-Net on %s", _describe(device))
    return device


def blend_window(tile_size: int, overlap: int) -> np.ndarray:
    """The (tile_size, tile_size) float32 blending weights of one tile: 1 inside, smooth and > 0 at the edges."""
    distance = np.minimum(np.arange(tile_size), np.arange(tile_size)[::-1]) + 0.5
    ramp = np.ones(tile_size) if overlap == 0 else np.sin(np.pi / 2 * np.clip(distance / overlap, 0.0, 1.0)) ** 2
    return np.outer(ramp, ramp).astype(np.float32)


class TiledRetrieval:
    """Run a `PrecipitationRetriever` over a full image in overlapping, globally anchored tiles.

    Args:
        model: Takes brightness temperatures (B, C, T, T) in K (NaN allowed) and returns
            ``(probability, rate)``, each (B, T, T). Put in eval mode and moved to ``device``.
        tile_size: Side ``T`` of the tiles, a multiple of the model's ``size_multiple`` (the bundle's ``tile_size``).
        overlap: Overlap of neighbouring tiles in pixels, a multiple of the model's ``size_multiple``, smaller than
            ``T``; default ``T / 8`` rounded down to that multiple, at least one multiple (0 if ``T`` is one).
        batch_size: Tiles per forward pass; default 16 on a GPU, 4 on the CPU. Halved on a GPU out-of-memory error.
        device: Anything `select_device` takes.
        amp: Mixed precision on CUDA (bfloat16 where the GPU supports it, else float16); no effect on the CPU.
        progress: Show a tqdm progress bar of the tiles (off by default; the satpy path stays quiet).
    """

    def __init__(self, model: torch.nn.Module, *, tile_size: int, overlap: int | None = None,
                 batch_size: int | None = None, device: str | torch.device = "auto", amp: bool = True,
                 progress: bool = False):
        """Check the tiling and put the model on its device."""
        multiple = _size_multiple(model)
        tile_size = int(tile_size)
        if tile_size <= 0 or tile_size % multiple:
            raise ValueError(f"tile_size {tile_size} must be a positive multiple of the model's size multiple "
                             f"{multiple}")
        if overlap is None:
            overlap = max(multiple, tile_size // 8 // multiple * multiple) if tile_size > multiple else 0
        if not 0 <= overlap < tile_size or overlap % multiple:
            raise ValueError(f"overlap {overlap} must be a multiple of {multiple} in [0, {tile_size})")
        self.device = device if isinstance(device, torch.device) else select_device(device)
        if batch_size is not None and batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.batch_size = int(batch_size or DEFAULT_BATCH_SIZE.get(self.device.type, 4))
        self.tile_size = tile_size
        self.overlap = int(overlap)
        self.stride = tile_size - self.overlap
        self.model = model.to(self.device).eval()
        self.amp_dtype = _amp_dtype(self.device) if amp else None
        self.progress = progress
        self._window = torch.from_numpy(blend_window(tile_size, self.overlap)).to(self.device)
        self._token = uuid.uuid4().hex
        self._make_locks()

    def _make_locks(self) -> None:
        self._state_lock = threading.Lock()
        # One batch at a time per device, whatever the number of dask threads or engines: GPU memory stays bounded,
        # and on the CPU dask threads do not multiply torch's own threads.
        self._device_lock = _device_lock(self.device)

    def __getstate__(self) -> dict:
        """Pickle without the locks (dask.distributed ships the engine to its workers)."""
        return {key: value for key, value in self.__dict__.items() if key not in ("_state_lock", "_device_lock")}

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state)
        self._make_locks()

    @classmethod
    def from_bundle(cls, bundle, **kwargs) -> TiledRetrieval:
        """Engine for a loaded `satpy_prenet.bundle.Bundle`: its model, tile size and device unless given."""
        kwargs.setdefault("tile_size", bundle.header.tile_size)
        kwargs.setdefault("device", bundle.device)
        engine = cls(bundle.model, **kwargs)
        engine._token = bundle.header.sha256
        return engine

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

    def retrieve_dask(self, bt: da.Array, *, name_token: str | None = None) -> tuple[da.Array, da.Array]:
        """Lazy probability and rate of a dask array, equal to `predict` of the computed array.

        Each output chunk is computed from its input chunk and a halo of one tile size (NaN beyond the image)
        along the axes that have several chunks. Tiles straddling chunk borders are run once per chunk they touch,
        so large chunks waste less. Chunks smaller than a tile are merged with a neighbour first.

        Args:
            bt: Brightness temperatures (C, H, W) in K.
            name_token: Stable identity of the model (e.g. the bundle's sha256): graphs built with the same input,
                token and tiling get the same task names, so several products share one model run.

        Returns:
            ``(probability, rate)``, float32 dask arrays (H, W).
        """
        size = self.tile_size
        bt = bt.rechunk({0: -1, **{axis: ensure_minimum_chunksize(size, bt.chunks[axis]) for axis in (1, 2)}})
        depth = {0: 0, **{axis: size if len(bt.chunks[axis]) > 1 else 0 for axis in (1, 2)}}
        boundary = {axis: np.nan if depth[axis] else "none" for axis in depth}
        padded = da.overlap.overlap(bt, depth=depth, boundary=boundary) if depth[1] or depth[2] else bt
        chunks = ((2,), *(tuple(length - 2 * depth[axis] for length in padded.chunks[axis]) for axis in (1, 2)))
        token = tokenize(bt.name, name_token or self._token, self.tile_size, self.overlap)
        both = da.map_blocks(self._dask_block, padded, image_shape=bt.shape[1:], halo=(depth[1], depth[2]),
                             dtype=np.float32, chunks=chunks, meta=np.empty((0, 0, 0), dtype=np.float32),
                             name=f"prenet-retrieval-{token}")
        return both[0], both[1]

    def _dask_block(self, block: np.ndarray, image_shape: tuple[int, int], halo: tuple[int, int],
                    block_info=None) -> np.ndarray:
        location = block_info[None]["array-location"]
        probability, rate = self.predict_block(block, (location[1][0], location[2][0]), image_shape, halo)
        return np.stack([probability, rate])

    def _predict_region(self, window: np.ndarray, window_origin: tuple[int, int], image_shape: tuple[int, int],
                        core: tuple[int, int, int, int]) -> tuple[np.ndarray, np.ndarray]:
        """Outputs for the global region ``core`` (row0, row1, col0, col1) from ``window`` at ``window_origin``."""
        row0, row1, col0, col1 = core
        tiles = list(self._tiles(core, image_shape))
        self._check_window(window.shape[1:], window_origin, image_shape, tiles)
        valid = np.ones((row1 - row0, col1 - col0), dtype=bool)
        window_core = window[:, row0 - window_origin[0]:row1 - window_origin[0],
                             col0 - window_origin[1]:col1 - window_origin[1]]
        for channel in window_core:
            valid &= np.isfinite(channel)
        tiles = [start for start in tiles if self._touches_valid(start, core, valid)]
        accumulators = np.zeros((3, row1 - row0, col1 - col0), dtype=np.float32)
        for starts, outputs in self._run(window, window_origin, image_shape, tiles):
            for (top, left), output in zip(starts, outputs, strict=True):
                ys, xs, tile_ys, tile_xs = self._overlap(top, left, core)
                accumulators[:, ys, xs] += output[:, tile_ys, tile_xs]
        weight = accumulators[2]
        with np.errstate(invalid="ignore", divide="ignore"):
            result = accumulators[:2] / weight
        result[:, ~valid | (weight <= 0)] = np.nan
        return result[0], result[1]

    def _check_window(self, window_shape: tuple[int, int], window_origin: tuple[int, int],
                      image_shape: tuple[int, int], tiles: list[tuple[int, int]]) -> None:
        """The window must hold every in-image pixel of the tiles (else the halo was too narrow)."""
        if not tiles:
            return
        for axis in (0, 1):
            needed_low = max(0, min(start[axis] for start in tiles))
            needed_high = min(image_shape[axis], max(start[axis] for start in tiles) + self.tile_size)
            if window_origin[axis] > needed_low or window_origin[axis] + window_shape[axis] < needed_high:
                raise ValueError(f"the block's halo is too narrow for tiles of {self.tile_size} pixels: it covers "
                                 f"{window_origin[axis]}..{window_origin[axis] + window_shape[axis]} along axis "
                                 f"{axis}, the tiles need {needed_low}..{needed_high}")

    def _tiles(self, core: tuple[int, int, int, int], image_shape: tuple[int, int]) -> Iterator[tuple[int, int]]:
        """Global starts of the tiles of the image's grid that intersect ``core``, row-major."""
        ranges = []
        for low, high, size in ((core[0], core[1], image_shape[0]), (core[2], core[3], image_shape[1])):
            count = 1 + max(0, math.ceil((size - self.tile_size) / self.stride))
            first = max(0, (low - self.tile_size) // self.stride + 1)
            last = min(count - 1, (high - 1) // self.stride)
            ranges.append(range(first * self.stride, last * self.stride + 1, self.stride))
        return ((top, left) for top in ranges[0] for left in ranges[1])

    def _overlap(self, top: int, left: int, core: tuple[int, int, int, int]) -> tuple[slice, slice, slice, slice]:
        """Slices of the tile at (top, left) inside ``core``: in core coordinates, then in tile coordinates."""
        row0, row1, col0, col1 = core
        y0, y1 = max(top, row0), min(top + self.tile_size, row1)
        x0, x1 = max(left, col0), min(left + self.tile_size, col1)
        return (slice(y0 - row0, y1 - row0), slice(x0 - col0, x1 - col0),
                slice(y0 - top, y1 - top), slice(x0 - left, x1 - left))

    def _touches_valid(self, start: tuple[int, int], core: tuple[int, int, int, int], valid: np.ndarray) -> bool:
        ys, xs, _, _ = self._overlap(*start, core)
        return bool(valid[ys, xs].any())

    def _fill(self, buffer: np.ndarray, window: np.ndarray, window_origin: tuple[int, int],
              image_shape: tuple[int, int], top: int, left: int) -> None:
        """Copy the tile at global (top, left) into ``buffer`` (C, T, T); NaN outside the image."""
        buffer.fill(np.nan)
        y0 = max(top, 0, window_origin[0])
        y1 = min(top + self.tile_size, image_shape[0], window_origin[0] + window.shape[1])
        x0 = max(left, 0, window_origin[1])
        x1 = min(left + self.tile_size, image_shape[1], window_origin[1] + window.shape[2])
        if y1 > y0 and x1 > x0:
            buffer[:, y0 - top:y1 - top, x0 - left:x1 - left] = window[
                :, y0 - window_origin[0]:y1 - window_origin[0], x0 - window_origin[1]:x1 - window_origin[1]]

    def _run(self, window: np.ndarray, window_origin: tuple[int, int], image_shape: tuple[int, int],
             tiles: list[tuple[int, int]]) -> Iterator[tuple[list[tuple[int, int]], np.ndarray]]:
        """Run the model over ``tiles`` in batches; yield (starts, weighted outputs (n, 3, T, T)) per batch."""
        size = self.tile_size
        pinned = self.device.type == "cuda"
        buffer = torch.empty((min(self.batch_size, max(len(tiles), 1)), window.shape[0], size, size),
                             dtype=torch.float32, pin_memory=pinned)
        array = buffer.numpy()
        bar = self._progress_bar(len(tiles))
        position = 0
        try:
            while position < len(tiles):
                starts = tiles[position:position + min(self.batch_size, len(buffer))]
                for index, (top, left) in enumerate(starts):
                    self._fill(array[index], window, window_origin, image_shape, top, left)
                outputs = self._forward_or_shrink(buffer[:len(starts)])
                if outputs is None:
                    continue
                position += len(starts)
                if bar is not None:
                    bar.update(len(starts))
                yield starts, outputs
        finally:
            if bar is not None:
                bar.close()

    def _forward_or_shrink(self, batch: torch.Tensor) -> np.ndarray | None:
        """Weighted outputs of one batch, or None after a GPU out-of-memory error halved the batch size."""
        try:
            with self._device_lock:
                return self._forward(batch)
        except torch.cuda.OutOfMemoryError as error:
            if len(batch) == 1:
                raise RuntimeError(f"The GPU ran out of memory on {self.device} with a single tile of "
                                   f"{self.tile_size} x {self.tile_size} pixels per batch; free GPU memory, "
                                   "or run on the CPU") from error
        # Outside the except block, so the failed batch's tensors are released before the cache is emptied.
        if self.device.type == "cuda":
            torch.cuda.empty_cache()
        with self._state_lock:
            self.batch_size = max(1, min(self.batch_size, len(batch) // 2))
        LOG.warning("GPU out of memory on %s with %d tiles of %d pixels per batch; retrying with %d",
                    self.device, len(batch), self.tile_size, self.batch_size)
        return None

    def _forward(self, batch: torch.Tensor) -> np.ndarray:
        with torch.inference_mode():
            inputs = batch.to(self.device, non_blocking=True)
            autocast = (torch.autocast(device_type="cuda", dtype=self.amp_dtype) if self.amp_dtype is not None
                        else contextlib.nullcontext())
            with autocast:
                probability, rate = self.model(inputs)
            probability, rate = probability.float(), rate.float()
            finite = torch.isfinite(probability) & torch.isfinite(rate)
            weight = torch.where(finite, self._window, 0.0)
            weighted = torch.stack([torch.where(finite, probability, 0.0) * weight,
                                    torch.where(finite, rate, 0.0) * weight, weight], dim=1)
            return weighted.cpu().numpy()

    def _progress_bar(self, total: int):
        if not self.progress:
            return None
        from tqdm.auto import tqdm

        return tqdm(total=total, unit="tile", desc="PRE-Net")


_DEVICE_LOCKS: dict[str, threading.Lock] = {}
_DEVICE_LOCKS_GUARD = threading.Lock()


def _device_lock(device: torch.device) -> threading.Lock:
    """The process-wide lock serialising forward passes on one device (each GPU, or the CPU)."""
    name = f"cuda:{torch.cuda.current_device()}" if device.type == "cuda" and device.index is None else str(device)
    with _DEVICE_LOCKS_GUARD:
        return _DEVICE_LOCKS.setdefault(name, threading.Lock())


def _size_multiple(model: torch.nn.Module) -> int:
    """Factor the model needs input sizes to be multiples of (1 when it does not say)."""
    for owner in (model, getattr(model, "classifier", None)):
        multiple = getattr(owner, "size_multiple", None)
        if multiple is not None:
            return int(multiple)
    return 1


def _amp_dtype(device: torch.device) -> torch.dtype | None:
    if device.type != "cuda":
        return None
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _describe(device: torch.device) -> str:
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"{device} ({torch.cuda.get_device_name(index)})"
    return str(device)
