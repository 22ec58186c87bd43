"""The demonstration end to end: a simulated full disc through satpy's reader and the embedded bundle."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner

from satpy_prenet.cli import main


@pytest.mark.slow
def test_demo_makes_full_disc_products(demo_bundle, no_weights_env, tmp_path):
    result = CliRunner().invoke(main, ["demo", "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    products = sorted(tmp_path.glob("FY4A_AGRI_*"))
    assert [path.suffix for path in products] == [".nc", ".png", ".png"]
    with xr.open_dataset(products[0]) as written:
        rate = written["precipitation_rate"]
        quality = written["precipitation_quality"].values
        assert rate.shape == (2748, 2748)
        space = quality == 3
        assert 0.2 < space.mean() < 0.3  # 76 % of the full-disc pixels see the Earth
        assert np.isnan(rate.values[space]).all()
        assert np.isfinite(rate.values[~space]).all()
        assert (rate.values[~space] >= 0).all()
    assert "Skill against the simulated truth" in result.output
    assert "trained on simulated data only" in result.output
