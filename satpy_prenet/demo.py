# SPDX-License-Identifier: GPL-3.0-or-later
"""The demonstration behind ``make demo``: a simulated FY-4A full disc in, the precipitation products out.

The full disc is simulated (a world and a time the demo bundle never saw in training), written as an AGRI L1
file in the real layout, and read back by satpy's own reader; since the simulated truth is known, the demo also
reports the product's skill against it.
"""

from __future__ import annotations

import datetime as dt
import logging
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from satpy_prenet.evaluation.metrics import Scores, scores
from satpy_prenet.retrieve import Products, retrieve_file
from satpy_prenet.synthetic import World, write_agri_l1

LOG = logging.getLogger(__name__)

DEMO_SEED = 7
DEMO_TIME = dt.datetime(2026, 8, 1, 6, 0)


@dataclass(frozen=True)
class DemoResult:
    """What the demo made, how long each step took, and the skill against the simulated truth."""

    input_file: Path
    products: Products
    seconds: dict[str, float]
    skill: Scores
    bundle_purpose: str


def run_demo(out_dir: str | Path, *, platform: str = "FY-4A", seed: int = DEMO_SEED,
             start_time: dt.datetime = DEMO_TIME, weights: str | Path | None = None,
             device: str | None = None) -> DemoResult:
    """Simulate a full disc, write it as an AGRI L1 file in ``out_dir/input`` and its products in ``out_dir``."""
    out_dir = Path(out_dir)
    seconds = {}
    started = time.perf_counter()
    scene = World(seed).scene(start_time, platform)
    seconds["simulate full disc"] = time.perf_counter() - started
    started = time.perf_counter()
    input_file = write_agri_l1(scene, out_dir / "input")
    seconds["write AGRI L1 file"] = time.perf_counter() - started
    started = time.perf_counter()
    products = retrieve_file(input_file, out_dir, weights=weights, device=device, progress=sys.stdout.isatty())
    seconds["read, retrieve, write products"] = time.perf_counter() - started
    with xr.open_dataset(products.netcdf) as written:
        rate = written["precipitation_rate"].values
        purpose = written["precipitation_rate"].attrs["prenet_bundle_purpose"]
    skill = scores(rate, np.where(np.isfinite(rate), scene.rain_rate, np.nan))
    return DemoResult(input_file=input_file, products=products, seconds=seconds, skill=skill, bundle_purpose=purpose)
