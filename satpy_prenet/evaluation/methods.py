# SPDX-License-Identifier: GPL-3.0-or-later
"""The retrievals an evaluation compares, behind one interface: a rain rate from brightness temperatures.

A :class:`Method` names the infrared bands it reads and maps brightness temperatures (bands, H, W) in K, in that band
order, to a rain rate (H, W) in mm/h, NaN where it gives no value. :func:`load_method` makes one from what a user
names on the command line:

- ``gpi`` and ``autoestimator``: the two infrared rules, which need no fitting;
- a weights bundle (``.safetensors``): PRE-Net, run over the image in tiles as the satpy products run it, with the
  rate gated as the products gate it (:func:`satpy_prenet.inference.gate_rate`);
- a baseline file written by ``satpy-prenet-train baseline`` (``.json``): the tuned 10.8 um threshold or the
  gradient-boosted trees.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from satpy_prenet.evaluation.baselines import (
    THRESHOLD_FORMAT,
    TREE_FORMAT,
    WINDOW_BAND,
    ThresholdBaseline,
    TreeBaseline,
    autoestimator_rate,
    gpi_rate,
)

#: Names of the methods that need no file.
RULES = ("gpi", "autoestimator")


@dataclass(frozen=True)
class Method:
    """One retrieval: its name in reports, the bands it reads, and its rate from those bands.

    Attributes:
        name: Name in the report's tables and figures.
        bands: Band keys (:mod:`satpy_prenet.channels`) of the rows ``rate`` takes, in that order.
        rate: Brightness temperatures (len(bands), H, W) in K -> rain rate (H, W) in mm/h.
        description: What the method is (a file and its purpose, or the rule), for the report.
    """

    name: str
    bands: tuple[str, ...]
    rate: Callable[[np.ndarray], np.ndarray]
    description: str


def load_method(spec: str, *, device: str = "auto", precision: str = "auto") -> Method:
    """The method named by ``spec``: ``gpi``, ``autoestimator``, a ``.safetensors`` bundle or a baseline ``.json``.

    A bundle runs on ``device`` at ``precision`` (`satpy_prenet.device.PRECISIONS`).

    Raises:
        ValueError: ``spec`` is no known rule and no readable bundle or baseline file; the message names it.
    """
    if spec == "gpi":
        return Method("GPI", (WINDOW_BAND,), lambda bt: gpi_rate(bt[0]),
                      "GOES Precipitation Index at pixel scale: 3 mm/h below 235 K at 10.8 um")
    if spec == "autoestimator":
        return Method("auto-estimator", (WINDOW_BAND,), lambda bt: autoestimator_rate(bt[0]),
                      "auto-estimator power law of the 10.8 um temperature (Vicente et al. 1998)")
    path = Path(spec)
    if path.suffix == ".safetensors":
        return _bundle_method(path, device, precision)
    if path.suffix == ".json":
        return _baseline_method(path)
    raise ValueError(f"{spec}: not a method; give {', '.join(RULES)}, a weights bundle (.safetensors) or a baseline "
                     "file (.json) written by `satpy-prenet-train baseline`")


def _bundle_method(path: Path, device: str, precision: str) -> Method:
    from satpy_prenet.bundle import load_bundle
    from satpy_prenet.device import precision_name
    from satpy_prenet.inference import TiledRetrieval, gate_rate

    bundle = load_bundle(path, device)
    engine = TiledRetrieval.from_bundle(bundle, precision=precision)
    header = bundle.header

    def rate(bt: np.ndarray) -> np.ndarray:
        probability, rain = engine.predict(bt)
        return gate_rate(probability, rain, header.probability_threshold, header.rain_threshold)

    return Method(f"PRE-Net ({bundle.header.purpose})", tuple(bundle.header.bands), rate,
                  f"PRE-Net bundle {path} (purpose {bundle.header.purpose}, sha256 {bundle.header.sha256[:12]}, "
                  f"{precision_name(bundle.device, precision)})")


def _baseline_method(path: Path) -> Method:
    try:
        kind = json.loads(path.read_text()).get("format")
    except (OSError, ValueError, AttributeError) as error:
        raise ValueError(f"{path}: not a readable baseline file ({error})") from error
    if kind == THRESHOLD_FORMAT:
        threshold = ThresholdBaseline.load(path)
        return Method("threshold (tuned)", (WINDOW_BAND,), lambda bt: threshold.predict(bt[0]),
                      f"best single 10.8 um threshold from {path}: {threshold.rate_mm_h:.2f} mm/h below "
                      f"{threshold.threshold_k:g} K")
    if kind == TREE_FORMAT:
        trees = TreeBaseline.load(path)
        return Method("trees (IR)", tuple(trees.bands), trees.predict,
                      f"per-pixel gradient-boosted trees on {', '.join(trees.bands)} from {path}")
    raise ValueError(f"{path}: format {kind!r} is neither {THRESHOLD_FORMAT!r} nor {TREE_FORMAT!r}")


def unique_names(methods: Sequence[Method]) -> list[Method]:
    """The methods, with a numeral appended to repeated names (two bundles of the same purpose, say)."""
    seen: dict[str, int] = {}
    renamed = []
    for method in methods:
        seen[method.name] = seen.get(method.name, 0) + 1
        name = method.name if seen[method.name] == 1 else f"{method.name} #{seen[method.name]}"
        renamed.append(Method(name, method.bands, method.rate, method.description))
    return renamed
