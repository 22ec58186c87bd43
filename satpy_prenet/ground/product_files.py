# SPDX-License-Identifier: GPL-3.0-or-later
"""Product files for the ground tools: a rate read back from a CF NetCDF product, the adjusted rate written beside it.

The chain writes its products with satpy's CF writer (the geostationary grid as a CF grid mapping, no 2-D
longitudes and latitudes); pyresample rebuilds the area from that grid mapping.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import xarray as xr
from pyresample.utils.cf import load_cf_area

from satpy_prenet.atomic import atomic_path


def read_rate(path, variable="precipitation_rate"):
    """A rate of a CF NetCDF product as a DataArray with ``area``, ``start_time`` and ``end_time`` attributes.

    Raises:
        ValueError: The file is unreadable, lacks the variable, or its grid mapping gives no area; the message
            names the file.
    """
    path = Path(path)
    try:
        with xr.open_dataset(path) as dataset:
            if variable not in dataset:
                raise ValueError(f"no variable {variable!r} (has {', '.join(map(str, dataset.data_vars))})")
            rate = dataset[variable].load()
            area, _ = load_cf_area(dataset, variable=variable)
            if "time" in rate.dims:  # `retrieve` writes one scan along a CF time axis of length 1
                rate = rate.squeeze("time", drop=True)
    except (OSError, ValueError, KeyError) as err:
        raise ValueError(f"{path}: cannot read {variable} with its grid ({err})") from err
    attrs = dict(rate.attrs, area=area)
    for key in ("start_time", "end_time"):
        if key in attrs:
            attrs[key] = pd.Timestamp(attrs[key]).to_pydatetime()
    return rate.assign_attrs(attrs)


def write_adjusted(source, adjusted, out_path):
    """Write the source product with the adjusted rate added, atomically (:func:`satpy_prenet.atomic.atomic_path`).

    Args:
        source: The product file the rate was read from (its variables and grid mapping are kept).
        adjusted: The adjusted DataArray (from :func:`satpy_prenet.ground.adjust.adjust_precipitation_rate`).
        out_path: The new file; it may not be the source itself.
    """
    source, out_path = Path(source), Path(out_path)
    if out_path.resolve() == source.resolve():
        raise ValueError(f"{out_path}: the adjusted product must not overwrite its source")
    attrs = {key: _netcdf_value(value) for key, value in adjusted.attrs.items() if key not in ("area", "_satpy_id")}
    with xr.open_dataset(source) as dataset:
        product = dataset.load()
    variable = adjusted.copy(data=adjusted.values)
    variable.attrs = attrs
    if "time" in product.dims:  # on the source's time axis, as its other variables
        variable = variable.expand_dims(time=product["time"].values)
    product[adjusted.name] = variable
    with atomic_path(out_path) as partial:
        product.to_netcdf(partial, encoding={adjusted.name: {"zlib": True, "complevel": 4}})


def _netcdf_value(value):
    """Attribute values NetCDF can hold: times and other objects as strings."""
    if isinstance(value, (str, int, float)):
        return value
    return str(value)
