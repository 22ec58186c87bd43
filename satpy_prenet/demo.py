# SPDX-License-Identifier: GPL-3.0-or-later
"""The demonstration behind ``make demo``: the operational chain, end to end, on a simulated FY-4A full disc.

A full disc is simulated for the current 15-minute slot (a world and a time the demo bundle never saw in
training) and written as an AGRI L1 file in the real layout. trollflow2's launcher starts with the shipped
product list, subscribed directly on 127.0.0.1 (no name server); a posttroll message announces the file; the
demo waits for the products and their completion messages, stops the launcher, and reports the time from
message to products. Since the simulated truth is known, it also scores the native rain rate against it.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import xarray as xr

from satpy_prenet.chain import (
    Announcer,
    Launcher,
    ProductWatcher,
    config_dir,
    copy_product_list,
    file_message,
    free_address,
    product_list_publisher,
)
from satpy_prenet.evaluation.baselines import gpi_rate
from satpy_prenet.evaluation.metrics import Scores, scores
from satpy_prenet.synthetic import World, write_agri_l1
from satpy_prenet.synthetic.calibration import quantise_bt
from satpy_prenet.synthetic.world import SimulatedScene

LOG = logging.getLogger(__name__)

DEMO_SEED = 7
#: Longest wait for the chain to make the products of one full disc (a 2-core CPU needs about a minute).
JOB_TIMEOUT_S = 900.0


@dataclass(frozen=True)
class DemoResult:
    """What the demo made, how long each step took, and the skill against the simulated truth.

    ``skill`` holds the scores of PRE-Net's native rain rate and of GPI on the same disc pixels, by method name.
    """

    input_file: Path
    products: tuple[Path, ...]
    launcher_log: Path
    seconds: dict[str, float]
    skill: dict[str, Scores]
    bundle_purpose: str


def current_slot(now: dt.datetime | None = None) -> dt.datetime:
    """Start of the 15-minute AGRI full-disc slot containing ``now`` (default: the current UTC time), naive UTC."""
    now = now or dt.datetime.now(dt.timezone.utc).replace(tzinfo=None)
    return now.replace(minute=now.minute - now.minute % 15, second=0, microsecond=0)


def run_demo(out_dir: str | Path, *, platform: str = "FY-4A", seed: int = DEMO_SEED,
             start_time: dt.datetime | None = None, product_list: str | Path | None = None,
             threaded: bool = False) -> DemoResult:
    """Simulate a full disc into ``out_dir/input`` and run the trollflow2 chain on it in ``out_dir``.

    The launcher runs a copy of the product list in ``out_dir`` that publishes its completion messages on a free
    loopback port. The products land where the product list says (``products/`` under ``out_dir`` for the shipped
    one), the launcher's log in ``out_dir/launcher.log``. ``start_time`` (naive UTC) is the slot to simulate,
    by default the current one; a given time is replayed as if the file had just arrived.

    Raises:
        RuntimeError: The chain made no products (the message names the log and quotes its end).
    """
    out_dir = Path(out_dir).absolute()
    product_list = Path(product_list or config_dir() / "trollflow2" / "agri_precipitation.yaml").absolute()
    seconds = {}
    started = time.perf_counter()
    scene = World(seed).scene(start_time or current_slot(), platform)
    seconds["simulate full disc"] = time.perf_counter() - started
    started = time.perf_counter()
    input_file = write_agri_l1(scene, out_dir / "input")
    seconds["write AGRI L1 file"] = time.perf_counter() - started

    listen = free_address()
    log_file = out_dir / "launcher.log"
    # The shipped list, publishing on a free port: a site's launcher on this host may use the shipped one.
    # A given start time is replayed: the input check measures the data's age from it, not from the clock.
    product_list = copy_product_list(product_list, out_dir, free_address(), now=start_time)
    with Announcer(listen) as announcer, ProductWatcher(product_list_publisher(product_list)) as watcher:
        started = time.perf_counter()
        with Launcher(product_list, listen, log_file, threaded=threaded, cwd=out_dir) as launcher:
            seconds["start launcher"] = time.perf_counter() - started
            sent = announcer.send(file_message(input_file))
            LOG.info("Announced %s on %s", input_file.name, listen)
            produced = launcher.wait_for_jobs(1, JOB_TIMEOUT_S)[0]
            if not produced:
                raise RuntimeError(f"the chain made no products from {input_file}; see {log_file}")
            received = watcher.wait(produced, timeout=30)
    if len(received) < produced:
        raise RuntimeError(f"{produced} products written but only {len(received)} completion messages received")
    seconds["message to products"] = max(item.at for item in received) - sent
    products = tuple(sorted(Path(item.message.data["uri"]) for item in received))
    skill, purpose = _skill(products, scene)
    return DemoResult(input_file=input_file, products=products, launcher_log=log_file, seconds=seconds,
                      skill=skill, bundle_purpose=purpose)


def _skill(products: tuple[Path, ...], scene: SimulatedScene) -> tuple[dict[str, Scores], str]:
    """Scores of the native-grid rain rate and of GPI against the simulated truth, and the purpose of the bundle.

    GPI reads the 10.8 um temperatures as satpy reads them from the file; both are scored where the product has
    a value.
    """
    for path in (path for path in products if path.suffix == ".nc"):
        with xr.open_dataset(path) as written:
            rate = written["precipitation_rate"].squeeze("time", drop=True) if "precipitation_rate" in written else None
            if rate is not None and rate.shape == scene.rain_rate.shape:
                rate = rate.values
                purpose = written["precipitation_rate"].attrs["prenet_bundle_purpose"]
                truth = np.where(np.isfinite(rate), scene.rain_rate, np.nan)
                gpi = gpi_rate(quantise_bt(scene.bt["IR10.8"], "IR10.8", scene.platform))
                return {"PRE-Net": scores(rate, truth), "GPI": scores(np.where(np.isfinite(rate), gpi, np.nan),
                                                                      truth)}, purpose
    raise RuntimeError("no NetCDF precipitation_rate on the native grid among the products")
