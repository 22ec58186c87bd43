# SPDX-License-Identifier: GPL-3.0-or-later
"""The on-disk training datasets: Swath-MPR and Full-IPR tiles in chunked Zarr stores (layout: docs/training-data.md).

A dataset root holds one store per kind and split, ``<root>/<kind>/<split>.zarr`` (kinds :data:`SWATH_MPR` and
:data:`FULL_IPR`, splits :data:`SPLITS`). Every store is an xarray Dataset whose first dimension is ``tile``, chunked
one tile per chunk so that a data loader reads tiles independently. Stores grow by appending whole batches of tiles;
the builder records the committed tile count of every store after each source it finishes, and a resumed build first
cuts each store back to that count with :func:`truncate`, which throws away whatever an interrupted append wrote
(an append grows the arrays one after another, so a kill can leave them at different lengths; :func:`tile_count`
is the shortest of them).
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import xarray as xr
import zarr

LOG = logging.getLogger(__name__)

#: Dataset kinds: multimodal tiles on GPM swaths, and infrared tiles on the native AGRI disc grid.
SWATH_MPR = "swath_mpr"
FULL_IPR = "full_ipr"
KINDS = (SWATH_MPR, FULL_IPR)
#: Splits, by time.
SPLITS = ("train", "validation", "test")
#: Layout version written into every store's attributes.
LAYOUT_VERSION = 1
#: Dimension along which tiles are stacked.
TILE_DIM = "tile"
#: Variables each kind must hold, with their dimensions.
VARIABLES = {
    SWATH_MPR: {
        "ir": (TILE_DIM, "ir_band", "along", "across"),
        "pmw": (TILE_DIM, "pmw_channel", "along", "across"),
        "pr": (TILE_DIM, "range_bin", "along", "across"),
        "geo": (TILE_DIM, "geo_channel", "along", "across"),
        "label": (TILE_DIM, "along", "across"),
    },
    FULL_IPR: {
        "ir": (TILE_DIM, "ir_band", "y", "x"),
        "label": (TILE_DIM, "y", "x"),
    },
}


class StoreError(ValueError):
    """A training store that is missing, of the wrong kind or layout, or that cannot take the tiles given."""


def store_path(root: str | os.PathLike, kind: str, split: str) -> Path:
    """Path of the store of ``kind`` and ``split`` under the dataset root."""
    if kind not in KINDS:
        raise StoreError(f"unknown dataset kind {kind!r}; expected one of {', '.join(KINDS)}")
    if split not in SPLITS:
        raise StoreError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    return Path(root) / kind / f"{split}.zarr"


def check_tiles(tiles: xr.Dataset, kind: str) -> None:
    """Raise a StoreError unless ``tiles`` holds the variables of ``kind`` with their dimensions and a sample id."""
    for name, dims in VARIABLES[kind].items():
        if name not in tiles:
            raise StoreError(f"{kind} tiles lack the variable {name!r}")
        if tiles[name].dims != dims:
            raise StoreError(f"{kind} variable {name!r} has dimensions {tiles[name].dims}, expected {dims}")
    if "sample_id" not in tiles.coords or tiles["sample_id"].dims != (TILE_DIM,):
        raise StoreError(f"{kind} tiles lack the per-tile coordinate 'sample_id'")


def append_tiles(path: str | os.PathLike, tiles: xr.Dataset, *, kind: str, attrs: dict | None = None) -> int:
    """Append ``tiles`` to the store at ``path``, creating it (with ``attrs``) if it does not exist yet.

    Returns:
        The number of tiles in the store afterwards.

    Raises:
        StoreError: If the tiles do not have the layout of ``kind`` or the store is of another kind.
    """
    check_tiles(tiles, kind)
    path = Path(path)
    tiles = _variable_length_strings(tiles.chunk({TILE_DIM: 1}))
    for variable in tiles.variables.values():
        variable.encoding.pop("chunks", None)
    if tile_count(path) is None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tiles.attrs = {**(attrs or {}), "kind": kind, "layout_version": LAYOUT_VERSION}
        encoding = {name: {"chunks": (1, *variable.shape[1:])} for name, variable in tiles.variables.items()
                    if variable.dims[:1] == (TILE_DIM,)}
        tiles.to_zarr(path, mode="w", consolidated=False, encoding=encoding)
    else:
        existing = dict(zarr.open_group(path, mode="r").attrs)
        if existing.get("kind") != kind:
            raise StoreError(f"{path}: store of kind {existing.get('kind')!r}, cannot append {kind} tiles")
        _check_axes(path, tiles)
        tiles.attrs = existing  # xarray rewrites the group attributes on append
        tiles.to_zarr(path, append_dim=TILE_DIM, consolidated=False)
    count = tile_count(path)
    LOG.debug("%s: %d tiles", path, count)
    return count


def _variable_length_strings(tiles: xr.Dataset) -> xr.Dataset:
    """Store text as variable-length UTF-8, which Zarr v3 specifies (fixed-width unicode it does not)."""
    text = {name: (tiles[name].dims, np.asarray(tiles[name].values, dtype=object))
            for name in tiles.variables if tiles[name].dtype.kind == "U"}
    return tiles.assign_coords({k: v for k, v in text.items() if k in tiles.coords}).assign(
        {k: v for k, v in text.items() if k not in tiles.coords})


def _check_axes(path: Path, tiles: xr.Dataset) -> None:
    """Raise a StoreError unless the non-tile coordinates of ``tiles`` (e.g. ``ir_band``) equal the store's."""
    group = zarr.open_group(path, mode="r")
    for name, coord in tiles.coords.items():
        if TILE_DIM in coord.dims:
            continue
        if name not in group:
            raise StoreError(f"{path}: the store has no coordinate {name!r}, the tiles to append do")
        stored = np.asarray(group[name][...])
        if stored.shape != coord.shape or not np.array_equal(stored.astype(coord.dtype), coord.values):
            raise StoreError(f"{path}: coordinate {name!r} of the tiles ({list(coord.values)}) differs from the "
                             f"store's ({list(stored)})")


def _tile_arrays(group: zarr.Group) -> dict[str, zarr.Array]:
    """The arrays of a store group whose first dimension is ``tile``."""
    arrays = {}
    for name, array in group.arrays():
        dims = array.attrs.get("_ARRAY_DIMENSIONS") or list(array.metadata.dimension_names or ())
        if dims and dims[0] == TILE_DIM:
            arrays[name] = array
    return arrays


def tile_lengths(path: str | os.PathLike) -> dict[str, int]:
    """Length along ``tile`` of every tile-indexed array of the store at ``path`` (empty if there is no store)."""
    path = Path(path)
    if not (path / "zarr.json").is_file():
        return {}
    return {name: int(array.shape[0]) for name, array in _tile_arrays(zarr.open_group(path, mode="r")).items()}


def tile_count(path: str | os.PathLike) -> int | None:
    """Number of complete tiles in the store at ``path`` (None if there is no store).

    That is the shortest tile-indexed array (an interrupted append leaves them at different lengths), and 0 for a
    store whose creation was interrupted before ``sample_id`` was written.
    """
    path = Path(path)
    if not (path / "zarr.json").is_file():
        return None
    lengths = tile_lengths(path)
    return min(lengths.values()) if "sample_id" in lengths else 0


def truncate(path: str | os.PathLike, count: int) -> None:
    """Cut every tile-indexed array of the store back to its first ``count`` tiles (undoing a partial append).

    Only shrinks: arrays of ``count`` tiles or fewer are left as they are.

    Raises:
        StoreError: If an array (or ``sample_id``) holds fewer than ``count`` tiles: the store lost committed tiles
            (deleted or replaced), which cutting back cannot repair.
    """
    group = zarr.open_group(path, mode="r+")
    arrays = _tile_arrays(group)
    short = sorted(name for name, array in arrays.items() if array.shape[0] < count)
    if "sample_id" not in arrays:
        short.insert(0, "sample_id")
    if short:
        raise StoreError(f"{path}: array(s) {', '.join(short)} hold fewer than the {count} committed tiles; "
                         "the store was deleted or replaced")
    for array in arrays.values():
        if array.shape[0] > count:
            array.resize((count, *array.shape[1:]))
    LOG.info("%s: cut back to %d committed tiles", path, count)


def delete(path: str | os.PathLike) -> None:
    """Remove the store at ``path`` (and whatever a half-finished creation left there)."""
    if Path(path).exists():
        shutil.rmtree(path)
        LOG.info("%s: removed (no committed tiles)", path)


def update_attrs(path: str | os.PathLike, attrs: dict) -> None:
    """Set attributes of the store at ``path`` (other attributes are kept)."""
    zarr.open_group(path, mode="r+").attrs.update(attrs)


def open_tiles(path: str | os.PathLike, kind: str | None = None) -> xr.Dataset:
    """Open a store lazily (dask, one tile per chunk).

    Raises:
        StoreError: If there is no store at ``path``, or it is not of ``kind`` or of this layout version.
    """
    path = Path(path)
    if tile_count(path) is None:
        raise StoreError(f"{path}: no training store here (build it with `satpy-prenet-train build`)")
    dataset = xr.open_zarr(path, consolidated=False)
    if dataset.attrs.get("layout_version") != LAYOUT_VERSION:
        raise StoreError(f"{path}: layout version {dataset.attrs.get('layout_version')!r}, expected {LAYOUT_VERSION}")
    if kind is not None and dataset.attrs.get("kind") != kind:
        raise StoreError(f"{path}: store of kind {dataset.attrs.get('kind')!r}, expected {kind}")
    return dataset


def channel_statistics(dataset: xr.Dataset, name: str) -> tuple[xr.DataArray, xr.DataArray]:
    """Lazy per-channel mean and standard deviation of variable ``name`` (axis 1) over finite values of every tile.

    Compute several of them together (``dask.compute``) to read the store once.
    """
    values = dataset[name]
    reduce = [dim for dim in values.dims if dim != values.dims[1]]
    finite = values.where(np.isfinite(values))
    return finite.mean(reduce, skipna=True), finite.std(reduce, skipna=True)


def select_bands(tiles: xr.Dataset, bands: Sequence[str], path: str | os.PathLike) -> list[int]:
    """Positions of ``bands`` along the store's ``ir_band`` coordinate.

    Raises:
        StoreError: Naming the store and the bands it lacks.
    """
    available = [str(key) for key in tiles["ir_band"].values]
    missing = [key for key in bands if key not in available]
    if missing:
        raise StoreError(f"{path}: the store lacks the band(s) {', '.join(missing)}; it holds "
                         f"{', '.join(available)}")
    return [available.index(key) for key in bands]
