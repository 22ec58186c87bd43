# SPDX-License-Identifier: GPL-3.0-or-later
"""trollflow2 worker adjusting the precipitation rate to rain gauges, with a filter state kept between slots."""

from __future__ import annotations

import copy
import json
import logging
import os
from pathlib import Path

from trollsift import compose

from satpy_prenet.ground.adjust import NO_UPDATE, SKIP_REASONS, adjust_precipitation_rate, parse_window
from satpy_prenet.ground.ekf import ZREKF
from satpy_prenet.ground.gauges import OUTSIDE, read_gauges

LOG = logging.getLogger(__name__)

#: Product-list key (top level or per area) with the entries of the adjusted products, in the layout of ``products``.
ADJUSTED_PRODUCTS_KEY = "gauge_adjusted_products"
_OUTSIDE_REASON = dict(SKIP_REASONS)[OUTSIDE]


def adjust_with_gauges(job, gauges, state_file, window="15min", fixed_b=True, products=("precipitation_rate",)):
    """Add ``<product>_adjusted`` to the scene: the product adjusted to rain gauges by a Kalman filter.

    Runs after ``trollflow2_plugins.prenet.compute_products`` and before ``resample``; the gauges are matched on the
    scene's native grid. The filter state is read from ``state_file`` (absent: a fresh filter) and written back
    atomically once the product is in the scene, so each slot starts from the previous one's posterior.

    Gauge data never end the job: a missing or unreadable file, gaps, negative or stuck values, gauges outside the
    image or records outside the window give a warning naming the file and the problem, and the product is still made
    with the predicted relation (status ``gated: no gauge update: ...``). A corrupt state file is renamed to
    ``<state_file>.corrupt`` with a warning and a fresh filter starts. A setting that cannot work (window, state file
    of several products) logs an error and adds nothing.

    satpy cannot load the adjusted products, so they must not be listed under ``products`` (``load_composites`` would
    refuse them): list them under ``gauge_adjusted_products`` (top level of the product list or per area, same
    layout); this worker adds them to every area's products once they are made.

    YAML::

        product_list:
          gauge_adjusted_products:
            precipitation_rate_adjusted:
              productname: precipitation_rate_adjusted
              formats: [{format: NETCDF4, writer: cf}]
        workers:
          - fun: !!python/name:trollflow2_plugins.ground.adjust_with_gauges
            gauges: /data/gauges/{start_time:%Y%m%d}/gauges_{start_time:%Y%m%d%H%M}.csv  # trollsift or strftime
            state_file: /var/lib/satpy-prenet/gauge_adjustment.json  # {product} needed for several products
            window: 15min          # gauge accumulation window ending at the slot time (the slot interval)
            fixed_b: true          # mean-field bias (b = 1); false: track a and b
            products: [precipitation_rate]
    """
    products = [products] if isinstance(products, str) else list(products)
    try:
        parse_window(window)
        if len(products) > 1 and "{product}" not in str(state_file):
            raise ValueError(f"state_file {state_file} needs a {{product}} field to adjust {len(products)} products")
    except ValueError as error:
        LOG.error("No gauge adjustment: %s", error)
        return
    scene = job["scene"]
    source, data = _read_gauge_file(gauges, job["input_mda"])
    for product in products:
        if product not in scene:
            LOG.warning("No gauge adjustment of %s: it is not in the scene", product)
            continue
        state_path = Path(str(state_file).replace("{product}", product))
        try:
            adjusted = _adjust(scene[product], data, source, _load_state(state_path), window, fixed_b)
        except ValueError as error:  # the product itself cannot be adjusted (no grid, no time): keep the others
            LOG.error("No gauge adjustment of %s: %s", product, error)
            continue
        scene[adjusted.attrs["name"]] = adjusted
        _save_state(adjusted, state_path)
    _register_products(job, scene)


def _read_gauge_file(pattern, mda):
    """The gauge file's path (or the pattern) and its data, or the problem as a string in place of the data."""
    try:
        path = Path(mda["start_time"].strftime(compose(str(pattern), mda)))
    except (KeyError, ValueError) as error:
        return pattern, f"the file name cannot be filled in from the message ({error!r})"
    try:
        return path, read_gauges(path)
    except (OSError, ValueError) as error:
        return path, str(error).removeprefix(f"{path}: ")


def _adjust(rate, data, source, state, window, fixed_b):
    """The adjusted product; gauge problems leave the relation predicted, with a warning naming the file."""
    if not isinstance(data, str):
        try:
            adjusted = adjust_precipitation_rate(rate, data, state, window=window, fixed_b=fixed_b)
        except ValueError as error:
            data = str(error)
        else:
            _log_outcome(adjusted.attrs, source)
            return adjusted
    LOG.warning("Gauge file %s: %s; the adjustment uses the predicted relation", source, data)
    adjusted = adjust_precipitation_rate(rate, None, state, window=window, fixed_b=fixed_b)
    adjusted.attrs["gauge_adjustment_status"] = f"{NO_UPDATE}: {source}: {data}"
    return adjusted


def _log_outcome(attrs, source):
    status, skipped = attrs["gauge_adjustment_status"], attrs["gauge_adjustment_skipped"]
    data_problems = [part for part in skipped.split(", ") if part and not part.endswith(_OUTSIDE_REASON)]
    if status != "accepted" or data_problems:
        details = f"; stations skipped: {skipped}" if skipped and skipped not in status else ""
        LOG.warning("Gauge file %s: %s%s", source, status, details)
    else:
        LOG.info("Gauge adjustment with %s: %s, a = %.3g, b = %.3g, %d gauge(s); skipped: %s", source, status,
                 attrs["gauge_adjustment_a"], attrs["gauge_adjustment_b"], attrs["gauge_adjustment_n_gauges"],
                 skipped or "none")


def _load_state(path):
    """The saved filter, or None for a fresh one (absent file; a corrupt file is set aside)."""
    if not path.exists():
        LOG.info("No gauge-adjustment state at %s: starting a fresh filter", path)
        return None
    try:
        return ZREKF.load(path)
    except OSError as error:
        LOG.warning("Gauge-adjustment state %s unreadable (%s): starting a fresh filter", path, error)
    except ValueError as error:
        aside = path.with_name(path.name + ".corrupt")
        LOG.warning("Corrupt gauge-adjustment state %s (%s): moving it to %s, starting a fresh filter", path,
                    str(error).removeprefix(f"corrupt EKF state file {path}: "), aside)
        try:
            os.replace(path, aside)
        except OSError as move_error:
            LOG.error("Could not move %s aside (%s): it will be overwritten", path, move_error)
    return None


def _save_state(adjusted, path):
    """Write the state after this slot atomically; a failure is logged, the product is kept."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        ZREKF.from_dict(json.loads(adjusted.attrs["gauge_adjustment_state"])).save(path)
    except OSError as error:
        LOG.error("Gauge-adjustment state not saved to %s (%s): the next slot starts from the previous state",
                  path, error)


def _register_products(job, scene):
    """Add the adjusted products' entries to every area's products, for resampling and saving."""
    settings = job["product_list"]["product_list"]
    for area in settings["areas"].values():
        entries = area.get(ADJUSTED_PRODUCTS_KEY, settings.get(ADJUSTED_PRODUCTS_KEY)) or {}
        for name, entry in entries.items():
            if name not in scene:
                continue
            entry = copy.deepcopy(entry)
            if "formats" not in entry and "formats" in settings:
                entry["formats"] = copy.deepcopy(settings["formats"])
            area.setdefault("products", {}).setdefault(name, entry)
