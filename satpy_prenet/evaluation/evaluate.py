# SPDX-License-Identifier: GPL-3.0-or-later
"""The two ways ``satpy-prenet evaluate`` compares retrievals with a reference.

- :func:`evaluate_store`: methods (PRE-Net bundles, baselines, rules) run on the infrared tiles of a Full-IPR store
  made by ``satpy-prenet-train build`` and scored against its labels, pixel by pixel on the native 4 km grid.
- :func:`evaluate_products`: rates already in product files (the chain's CF NetCDF files: ``precipitation_rate``,
  ``precipitation_rate_gpi``, ...) scored against hourly reference files in the CLDAS-V2.0 format (real, or the
  simulated truth the project writes in that format). The images of one hour are averaged per method, then averaged
  onto the reference's 0.0625 degree cells (pyresample's bucket resampler: the mean of the 4 km pixels whose centre
  falls in a cell), since an hourly gauge-merged analysis cannot be compared with one instantaneous image pixel by
  pixel; the accumulation hour ends at the file's data time (see :mod:`satpy_prenet.data.cldas`).
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import xarray as xr
from tqdm import tqdm

from satpy_prenet.data.stores import FULL_IPR, StoreError, open_tiles, select_bands, store_path
from satpy_prenet.evaluation.comparison import Comparison
from satpy_prenet.evaluation.methods import RULES, Method, load_method, unique_names
from satpy_prenet.evaluation.metrics import FSS_SCALES

LOG = logging.getLogger(__name__)

#: Prefix of the rate variables of product files: precipitation_rate, precipitation_rate_gpi, ...
RATE_PREFIX = "precipitation_rate"


def evaluate_store(data_root: str | Path, methods: Sequence[Method], *, split: str = "test",
                   max_tiles: int | None = None, progress: bool = True, fss: bool = True) -> Comparison:
    """Score ``methods`` on the tiles of the Full-IPR ``split`` store under ``data_root``.

    ``fss=False`` leaves the fractions skill scores out (they cost about ten times the other scores).

    Raises:
        StoreError: The store is missing, empty, or lacks a band a method reads.
    """
    path = store_path(data_root, FULL_IPR, split)
    tiles = open_tiles(path, FULL_IPR)
    count = tiles.sizes["tile"] if max_tiles is None else min(max_tiles, tiles.sizes["tile"])
    if count == 0:
        raise StoreError(f"{path}: the store holds no tiles")
    methods = unique_names(methods)
    rows = {method.name: select_bands(tiles, method.bands, path) for method in methods}
    comparison = Comparison([method.name for method in methods], fss_scales=FSS_SCALES if fss else ())
    for index in tqdm(range(count), desc=f"{split} tiles", unit="tile", disable=not progress):
        tile = tiles.isel(tile=index)
        ir, label = tile["ir"].values, tile["label"].values
        predictions = {method.name: method.rate(ir[rows[method.name]]) for method in methods}
        comparison.add(label, predictions, name=f"{path.name} {tile['sample_id'].values}")
    return comparison


def evaluate_products(products: Sequence[str | Path], references: Sequence[str | Path], *,
                      progress: bool = True) -> Comparison:
    """Score the rates of product files against hourly CLDAS-format reference files (see the module docstring).

    Raises:
        ValueError: A file cannot be read (the message names it), or no product falls in a reference hour.
    """
    from satpy_prenet.data.cldas import read_cldas_precipitation

    hours = _hourly_products(products)
    pairs = []
    for reference in references:
        truth = read_cldas_precipitation(reference)
        end = dt.datetime.fromisoformat(truth.attrs["end_time"])
        if end in hours:
            pairs.append((reference, truth, hours[end]))
    if not pairs:
        raise ValueError(f"no product falls in the hour of any of the {len(references)} reference file(s)")
    methods = sorted({variable for _, _, images in pairs for variable in images})
    comparison = Comparison(methods)
    for reference, truth, images in tqdm(pairs, desc="reference hours", unit="hour", disable=not progress):
        missing = [method for method in methods if method not in images]
        if missing:
            LOG.warning("%s: no %s product in this hour; the hour is left out", reference, ", ".join(missing))
            continue
        area = _cldas_area(truth)
        label = truth.values[::-1]  # the area's rows run from north to south
        predictions = {method: _cell_means(rates, area) for method, rates in images.items()}
        comparison.add(label, predictions, name=Path(reference).name)
    return comparison


def _hourly_products(products: Sequence[str | Path]) -> dict[dt.datetime, dict[str, list[xr.DataArray]]]:
    """The rates of the product files, by the end of the hour that holds their start time, then by variable."""
    from satpy_prenet.ground.product_files import read_rate

    hours: dict[dt.datetime, dict[str, list[xr.DataArray]]] = defaultdict(lambda: defaultdict(list))
    for path in products:
        with xr.open_dataset(path) as dataset:
            variables = [str(name) for name in dataset.data_vars if str(name).startswith(RATE_PREFIX)]
        if not variables:
            raise ValueError(f"{path}: no {RATE_PREFIX}* variable; not a satpy-prenet rate product")
        for variable in variables:
            rate = read_rate(path, variable)
            start = rate.attrs.get("start_time")
            if not isinstance(start, dt.datetime):
                raise ValueError(f"{path}: {variable} has no start_time attribute")
            end = start.replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
            hours[end][variable].append(rate)
    return hours


def _cldas_area(truth: xr.DataArray):
    """The reference's regular latitude/longitude grid as a pyresample area, rows from north to south."""
    from pyresample import create_area_def

    lat, lon = truth["lat"].values, truth["lon"].values
    half = 0.5 * float(lat[1] - lat[0])
    return create_area_def("reference", "EPSG:4326", shape=(lat.size, lon.size),
                           area_extent=(lon[0] - half, lat[0] - half, lon[-1] + half, lat[-1] + half))


def _cell_means(rates: Sequence[xr.DataArray], area) -> np.ndarray:
    """The mean over the hour's images of each image's mean over the source pixels in each cell of ``area``."""
    return np.mean([np.asarray(_bucket_resampler(rate.attrs["area"], area).get_average(
        rate.data.astype(np.float32)), dtype=np.float64) for rate in rates], axis=0)


@functools.lru_cache(maxsize=4)
def _bucket_resampler(source, target):
    """Where each source pixel falls on the target grid, computed once per pair of grids (not per image)."""
    from pyresample.bucket import BucketResampler

    lons, lats = source.get_lonlats(chunks=1024)
    return BucketResampler(target, lons, lats)


def run_evaluation(*, data_root: Path | None, split: str, methods: Sequence[str], products: Sequence[Path],
                   references: Sequence[Path], out_dir: Path, max_tiles: int | None = None, device: str = "auto",
                   precision: str = "auto", progress: bool = True) -> Path:
    """Evaluate a store or product files (exactly one of the two) and write the report; returns ``report.md``.

    Bundles run on ``device`` at ``precision``.

    Raises:
        ValueError: Both or neither of store and products are given, or the inputs cannot be read.
    """
    from satpy_prenet.evaluation.report import write_report

    if (data_root is None) == (not products):
        raise ValueError("give either --store, or --products with --reference")
    if data_root is not None:
        if references:
            raise ValueError("--reference goes with --products, not with --store")
        loaded = [load_method(spec, device=device, precision=precision) for spec in (methods or _default_methods())]
        comparison = evaluate_store(data_root, loaded, split=split, max_tiles=max_tiles, progress=progress)
        tiles = open_tiles(store_path(data_root, FULL_IPR, split), FULL_IPR)
        context = {"data": f"{store_path(data_root, FULL_IPR, split)} ({comparison.images} tiles)",
                   "label": "the store's label on the native 4 km grid, pixel by pixel",
                   "simulated data": bool(tiles.attrs.get("simulated", False)),
                   **{f"method {method.name}": method.description for method in unique_names(loaded)}}
    else:
        if methods:
            raise ValueError("--method goes with --store; product files bring their own rates")
        if not references:
            raise ValueError("--products needs at least one --reference file")
        comparison = evaluate_products(products, references, progress=progress)
        context = {"data": f"{len(products)} product file(s), {comparison.images} reference hour(s)",
                   "label": "hourly CLDAS-format reference; products averaged over the hour and onto its "
                            "0.0625 degree cells"}
    return write_report(comparison, out_dir, title="satpy-prenet evaluation", context=context)


def _default_methods() -> list[str]:
    """The configured PRE-Net bundle (SATPY_PRENET_WEIGHTS, else the embedded demo bundle) and the two IR rules."""
    from satpy_prenet.bundle import resolve_bundle_path

    return [str(resolve_bundle_path()), *RULES]
