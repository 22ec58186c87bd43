# SPDX-License-Identifier: GPL-3.0-or-later
"""torch Datasets over the Swath-MPR and Full-IPR Zarr stores (layout: docs/training-data.md).

A sample is a dict of float32 tensors (channels first), the label (NaN where there is none), the ``footprint``
(1 on the tile's real pixels, 0 on the padding), the tile's position ``index`` in the store and its ``sample_id``
(the key of the Self-MaskTune masks). Inputs are normalised per
channel with statistics of the ``train`` split and missing inputs become 0 (the normalised mean); height and width
are padded at the far end to the next multiple of the model's size multiple (the 49 across-track footprints of a
swath tile become 64), with missing labels on the padding, which the losses ignore (the distillation losses
through ``footprint``).

The store is opened lazily in whichever process reads it first, so the datasets work with DataLoader workers and
under DistributedSampler; one tile is one Zarr chunk, so a sample costs one read per variable.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dask
import numpy as np
import torch
import torch.nn.functional as F
import xarray as xr
from torch.utils.data import Dataset

from satpy_prenet.data.stores import (
    FULL_IPR,
    SWATH_MPR,
    StoreError,
    channel_statistics,
    open_tiles,
    select_bands,
    store_path,
    tile_count,
)

LOG = logging.getLogger(__name__)

#: Input variables of each kind, with the name of their channel dimension.
INPUTS = {
    SWATH_MPR: {"ir": "ir_band", "pmw": "pmw_channel", "pr": "range_bin", "geo": "geo_channel"},
    FULL_IPR: {"ir": "ir_band"},
}
#: Smallest standard deviation used for normalisation (a constant channel is only centred).
MIN_STD = 1e-6


@dataclass(frozen=True)
class Normalisation:
    """Per-channel mean and standard deviation of input variables.

    Attributes:
        stats: Variable name -> (mean per channel, std per channel), as plain lists (checkpoint friendly).
    """

    stats: Mapping[str, tuple[tuple[float, ...], tuple[float, ...]]]

    def to_dict(self) -> dict[str, dict[str, list[float]]]:
        """Return a JSON/checkpoint-serialisable dict."""
        return {name: {"mean": list(mean), "std": list(std)} for name, (mean, std) in self.stats.items()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Mapping[str, Sequence[float]]]) -> Normalisation:
        """Rebuild from `to_dict`."""
        return cls({name: (tuple(map(float, item["mean"])), tuple(map(float, item["std"])))
                    for name, item in data.items()})

    def only(self, *names: str) -> Normalisation:
        """The statistics of the variables ``names`` alone (e.g. the IR of a multimodal store for an IR student)."""
        return Normalisation({name: self.stats[name] for name in names})

    def apply(self, name: str, values: np.ndarray) -> np.ndarray:
        """Normalise ``values`` (channels first) of variable ``name``; NaN and infinities become 0."""
        mean, std = (np.asarray(part, np.float32).reshape(-1, 1, 1) for part in self.stats[name])
        return np.nan_to_num((values - mean) / std, nan=0.0, posinf=0.0, neginf=0.0).astype(np.float32)


def compute_normalisation(path: str | os.PathLike, kind: str, *, bands: Sequence[str]) -> Normalisation:
    """Statistics of every input variable of the (train-split) store at ``path``, IR restricted to ``bands``.

    Raises:
        StoreError: If the store is missing, of another kind, or lacks one of ``bands``.
    """
    tiles = open_tiles(path, kind)
    band_index = select_bands(tiles, bands, path)
    lazy = {name: channel_statistics(tiles, name) for name in INPUTS[kind]}
    (computed,) = dask.compute(lazy)  # one pass over the store for every mean and deviation
    stats = {}
    for name, (mean, std) in computed.items():
        mean, std = np.asarray(mean.values, np.float64), np.asarray(std.values, np.float64)
        if name == "ir":
            mean, std = mean[band_index], std[band_index]
        bad = ~np.isfinite(mean) | ~np.isfinite(std) | (std < MIN_STD)
        if bad.any():
            LOG.warning("%s: %s channel(s) %s hold no finite or only constant values; they are only centred",
                        path, name, np.flatnonzero(bad).tolist())
        mean = np.where(np.isfinite(mean), mean, 0.0)
        std = np.where(np.isfinite(std) & (std >= MIN_STD), std, 1.0)
        stats[name] = (tuple(mean.tolist()), tuple(std.tolist()))
    LOG.info("Normalisation statistics from %s", path)
    return Normalisation(stats)


def cached_normalisation(cache: str | os.PathLike, path: str | os.PathLike, kind: str, *, bands: Sequence[str],
                         write: bool = True) -> Normalisation:
    """`compute_normalisation`, computed once and kept in the JSON file ``cache``.

    The cache is keyed by the store's path, its tile count, its kind and the bands; a cache of another key is
    recomputed (and replaced when ``write``; in a distributed run only the main process writes).
    """
    cache = Path(cache)
    key = {"store": str(Path(path).resolve()), "kind": kind, "tiles": tile_count(path), "bands": list(bands)}
    try:
        record = json.loads(cache.read_text(encoding="utf-8"))
        if record.get("key") == key:
            LOG.info("Normalisation statistics of %s from %s", path, cache)
            return Normalisation.from_dict(record["stats"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        pass
    normalisation = compute_normalisation(path, kind, bands=bands)
    if write:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_name(f".{cache.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"key": key, "stats": normalisation.to_dict()}), encoding="utf-8")
        os.replace(tmp, cache)
    return normalisation


def padded(size: int, multiple: int) -> int:
    """Next multiple of ``multiple`` from ``size``."""
    return math.ceil(size / multiple) * multiple


class TileDataset(Dataset):
    """Tiles of one Swath-MPR or Full-IPR store.

    Args:
        path: The store (``<root>/<kind>/<split>.zarr``).
        kind: ``swath_mpr`` or ``full_ipr``; the store must be of that kind.
        bands: IR band keys to read, in channel order.
        normalisation: Train-split statistics of the variables read; None returns raw values with NaN kept (the
            retriever normalises itself).
        size_multiple: Height and width are padded to a multiple of this.
        variables: Input variables to read (default: every input of ``kind``; the student needs only ``ir``).

    Raises:
        StoreError: If the store is missing, of another kind or layout, or lacks a band.
    """

    def __init__(self, path: str | os.PathLike, kind: str, *, bands: Sequence[str],
                 normalisation: Normalisation | None, size_multiple: int,
                 variables: Sequence[str] | None = None) -> None:
        self.path = Path(path)
        self.kind = kind
        tiles = open_tiles(self.path, kind)
        self.band_index = select_bands(tiles, bands, self.path)
        self.variables = tuple(variables or INPUTS[kind])
        unknown = [name for name in self.variables if name not in INPUTS[kind]]
        if unknown:
            raise StoreError(f"{self.path}: {kind} stores have no input variable(s) {', '.join(unknown)}")
        if normalisation is not None:
            lacking = [name for name in self.variables if name not in normalisation.stats]
            if lacking:
                raise ValueError(f"no normalisation statistics for {', '.join(lacking)}")
        self.normalisation = normalisation
        self.size_multiple = size_multiple
        self.sample_ids = tuple(str(value) for value in tiles["sample_id"].values)
        if not self.sample_ids:
            raise StoreError(f"{self.path}: the store holds no tiles")
        self.attrs = dict(tiles.attrs)
        self._tiles: xr.Dataset | None = None

    def __len__(self) -> int:
        return len(self.sample_ids)

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["_tiles"] = None  # every worker process opens the store itself
        return state

    @property
    def tiles(self) -> xr.Dataset:
        """The store, opened without dask on first use in this process."""
        if self._tiles is None:
            self._tiles = xr.open_zarr(self.path, consolidated=False, chunks=None)
        return self._tiles

    def __getitem__(self, index: int) -> dict[str, Any]:
        tile = self.tiles.isel(tile=index)
        sample: dict[str, Any] = {"index": index, "sample_id": self.sample_ids[index]}
        for name in self.variables:
            values = np.asarray(tile[name].values, np.float32)
            if name == "ir":
                values = values[self.band_index]
            if self.normalisation is not None:
                values = self.normalisation.apply(name, values)
            sample[name] = self._pad(torch.from_numpy(values), 0.0 if self.normalisation else math.nan)
        label = torch.from_numpy(np.asarray(tile["label"].values, np.float32))
        sample["label"] = self._pad(label[None], math.nan)[0]
        sample["footprint"] = self._pad(torch.ones((1, *label.shape)), 0.0)[0]
        return sample

    def _pad(self, values: torch.Tensor, fill: float) -> torch.Tensor:
        height, width = values.shape[-2:]
        pad_h = padded(height, self.size_multiple) - height
        pad_w = padded(width, self.size_multiple) - width
        if not pad_h and not pad_w:
            return values
        return F.pad(values, (0, pad_w, 0, pad_h), value=fill)


def open_split(root: str | os.PathLike, kind: str, split: str, **kwargs: Any) -> TileDataset:
    """`TileDataset` of ``<root>/<kind>/<split>.zarr``; keyword arguments as for `TileDataset`."""
    return TileDataset(store_path(root, kind, split), kind, **kwargs)


def is_simulated(dataset: TileDataset) -> bool:
    """Whether the store holds simulated data (store attribute ``simulated``)."""
    return bool(dataset.attrs.get("simulated", False))
