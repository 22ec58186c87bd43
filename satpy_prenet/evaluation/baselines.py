# SPDX-License-Identifier: GPL-3.0-or-later
"""Infrared baselines of the precipitation rate, to compare PRE-Net with on the same scenes and the same labels.

- :func:`gpi_rate`: the GOES Precipitation Index at pixel scale (Arkin and Meisner 1987).
- :func:`autoestimator_rate`: the power law of the NESDIS auto-estimator (Vicente, Scofield and Menzel 1998).
- :class:`ThresholdBaseline`: the best single 10.8 um threshold and its rate, tuned on labelled pixels.
- :class:`TreeBaseline`: per-pixel gradient-boosted trees (LightGBM) on the IR bands of a PRE-Net bundle.

The two formulas work elementwise on numpy, dask and xarray arrays (NaN in, NaN out). The fitted baselines are
saved as JSON, never pickled: the trees as LightGBM's text models inside one JSON document with a header.
:func:`fit_baselines` fits them on a Full-IPR ``train`` store, as ``satpy-prenet-train baseline`` does (which
then scores them with :func:`satpy_prenet.evaluation.evaluate.evaluate_store`). LightGBM (extras ``evaluation`` and
``training``) is imported only when trees are fitted or loaded.
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import xarray as xr

from satpy_prenet.atomic import atomic_path
from satpy_prenet.channels import bands as known_bands
from satpy_prenet.data.stores import FULL_IPR, StoreError, open_tiles, select_bands, store_path
from satpy_prenet.evaluation.metrics import RAIN_THRESHOLD

LOG = logging.getLogger(__name__)

#: The band every single-channel baseline reads: 10.8 um (C12 on FY-4A, C13 on FY-4B).
WINDOW_BAND = "IR10.8"

#: GPI: a constant rate under cold tops.
GPI_RATE_MM_H = 3.0
GPI_THRESHOLD_K = 235.0

#: Auto-estimator power law R = a * exp(-b * T**c) mm/h, T the 10.8 um brightness temperature in K.
AUTOESTIMATOR_COEFFICIENT = 1.1183e11
AUTOESTIMATOR_DECAY = 3.6382e-2
AUTOESTIMATOR_EXPONENT = 1.2
#: Rain only under tops colder than this (the rain/no-rain cut of the original).
AUTOESTIMATOR_RAIN_BELOW_K = 250.0
#: Tops colder than this get the rate at this temperature (about 298 mm/h): the cap of the power law.
AUTOESTIMATOR_COLDEST_K = 190.0

#: Candidate thresholds of :class:`ThresholdBaseline` (K).
THRESHOLD_GRID_K = tuple(np.round(np.arange(190.0, 300.001, 0.5), 1).tolist())
#: Candidate rain-probability thresholds of :class:`TreeBaseline`.
PROBABILITY_GRID = tuple(np.round(np.arange(0.02, 0.981, 0.01), 2).tolist())
#: Brightness temperature differences added as tree features when both bands are inputs (minuend, subtrahend):
#: water vapour minus window (tops near the tropopause), the split window (thin cirrus), 8.5 minus 10.8 um (phase).
FEATURE_DIFFERENCES = (("WV6.25", "IR10.8"), ("IR10.8", "IR12.0"), ("IR8.50", "IR10.8"))

THRESHOLD_FORMAT = "satpy-prenet-threshold-baseline"
TREE_FORMAT = "satpy-prenet-tree-baseline"
FORMAT_VERSION = 1
#: LightGBM settings of both boosters: small, reproducible (fixed seed, deterministic, few threads).
TREE_PARAMS = {"num_leaves": 31, "learning_rate": 0.1, "min_data_in_leaf": 200, "lambda_l2": 1.0, "max_bin": 255,
               "deterministic": True, "force_row_wise": True, "num_threads": 1, "verbosity": -1}
TREE_ROUNDS = 100
#: Regression target of the rate booster: ``log1p`` (fit log(1 + R), predict expm1) or ``rate`` (fit R).
TREE_TARGETS = ("log1p", "rate")
#: Share of the training pixels held out to choose the probability threshold.
HELD_OUT_FRACTION = 0.2
#: Random stream of the held-out split, apart from the stream of ``seed`` alone (with which the pixels may have been
#: drawn: the split would then follow the data).
HELD_OUT_STREAM = 1


class BaselineError(ValueError):
    """A baseline file that is missing, not JSON, of another format, or incomplete; or no pixels to fit on."""


def gpi_rate(bt108):
    """GOES Precipitation Index at pixel scale: 3 mm/h where the 10.8 um brightness temperature is below 235 K.

    Args:
        bt108: 10.8 um brightness temperature in K (numpy, dask or xarray).

    Returns:
        Rate in mm/h of the same kind and shape: 3 or 0, NaN where the input is NaN.
    """
    return step_rate(bt108, GPI_THRESHOLD_K, GPI_RATE_MM_H)


def autoestimator_rate(bt108):
    """Rate of the auto-estimator power law (Vicente, Scofield and Menzel 1998, BAMS 79, 1883-1898).

    R = 1.1183e11 * exp(-3.6382e-2 * T**1.2) mm/h for tops colder than 250 K (0 at 250 K and warmer), with T
    raised to 190 K first, which caps the rate at R(190 K) = 298 mm/h. Only the power law is implemented: the
    original also corrects the rate for moisture (precipitable water and relative humidity from the Eta model) and
    masks it with the cloud-top growth between two images and the cold-core gradients; those need NWP fields and
    the previous image, which this product does not have.

    Args:
        bt108: 10.8 um brightness temperature in K (numpy, dask or xarray).

    Returns:
        Rate in mm/h of the same kind and shape, NaN where the input is NaN.
    """
    def rate(bt):
        capped = np.maximum(bt, AUTOESTIMATOR_COLDEST_K)
        power_law = AUTOESTIMATOR_COEFFICIENT * np.exp(-AUTOESTIMATOR_DECAY * capped**AUTOESTIMATOR_EXPONENT)
        return _nan_where_nan(bt, np.where(bt < AUTOESTIMATOR_RAIN_BELOW_K, power_law, 0))

    return _elementwise(rate, bt108)


def step_rate(bt108, threshold_k: float, rate_mm_h: float):
    """``rate_mm_h`` where the brightness temperature is below ``threshold_k``, 0 elsewhere, NaN where NaN."""
    def rate(bt):
        dtype = np.result_type(bt.dtype, np.float32)
        return _nan_where_nan(bt, np.where(bt < threshold_k, dtype.type(rate_mm_h), dtype.type(0)))

    return _elementwise(rate, bt108)


def _elementwise(function: Callable, values):
    """``function`` of a numpy or dask array, or of the data of a DataArray (keeping its dims and coordinates)."""
    if isinstance(values, xr.DataArray):
        return xr.apply_ufunc(function, values, dask="allowed")
    return function(values)


def _nan_where_nan(bt, rate):
    return np.where(np.isnan(bt), np.nan, rate)


def csi_by_cut(values: np.ndarray, rain: np.ndarray, cuts: Sequence[float], *, below: bool) -> np.ndarray:
    """CSI of each rule "rain where ``values`` < cut" (``below``) or "rain where ``values`` >= cut" (not ``below``).

    Args:
        values: Finite scores of the pixels (e.g. brightness temperatures or rain probabilities).
        rain: Whether each pixel rains (its label reaches the rain threshold).
        cuts: Candidate cuts.
        below: Which side of the cut is rain.

    Returns:
        CSI of each cut (0 where there are no hits, misses nor false alarms).
    """
    cuts = np.asarray(cuts, dtype=np.float64)
    n_rain = int(np.count_nonzero(rain))
    flagged = np.searchsorted(np.sort(values), cuts, side="left")
    hits = np.searchsorted(np.sort(values[rain]), cuts, side="left")
    if not below:
        flagged, hits = values.size - flagged, n_rain - hits
    union = flagged + n_rain - hits  # hits + misses + false alarms
    return np.divide(hits, union, out=np.zeros(cuts.size), where=union > 0)


@dataclass(frozen=True)
class ThresholdBaseline:
    """The best single 10.8 um threshold: a constant rate under tops colder than ``threshold_k``.

    Attributes:
        threshold_k: Rain where the 10.8 um brightness temperature is below this (K).
        rate_mm_h: Rate given to those pixels: the mean label of the tuning pixels they hold.
        tuning: How it was tuned: CSI, pixel count, rain threshold, grid.
    """

    threshold_k: float
    rate_mm_h: float
    tuning: dict = field(default_factory=dict)

    @classmethod
    def tune(cls, bt108: np.ndarray, label: np.ndarray, threshold: float = RAIN_THRESHOLD,
             grid: Sequence[float] = THRESHOLD_GRID_K) -> ThresholdBaseline:
        """Pick the temperature of ``grid`` whose rule (BT < T) has the best CSI against (label >= ``threshold``).

        Ties go to the coldest temperature. The rate is the mean label of the pixels the rule flags, raised to
        ``threshold`` if lower (so that they count as rain).

        Raises:
            BaselineError: If no pixel has a finite temperature and label.
        """
        bt, label = _finite_pairs(bt108, label)
        csi = csi_by_cut(bt, label >= threshold, grid, below=True)
        best = int(np.argmax(csi))
        flagged = bt < grid[best]
        rate = max(float(label[flagged].mean()) if flagged.any() else threshold, threshold)
        return cls(float(grid[best]), rate, {"csi": float(csi[best]), "n_pixels": int(bt.size),
                                             "rain_threshold": threshold, "grid_k": [grid[0], grid[-1]]})

    def predict(self, bt108):
        """Rate in mm/h (numpy, dask or xarray, elementwise; NaN where the input is NaN)."""
        return step_rate(bt108, self.threshold_k, self.rate_mm_h)

    def to_dict(self) -> dict:
        """The JSON document of this baseline, with its format header."""
        return {"format": THRESHOLD_FORMAT, "version": FORMAT_VERSION, "band": WINDOW_BAND,
                "threshold_k": self.threshold_k, "rate_mm_h": self.rate_mm_h, "tuning": self.tuning}

    @classmethod
    def from_dict(cls, document: Mapping[str, Any], source: str = "threshold baseline") -> ThresholdBaseline:
        """Rebuild from :meth:`to_dict`; errors name ``source``."""
        _check_header(document, THRESHOLD_FORMAT, source)
        _require(document, ("threshold_k", "rate_mm_h"), source)
        return cls(float(document["threshold_k"]), float(document["rate_mm_h"]), dict(document.get("tuning", {})))

    def save(self, path: str | os.PathLike) -> Path:
        """Write the JSON file atomically; returns its path."""
        return _write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike) -> ThresholdBaseline:
        """Read a file written by :meth:`save`.

        Raises:
            BaselineError: Naming the file, if it is missing, not JSON, of another format or incomplete.
        """
        return cls.from_dict(_read_json(path), source=str(path))


def feature_names(bands: Sequence[str]) -> list[str]:
    """Names of the tree features of ``bands``: the bands, then the differences of :data:`FEATURE_DIFFERENCES`."""
    return [*bands, *(f"{first}-{second}" for first, second in _differences(bands))]


def _differences(bands: Sequence[str]) -> list[tuple[str, str]]:
    return [(first, second) for first, second in FEATURE_DIFFERENCES if first in bands and second in bands]


def feature_matrix(bt: np.ndarray, bands: Sequence[str]) -> np.ndarray:
    """Tree features (pixels, features) as float32 from brightness temperatures (bands, pixels) in ``bands`` order."""
    bands = list(bands)
    differences = [bt[bands.index(first)] - bt[bands.index(second)] for first, second in _differences(bands)]
    return np.stack([*bt, *differences], axis=1).astype(np.float32)


@dataclass
class TreeBaseline:
    """Per-pixel gradient-boosted trees: a rain classifier and a rate regressor on the IR bands.

    The product is the regressor's rate (at least the rain threshold) where the classifier's rain probability
    reaches ``probability_threshold``, 0 elsewhere, NaN where any band is NaN. Features: the brightness
    temperatures of ``bands`` and the differences of :data:`FEATURE_DIFFERENCES` among them, all available to any
    IR method at inference time. The training stores hold no viewing angles, so the satellite zenith is not one.

    Attributes:
        bands: Band keys of the inputs (``satpy_prenet.channels``), in input order.
        classifier: LightGBM booster of P(rate >= rain threshold).
        regressor: LightGBM booster of the rate on raining pixels (of log1p(rate) when ``target`` is ``log1p``).
        probability_threshold: Rain where the probability reaches this; the held-out CSI's best.
        target: ``log1p`` or ``rate``.
        provenance: Training store, pixel count, seed, library versions, held-out scores.
    """

    bands: tuple[str, ...]
    classifier: Any
    regressor: Any
    probability_threshold: float
    target: str = "log1p"
    provenance: dict = field(default_factory=dict)

    @property
    def features(self) -> list[str]:
        """Names of the features, in the boosters' order."""
        return feature_names(self.bands)

    @classmethod
    def fit(cls, bt: np.ndarray, label: np.ndarray, bands: Sequence[str], *, seed: int = 0, target: str = "log1p",
            rounds: int = TREE_ROUNDS, provenance: Mapping[str, Any] | None = None) -> TreeBaseline:
        """Fit both boosters on labelled pixels and choose the probability threshold on a held-out part of them.

        Args:
            bt: Brightness temperatures (bands, pixels) in K, in ``bands`` order; pixels with a NaN are dropped.
            label: Rates (pixels,) in mm/h; NaN is dropped.
            bands: Band keys of ``bt``.
            seed: Seed of the held-out split and of LightGBM.
            target: ``log1p`` or ``rate`` (see :data:`TREE_TARGETS`).
            rounds: Boosting rounds of each booster.
            provenance: Extra provenance to record (e.g. the store).

        Raises:
            BaselineError: If the bands are unknown, the target is not one of :data:`TREE_TARGETS`, or the pixels
                hold no rain or no dry pixel.
        """
        bands = tuple(_known(bands, "tree baseline"))
        if target not in TREE_TARGETS:
            raise BaselineError(f"tree baseline: target {target!r}, expected one of {', '.join(TREE_TARGETS)}")
        x, label = _training_pixels(bt, label, bands)
        held_out = np.random.default_rng((HELD_OUT_STREAM, seed)).random(label.size) < HELD_OUT_FRACTION
        rain = label >= RAIN_THRESHOLD
        classifier = _train_booster(x[~held_out], rain[~held_out].astype(np.float32), "binary", seed, rounds,
                                    bands)
        fit_rain = rain & ~held_out
        regressor = _train_booster(x[fit_rain], _encode(label[fit_rain], target), "regression", seed, rounds, bands)
        probability = classifier.predict(x[held_out])
        csi = csi_by_cut(probability, rain[held_out], PROBABILITY_GRID, below=False)
        best = int(np.argmax(csi))
        record = {**(provenance or {}), "n_pixels": int(label.size), "n_held_out": int(held_out.sum()), "seed": seed,
                  "rounds": rounds, "params": TREE_PARAMS, "held_out_csi": float(csi[best]), **_versions()}
        return cls(bands, classifier, regressor, PROBABILITY_GRID[best], target, record)

    def probability(self, bt: np.ndarray) -> np.ndarray:
        """Rain probability of brightness temperatures (bands, ...) in :attr:`bands` order; NaN where any is NaN."""
        return self._per_valid_pixel(bt, self.classifier.predict)

    def predict(self, bt: np.ndarray) -> np.ndarray:
        """Rate in mm/h of brightness temperatures (bands, ...) in :attr:`bands` order; NaN where any is NaN."""
        return self._per_valid_pixel(bt, self._rate_of_features)

    def _rate_of_features(self, x: np.ndarray) -> np.ndarray:
        rate = np.zeros(len(x), np.float32)
        rain = self.classifier.predict(x) >= self.probability_threshold
        if rain.any():
            rate[rain] = np.maximum(_decode(self.regressor.predict(x[rain]), self.target), RAIN_THRESHOLD)
        return rate

    def _per_valid_pixel(self, bt: np.ndarray, function: Callable[[np.ndarray], np.ndarray]) -> np.ndarray:
        """``function`` of the features of the pixels whose bands are all finite, NaN elsewhere, shaped as a band."""
        bt = np.asarray(bt, dtype=np.float32)
        if bt.shape[:1] != (len(self.bands),):
            raise ValueError(f"tree baseline: brightness temperatures of shape {bt.shape}, expected the "
                             f"{len(self.bands)} bands {', '.join(self.bands)} first")
        flat = bt.reshape(len(self.bands), -1)
        valid = np.isfinite(flat).all(axis=0)
        result = np.full(flat.shape[1], np.nan, np.float32)
        if valid.any():
            result[valid] = function(feature_matrix(flat[:, valid], self.bands))
        return result.reshape(bt.shape[1:])

    def to_dict(self) -> dict:
        """The JSON document: format header, bands, features, threshold, provenance and both text models."""
        return {"format": TREE_FORMAT, "version": FORMAT_VERSION, "bands": list(self.bands),
                "features": self.features, "probability_threshold": self.probability_threshold,
                "rain_threshold": RAIN_THRESHOLD, "target": self.target, "provenance": self.provenance,
                "classifier": self.classifier.model_to_string(), "regressor": self.regressor.model_to_string()}

    @classmethod
    def from_dict(cls, document: Mapping[str, Any], source: str = "tree baseline") -> TreeBaseline:
        """Rebuild from :meth:`to_dict`, checking the header; errors name ``source``."""
        _check_header(document, TREE_FORMAT, source)
        _require(document, ("bands", "features", "probability_threshold", "target", "classifier", "regressor"),
                 source)
        bands = tuple(_known(document["bands"], source))
        if list(document["features"]) != feature_names(bands):
            raise BaselineError(f"{source}: features {document['features']} do not follow from the bands "
                                f"{list(bands)}; expected {feature_names(bands)}")
        if document["target"] not in TREE_TARGETS:
            raise BaselineError(f"{source}: target {document['target']!r}, expected one of {', '.join(TREE_TARGETS)}")
        boosters = [_booster(document[name], name, len(bands) + len(_differences(bands)), source)
                    for name in ("classifier", "regressor")]
        return cls(bands, *boosters, float(document["probability_threshold"]), document["target"],
                   dict(document.get("provenance", {})))

    def save(self, path: str | os.PathLike) -> Path:
        """Write the JSON file atomically; returns its path."""
        return _write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | os.PathLike) -> TreeBaseline:
        """Read a file written by :meth:`save`.

        Raises:
            BaselineError: Naming the file, if it is missing, not JSON, of another format or version, lacks an
                entry, names unknown bands, or holds a model LightGBM cannot read.
        """
        return cls.from_dict(_read_json(path), source=str(path))


def _training_pixels(bt: np.ndarray, label: np.ndarray, bands: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Features and labels of the pixels with every band and the label finite, checking both classes are there."""
    bt = np.asarray(bt, dtype=np.float32)
    label = np.asarray(label, dtype=np.float32)
    valid = np.isfinite(bt).all(axis=0) & np.isfinite(label)
    rain = np.count_nonzero(label[valid] >= RAIN_THRESHOLD)
    if rain == 0 or rain == np.count_nonzero(valid):
        raise BaselineError(f"tree baseline: {np.count_nonzero(valid)} labelled pixels, {rain} of them raining; "
                            "the trees need both rain and dry pixels")
    return feature_matrix(bt[:, valid], bands), label[valid]


def _train_booster(x: np.ndarray, y: np.ndarray, objective: str, seed: int, rounds: int, bands: Sequence[str]):
    lgb = _lightgbm()
    data = lgb.Dataset(x, label=y, feature_name=feature_names(bands), free_raw_data=True,
                       params={"max_bin": TREE_PARAMS["max_bin"], "verbosity": -1})
    return lgb.train({**TREE_PARAMS, "objective": objective, "seed": seed}, data, num_boost_round=rounds)


def _encode(rate: np.ndarray, target: str) -> np.ndarray:
    return np.log1p(rate) if target == "log1p" else rate


def _decode(value: np.ndarray, target: str) -> np.ndarray:
    return np.expm1(value) if target == "log1p" else value


def _booster(model: Any, name: str, n_features: int, source: str):
    """A LightGBM booster from its text model, checked to take ``n_features`` features."""
    lgb = _lightgbm()
    if not isinstance(model, str):
        raise BaselineError(f"{source}: the {name} model is not a LightGBM text model")
    try:
        booster = lgb.Booster(model_str=model)
    except lgb.basic.LightGBMError as error:
        raise BaselineError(f"{source}: the {name} model cannot be read by LightGBM ({error})") from error
    if booster.num_feature() != n_features:
        raise BaselineError(f"{source}: the {name} model takes {booster.num_feature()} features, the header names "
                            f"{n_features}")
    return booster


def _lightgbm():
    try:
        import lightgbm
    except ImportError as error:
        raise ImportError("the tree baseline needs LightGBM: pip install 'satpy-prenet[evaluation]'") from error
    return lightgbm


def _versions() -> dict[str, str]:
    return {"lightgbm_version": _lightgbm().__version__, "numpy_version": np.__version__}


def _known(keys: Sequence[str], source: str) -> list[str]:
    """``keys`` if they are known band keys, else a BaselineError naming ``source``."""
    if not isinstance(keys, (list, tuple)) or not keys:
        raise BaselineError(f"{source}: no bands")
    try:
        return [band.key for band in known_bands(list(keys))]
    except ValueError as error:
        raise BaselineError(f"{source}: {error}") from error


def _finite_pairs(values: np.ndarray, label: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    values = np.asarray(values, dtype=np.float64).ravel()
    label = np.asarray(label, dtype=np.float64).ravel()
    valid = np.isfinite(values) & np.isfinite(label)
    if not valid.any():
        raise BaselineError("no pixel with a finite brightness temperature and label to tune on")
    return values[valid], label[valid]


def _write_json(path: str | os.PathLike, document: Mapping[str, Any]) -> Path:
    path = Path(path)
    with atomic_path(path) as partial:
        partial.write_text(json.dumps(document, indent=1), encoding="utf-8")
    return path


def _read_json(path: str | os.PathLike) -> Any:
    """The JSON content of ``path``; BaselineError naming the file if it is missing, unreadable or not JSON."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError as error:
        raise BaselineError(f"{path}: no such baseline file") from error
    except (OSError, UnicodeDecodeError) as error:
        raise BaselineError(f"{path}: cannot read the baseline file ({error})") from error
    try:
        return json.loads(text)
    except ValueError as error:
        raise BaselineError(f"{path}: not a JSON file ({error})") from error


def _check_header(document: Any, format_name: str, source: str) -> None:
    if not isinstance(document, Mapping) or document.get("format") != format_name:
        found = document.get("format") if isinstance(document, Mapping) else type(document).__name__
        raise BaselineError(f"{source}: format {found!r}, expected {format_name!r}")
    if document.get("version") != FORMAT_VERSION:
        raise BaselineError(f"{source}: {format_name} version {document.get('version')!r}, this code reads "
                            f"version {FORMAT_VERSION}")


def _require(document: Mapping[str, Any], keys: Sequence[str], source: str) -> None:
    missing = [key for key in keys if key not in document]
    if missing:
        raise BaselineError(f"{source}: missing entry(ies) {', '.join(missing)}")


# --- fitting on and scoring against the Full-IPR stores ------------------------------------------------------------


def sample_pixels(path: str | os.PathLike, bands: Sequence[str], *, max_pixels: int, seed: int = 0,
                  max_tiles: int = 256) -> tuple[np.ndarray, np.ndarray]:
    """Labelled pixels of a Full-IPR store with every band finite: at most ``max_pixels``, spread over tiles.

    Reads at most ``max_tiles`` tiles in a random order and keeps up to ``max_pixels / tiles read`` random valid
    pixels of each.

    Returns:
        Brightness temperatures (bands, pixels) in ``bands`` order and labels (pixels,), float32.

    Raises:
        StoreError: If the store is missing, of another kind, empty, or lacks a band.
        BaselineError: If it holds no labelled pixel with every band finite.
    """
    tiles = open_tiles(path, FULL_IPR)
    band_index = select_bands(tiles, bands, path)
    if tiles.sizes["tile"] == 0:
        raise StoreError(f"{path}: the store holds no tiles")
    rng = np.random.default_rng(seed)
    order = rng.permutation(tiles.sizes["tile"])[:max_tiles]
    per_tile = math.ceil(max_pixels / order.size)
    samples = [_tile_sample(*_read_tile(tiles, int(index), band_index), per_tile, rng) for index in order]
    bt = np.concatenate([sample[0] for sample in samples], axis=1)
    label = np.concatenate([sample[1] for sample in samples])
    if label.size == 0:
        raise BaselineError(f"{path}: no labelled pixel with every band of {', '.join(bands)} finite")
    LOG.info("%s: %d labelled pixels from %d tiles", path, label.size, order.size)
    return bt[:, :max_pixels], label[:max_pixels]


def _read_tile(tiles: xr.Dataset, index: int, band_index: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """Brightness temperatures (bands, y, x) and labels (y, x) of one tile, float32."""
    ir = np.asarray(tiles["ir"][index].values[band_index], dtype=np.float32)
    return ir, np.asarray(tiles["label"][index].values, np.float32)


def _tile_sample(bt: np.ndarray, label: np.ndarray, count: int,
                 rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``count`` random pixels (bands, pixels) with every band and the label finite, in their original order."""
    bt, label = bt.reshape(len(bt), -1), label.ravel()
    valid = np.flatnonzero(np.isfinite(bt).all(axis=0) & np.isfinite(label))
    if valid.size > count:
        valid = np.sort(rng.choice(valid, count, replace=False))
    return bt[:, valid], label[valid]


@dataclass(frozen=True)
class FittedBaselines:
    """The baselines fitted by :func:`fit_baselines` and where they were written."""

    trees: TreeBaseline
    threshold: ThresholdBaseline
    trees_path: Path
    threshold_path: Path


TREES_FILE = "baseline-trees.json"
THRESHOLD_FILE = "baseline-threshold.json"


def fit_baselines(data_root: str | os.PathLike, workdir: str | os.PathLike, bands: Sequence[str], *,
                  max_pixels: int = 1_000_000, seed: int = 0) -> FittedBaselines:
    """Fit the trees on ``bands`` and tune the 10.8 um threshold on the Full-IPR train split; write both files.

    Args:
        data_root: Dataset root holding ``full_ipr/train.zarr``.
        workdir: Folder of :data:`TREES_FILE` and :data:`THRESHOLD_FILE`.
        bands: Band keys of the trees (those of the PRE-Net training configuration).
        max_pixels: Pixels sampled from the store.
        seed: Seed of the sample, of the held-out split and of LightGBM.

    Raises:
        StoreError: If the store is missing, empty or lacks a band.
        BaselineError: If the sample holds no rain or no dry pixel.
    """
    train = store_path(data_root, FULL_IPR, "train")
    read = list(dict.fromkeys([*bands, WINDOW_BAND]))
    bt, label = sample_pixels(train, read, max_pixels=max_pixels, seed=seed)
    threshold = ThresholdBaseline.tune(bt[read.index(WINDOW_BAND)], label)
    trees = TreeBaseline.fit(bt[[read.index(key) for key in bands]], label, bands, seed=seed,
                             provenance={"store": str(Path(train).resolve())})
    workdir = Path(workdir)
    return FittedBaselines(trees, threshold, trees.save(workdir / TREES_FILE), threshold.save(workdir / THRESHOLD_FILE))
