# Copyright (c) 2026 satpy-prenet developers
#
# This program is free software: you can redistribute it and/or modify it under the terms of the GNU General Public
# License as published by the Free Software Foundation, either version 3 of the License, or (at your option) any later
# version. See the LICENSE file.
"""satpy compositors of the PRE-Net precipitation products.

The four products share one lazy model run: each compositor builds the same dask graph (same inputs, same bundle,
same tiling, hence the same task names), so computing them together runs the network once. :class:`BaselineRate`
makes the single-channel infrared baselines (GPI, auto-estimator) to compare them with, without a model.
"""

from __future__ import annotations

import logging

import dask.array as da
import numpy as np
import satpy
import xarray as xr
from satpy.composites.core import CompositeBase, GenericCompositor
from satpy.composites.fill import BackgroundCompositor
from satpy.dataset.metadata import combine_metadata

from satpy_prenet import channels

LOG = logging.getLogger(__name__)

#: Flag values of ``precipitation_quality``, in the spirit of the GOES-R rainfall rate DQF.
QUALITY_FLAGS = {"good": 0, "degraded_high_viewing_angle": 1, "invalid_input": 2, "space": 3}
#: Fill value of ``precipitation_flag`` where there is no retrieval. The flags are int8: CF 1.7 has no unsigned types.
FLAG_FILL = -1


class _PRENetCompositor(CompositeBase):
    """Base of the PRE-Net compositors: resolves the bundle, orders the bands, describes the product."""

    def __init__(self, name, weights=None, weights_sha256=None, device=None, batch_size=None, precision=None,
                 max_good_zenith=70.0, **kwargs):
        """Store the options; the weights are loaded on first use, once per process."""
        self.weights = weights
        self.weights_sha256 = weights_sha256
        self.device = device
        self.batch_size = batch_size
        self.precision = precision
        self.max_good_zenith = float(max_good_zenith)
        super().__init__(name, **kwargs)

    def __call__(self, projectables, optional_datasets=None, **attrs):
        """Build the product lazily from the infrared bands satpy loaded."""
        # torch is imported here, not at module level: satpy imports this module whenever it reads AGRI composites.
        from satpy_prenet.bundle import load_model_once, resolve_bundle_path
        from satpy_prenet.device import select_device

        arrays = self.match_data_arrays([*projectables, *(optional_datasets or [])])
        if not arrays:
            raise ValueError(f"{self.attrs['name']}: no AGRI infrared band could be loaded from the input files")
        device = self.device or satpy.config.get("prenet_device", "auto")
        bundle = load_model_once(resolve_bundle_path(self.weights), select_device(device),
                                 expected_sha256=self.weights_sha256)
        inputs = _select_bands(arrays, bundle)
        data = self._product(inputs, bundle)
        return xr.DataArray(data, dims=("y", "x"), coords=_yx_coords(inputs[0]),
                            attrs=self._attributes(inputs, bundle))

    def _product(self, inputs, bundle):
        raise NotImplementedError

    def _precision(self) -> str:
        return self.precision or satpy.config.get("prenet_precision", "auto")

    def _retrieval(self, inputs, bundle):
        return _shared_retrieval(inputs, bundle, self.batch_size, self._precision())

    def _attributes(self, inputs, bundle):
        from satpy_prenet.device import precision_name

        header = bundle.header
        attrs = _product_attributes(inputs, self.attrs)
        attrs.update({
            "prenet_precision": precision_name(bundle.device, self._precision()),
            "prenet_bundle_purpose": header.purpose,
            "prenet_bundle_sha256": header.sha256,
            "prenet_bundle_version": header.code_version,
            "prenet_bands": " ".join(header.bands),
            "rain_threshold_mm_h": header.rain_threshold,
        })
        if header.is_demo:
            attrs["comment"] = ("Made with a demonstration model trained on simulated data only; "
                                "not a measurement of real precipitation.")
            _warn_demo_once(bundle.path)
        return attrs


class PrecipitationRate(_PRENetCompositor):
    """Surface precipitation rate in mm h-1: the regressor where the classifier says rain, else 0."""

    def _product(self, inputs, bundle):
        return self._retrieval(inputs, bundle)[1]


class PrecipitationProbability(_PRENetCompositor):
    """Probability that the precipitation rate is at least the bundle's rain threshold (0.1 mm h-1)."""

    def _product(self, inputs, bundle):
        return self._retrieval(inputs, bundle)[0]


class PrecipitationFlag(_PRENetCompositor):
    """Rain (1) where the product's rate is positive (`satpy_prenet.inference.gate_rate`), else 0; -1 without data."""

    def _product(self, inputs, bundle):
        probability, rate = self._retrieval(inputs, bundle)
        return da.where(da.isnan(probability), FLAG_FILL, rate > 0).astype(np.int8)

    def _attributes(self, inputs, bundle):
        attrs = super()._attributes(inputs, bundle)
        attrs.update({"flag_values": np.array([0, 1], dtype=np.int8), "flag_meanings": "no_rain rain",
                      "units": "1", "_FillValue": FLAG_FILL,
                      "probability_threshold": bundle.header.probability_threshold})
        return attrs


class PrecipitationQuality(_PRENetCompositor):
    """Quality of the products: good, degraded at high viewing angle, invalid input, or space (no model run).

    -1 (the fill value) appears only after resampling, where the target area lies outside the file.
    """

    def _product(self, inputs, bundle):
        from satpy.modifiers.angles import get_satellite_zenith_angle

        zenith = get_satellite_zenith_angle(inputs[0]).data
        any_nan = da.any(da.stack([da.isnan(array.data) for array in inputs]), axis=0)
        space = ~da.isfinite(zenith)
        quality = da.where(zenith > self.max_good_zenith, QUALITY_FLAGS["degraded_high_viewing_angle"],
                           QUALITY_FLAGS["good"])
        quality = da.where(any_nan, QUALITY_FLAGS["invalid_input"], quality)
        return da.where(space, QUALITY_FLAGS["space"], quality).astype(np.int8)

    def _attributes(self, inputs, bundle):
        attrs = super()._attributes(inputs, bundle)
        attrs.update({"flag_values": np.array(list(QUALITY_FLAGS.values()), dtype=np.int8),
                      "flag_meanings": " ".join(QUALITY_FLAGS), "units": "1",
                      # Never on the native grid; resampling gives it to target pixels the file does not cover.
                      "_FillValue": FLAG_FILL, "max_good_zenith_deg": self.max_good_zenith})
        return attrs


class BaselineRate(CompositeBase):
    """Precipitation rate in mm h-1 of a single-channel infrared baseline, from the 10.8 um brightness temperature.

    Options: ``method``, one of :data:`BASELINE_METHODS`: ``gpi`` (GOES Precipitation Index, 3 mm h-1 below
    235 K) or ``autoestimator`` (the power law of the NESDIS auto-estimator, without its NWP corrections); see
    ``satpy_prenet.evaluation.baselines``. NaN wherever the input is NaN (space, invalid input), as the PRE-Net
    products.
    """

    def __init__(self, name, method="gpi", **kwargs):
        """Store the method; nothing is computed before the call."""
        if method not in BASELINE_METHODS:
            raise ValueError(f"{name}: unknown baseline method {method!r}; expected one of {list(BASELINE_METHODS)}")
        self.method = method
        super().__init__(name, **kwargs)

    def __call__(self, projectables, optional_datasets=None, **attrs):
        """Build the rate lazily from the 10.8 um band."""
        from satpy_prenet.evaluation import baselines

        (bt108,) = self.match_data_arrays(projectables)
        platform = bt108.attrs.get("platform_name")
        if channels.band_key(bt108.attrs.get("name"), platform) != baselines.WINDOW_BAND:
            raise ValueError(f"{self.attrs['name']}: expected the 10.8 um band, got {bt108.attrs.get('name')!r} "
                             f"of {platform}")
        rate = getattr(baselines, BASELINE_METHODS[self.method])(bt108.data.astype(np.float32))
        attrs = _product_attributes([bt108], self.attrs)
        attrs.update({"retrieval_method": self.method, "input_band": baselines.WINDOW_BAND})
        return xr.DataArray(rate, dims=("y", "x"), coords=_yx_coords(bt108), attrs=attrs)


class QualityLayer(GenericCompositor):
    """``precipitation_quality`` as a layer of the pictures (coloured by its own palette in the enhancements).

    The flags become floating point with NaN where they are fill (pixels of a resampled grid the file does not
    cover): satpy's ``palettize`` leaves NaN transparent but would give an integer fill the first colour.
    """

    def __call__(self, projectables, **kwargs):
        """The layer, lazily."""
        (quality,) = self.match_data_arrays(projectables)
        layer = quality.where(quality != FLAG_FILL).astype(np.float32)
        layer.attrs = {key: value for key, value in quality.attrs.items()
                       if key not in ("_FillValue", "flag_values", "flag_meanings", "units")}
        return super().__call__([layer], **kwargs)


class InfraredBackground(GenericCompositor):
    """The 10.8 um brightness temperature as the grey background of the quick look, without NaN.

    satpy's ``BackgroundCompositor`` leaves a pixel empty wherever the background is NaN, whatever lies on top: the
    NaN (space, a dead band) take ``fill_kelvin``, a warm temperature shown dark, and the ``precipitation_no_data``
    layer above shows those pixels as space or no data.
    """

    def __init__(self, name, fill_kelvin=310.0, **kwargs):
        """Store the temperature given to NaN pixels."""
        self.fill_kelvin = float(fill_kelvin)
        super().__init__(name, **kwargs)

    def __call__(self, projectables, **kwargs):
        """The background, lazily."""
        (bt108,) = self.match_data_arrays(projectables)
        return super().__call__([bt108.fillna(self.fill_kelvin)], **kwargs)


class Picture(BackgroundCompositor):
    """satpy's ``BackgroundCompositor`` in float32: a picture's enhanced layers, in [0, 1], at half the memory.

    satpy composes the layers in float64; float32 still resolves them far finer than the 8-bit PNG they become. A
    full disc's RGBA picture takes 115 MiB instead of 230 MiB, in the products a job keeps and after resampling.
    """

    def __call__(self, projectables, *args, **kwargs):
        """The picture, lazily."""
        picture = super().__call__(projectables, *args, **kwargs)
        return picture.astype(np.float32, keep_attrs=True)


#: Methods of :class:`BaselineRate` and their rate functions in ``satpy_prenet.evaluation.baselines``.
BASELINE_METHODS = {"gpi": "gpi_rate", "autoestimator": "autoestimator_rate"}


def _product_attributes(inputs: list[xr.DataArray], compositor_attrs: dict) -> dict:
    """Attributes of a product: the inputs' combined metadata less the band's own, plus the compositor's YAML ones."""
    attrs = combine_metadata(*[array.attrs for array in inputs])
    for key in ("wavelength", "calibration", "modifiers", "resolution", "long_name", "units", "standard_name",
                "file_key", "file_type", "band_names", "center_wavelength", "valid_range", "lut_key"):
        attrs.pop(key, None)
    attrs.update({key: value for key, value in compositor_attrs.items() if key not in ("prerequisites",
                                                                                       "optional_prerequisites")})
    attrs.update({"area": inputs[0].attrs["area"], "sensor": inputs[0].attrs.get("sensor", "agri")})
    return attrs


_DEMO_WARNED: set = set()


def _warn_demo_once(path) -> None:
    """Log, once per process and bundle, that the products come from a model trained on simulated data."""
    if path not in _DEMO_WARNED:
        _DEMO_WARNED.add(path)
        LOG.warning("PRE-Net products made with the demonstration bundle %s, trained on simulated data only", path)


def _select_bands(arrays: list[xr.DataArray], bundle) -> list[xr.DataArray]:
    """Order the loaded bands as the bundle expects them; a clear error names what the file lacks."""
    from satpy_prenet.bundle import check_bands

    platform = arrays[0].attrs.get("platform_name")
    reader = arrays[0].attrs.get("reader")
    if platform in channels.READERS and reader not in (None, channels.READERS[platform]):
        raise ValueError(f"{platform} AGRI data of {arrays[0].attrs.get('start_time')} were read with satpy's "
                         f"{reader!r} reader, which names the {platform} channels wrongly; use "
                         f"Scene(reader={channels.READERS[platform]!r}, ...)")
    by_key = {channels.band_key(array.attrs.get("name"), platform): array for array in arrays}
    by_key.pop(None, None)
    source = f"{platform} AGRI data of {arrays[0].attrs.get('start_time')}"
    check_bands(bundle.header, list(by_key), source=source)
    return [by_key[key] for key in bundle.header.bands]


def _shared_retrieval(inputs: list[xr.DataArray], bundle, batch_size: int | None, precision: str):
    """Lazy (probability, rate) on the native grid; identical task names for identical inputs and bundle."""
    from satpy_prenet.inference import TiledRetrieval, gate_rate

    bt = da.stack([array.data.astype(np.float32) for array in inputs])
    engine = TiledRetrieval.from_bundle(bundle, batch_size=batch_size, precision=precision)
    probability, rate = engine.retrieve_dask(bt)  # task names keyed by the bundle sha256 and precision
    return probability, gate_rate(probability, rate, bundle.header.probability_threshold, bundle.header.rain_threshold)


def _yx_coords(array: xr.DataArray) -> dict:
    """The coordinates of a product: the input's grid, CRS and scan start.

    Writers need the CRS to tell the grid is projected; satpy's CF writer makes the scalar ``time`` (the scan's
    start) a time axis with its bounds.
    """
    coords = {name: array.coords[name] for name in ("y", "x", "crs") if name in array.coords}
    if "start_time" in array.attrs:
        coords["time"] = np.datetime64(array.attrs["start_time"], "ns")
    return coords
