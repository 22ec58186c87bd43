"""``make demo`` end to end: a simulated full disc announced over posttroll, products from the trollflow2 chain."""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

from satpy_prenet.cli import main


@pytest.mark.slow
def test_demo_runs_the_chain_on_a_full_disc(demo_bundle, no_weights_env, tmp_path):
    """The demo replays a fixed slot (by default it simulates the clock's current one), so the test sees the same
    simulated disc at any hour."""
    result = CliRunner().invoke(main, ["demo", "--out", str(tmp_path), "--start-time", "2026-08-01T04:00"])
    assert result.exit_code == 0, result.output
    products = sorted((tmp_path / "products").glob("FY-4A_AGRI_20260801040000_*"))
    assert len(products) == 14  # per area: four NetCDF products, the rate as GeoTIFF, two pictures
    assert sorted({path.suffix for path in products}) == [".nc", ".png", ".tif"]
    for path in products:
        assert str(path) in result.output
    [native] = [path for path in products if path.name.endswith("_native_precipitation_rate.nc")]
    [quality] = [path for path in products if path.name.endswith("_native_precipitation_quality.nc")]
    with xr.open_dataset(native) as rate, xr.open_dataset(quality) as flags:
        rate, quality = (data[name].squeeze("time").values
                         for data, name in ((rate, "precipitation_rate"), (flags, "precipitation_quality")))
    assert rate.shape == (2748, 2748)
    space = quality == 3
    assert 0.2 < space.mean() < 0.3  # 76 % of the full-disc pixels see the Earth
    assert np.isnan(rate[space]).all()
    assert (rate[~space] >= 0).all()
    assert "message to products" in result.output
    assert "Skill against the simulated truth" in result.output
    for method in ("PRE-Net", "GPI"):  # the bundle's skill next to GPI's on the same disc
        assert re.search(rf"^  {method} +(0|1)\.\d{{3}} ", result.output, re.MULTILINE), method
    assert "trained on simulated data only" in result.output
    assert not list((tmp_path / "products" / ".staging").iterdir())
    assert _processes_working_in(tmp_path) == [], "the launcher or one of its job processes is still running"


def _processes_working_in(folder: Path) -> list[str]:
    """Processes whose working directory is ``folder`` (the demo runs the launcher there)."""
    found = []
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if os.readlink(proc / "cwd") == str(folder):
                found.append((proc / "cmdline").read_bytes().replace(b"\0", b" ").decode())
        except OSError:  # gone meanwhile, or not ours to inspect
            continue
    return found
