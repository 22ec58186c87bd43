"""Infrared baselines: GPI, auto-estimator, best 10.8 um threshold, LightGBM trees; their composites and CLI."""

from __future__ import annotations

import json

import dask.array as da
import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner
from satpy import Scene

from satpy_prenet.channels import PAPER_BANDS, READERS, channel_name
from satpy_prenet.data.stores import FULL_IPR, append_tiles, store_path, truncate
from satpy_prenet.evaluation.baselines import (
    BaselineError,
    ThresholdBaseline,
    TreeBaseline,
    autoestimator_rate,
    gpi_rate,
)
from satpy_prenet.evaluation.metrics import scores

PLATFORMS = ["FY-4A", "FY-4B"]
BASELINE_PRODUCTS = ["precipitation_rate_gpi", "precipitation_rate_autoestimator"]
WINDOW = PAPER_BANDS.index("IR10.8")


def synthetic_pixels(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Brightness temperatures (8 bands, n) and rates (n) where rain needs a cold top AND a thick cloud.

    The split window (10.8 - 12.0 um) and the 3.72 um bands see whether the cloud is thin; 10.8 um alone cannot,
    so a threshold on it has false alarms that trees on all bands avoid.
    """
    rng = np.random.default_rng(seed)
    top = rng.uniform(190.0, 300.0, n)
    thin = rng.random(n)
    cold = np.clip((250.0 - top) / 50.0, 0.0, 1.0)
    rain = rng.random(n) < cold * (1.0 - thin) ** 2
    label = np.where(rain, np.expm1(rng.normal(0.5 + 2.5 * cold, 0.5)), 0.0).clip(0.0)
    bands = {"IR3.72H": top + 8 * thin, "IR3.72L": top + 8 * thin, "WV6.25": np.minimum(top, 240.0),
             "WV7.10": np.minimum(top, 255.0), "IR8.50": top - 2 * thin, "IR10.8": top, "IR12.0": top - 1 - 6 * thin,
             "IR13.5": np.minimum(top, 260.0)}
    bt = np.stack([bands[key] + rng.normal(0.0, 0.5, n) for key in PAPER_BANDS])
    return bt.astype(np.float32), label.astype(np.float32)


@pytest.fixture(scope="module")
def trees():
    bt, label = synthetic_pixels(200_000, seed=0)
    return TreeBaseline.fit(bt, label, PAPER_BANDS, seed=0, provenance={"store": "synthetic"})


# --- GPI and auto-estimator ----------------------------------------------------------------------------------------


def test_gpi_is_3_mm_h_strictly_below_235_k_and_keeps_nan():
    bt = np.array([180.0, 234.99, 235.0, 300.0, np.nan], dtype=np.float32)
    rate = gpi_rate(bt)
    assert rate.dtype == np.float32
    np.testing.assert_array_equal(rate, [3.0, 3.0, 0.0, 0.0, np.nan])


def test_autoestimator_matches_hand_computed_rates_with_its_cut_and_cap():
    # R = 1.1183e11 exp(-3.6382e-2 T^1.2), worked out by hand: 220 K -> 6.692, 240 K -> 0.5017, 249.9 K -> 0.1369.
    bt = np.array([220.0, 240.0, 249.9, 250.0, 280.0, 190.0, 170.0, np.nan])
    expected = [6.6921, 0.50168, 0.13690, 0.0, 0.0, 298.35, 298.35, np.nan]
    np.testing.assert_allclose(autoestimator_rate(bt), expected, rtol=2e-4)


@pytest.mark.parametrize("function", [gpi_rate, autoestimator_rate, ThresholdBaseline(221.5, 4.0).predict])
def test_formulas_work_on_dask_and_xarray_alike(function):
    values = np.linspace(185.0, 300.0, 64, dtype=np.float32).reshape(8, 8)
    values[0, :3] = np.nan
    expected = function(values)
    lazy = function(da.from_array(values, chunks=4))
    assert isinstance(lazy, da.Array)
    np.testing.assert_array_equal(lazy.compute(), expected)
    array = xr.DataArray(da.from_array(values, chunks=4), dims=("y", "x"), coords={"y": np.arange(8)})
    result = function(array)
    assert isinstance(result, xr.DataArray) and isinstance(result.data, da.Array)
    np.testing.assert_array_equal(result.coords["y"], np.arange(8))
    np.testing.assert_array_equal(result.values, expected)
    assert np.isnan(expected[0, :3]).all() and np.isfinite(expected[1:]).all()


# --- the tuned threshold -------------------------------------------------------------------------------------------


def test_threshold_tuning_recovers_a_known_threshold_and_rate():
    rng = np.random.default_rng(3)
    bt = rng.uniform(190.0, 300.0, 50_000)
    label = np.where(bt < 231.5, rng.uniform(0.5, 7.5, bt.size), 0.0)
    flip = rng.random(bt.size) < 0.05  # 5 % of the pixels swap rain and no rain
    label[flip] = np.where(label[flip] > 0, 0.0, 2.0)
    bt[:100] = np.nan
    label[100:200] = np.nan
    baseline = ThresholdBaseline.tune(bt, label)
    assert baseline.threshold_k == 231.5
    valid = np.isfinite(bt) & np.isfinite(label)
    assert baseline.rate_mm_h == pytest.approx(label[valid & (bt < 231.5)].mean())
    assert baseline.tuning["n_pixels"] == valid.sum()
    assert 0.85 < baseline.tuning["csi"] < 0.95
    np.testing.assert_array_equal(baseline.predict(np.array([231.0, 231.5, np.nan])),
                                  [baseline.rate_mm_h, 0.0, np.nan])


def test_threshold_round_trips_through_json(tmp_path):
    baseline = ThresholdBaseline(221.5, 4.25, {"csi": 0.3})
    path = baseline.save(tmp_path / "threshold.json")
    assert ThresholdBaseline.load(path) == baseline
    assert json.loads(path.read_text())["format"] == "satpy-prenet-threshold-baseline"
    assert [item.name for item in tmp_path.iterdir()] == ["threshold.json"], "a temporary file was left behind"


# --- the trees -----------------------------------------------------------------------------------------------------


def test_trees_beat_no_skill_and_the_best_threshold_on_held_out_pixels(trees):
    """Measured on 100 000 new pixels: trees CSI 0.41, CC 0.55, RMSE 5.01; the best threshold CSI 0.27, RMSE 5.2;
    the climatological mean everywhere CSI 0.10, RMSE 5.52 (the rate within rain is mostly noise here)."""
    bt, label = synthetic_pixels(100_000, seed=1)
    tree_scores = scores(trees.predict(bt), label)
    tune_bt, tune_label = synthetic_pixels(100_000, seed=2)
    threshold = ThresholdBaseline.tune(tune_bt[WINDOW], tune_label)
    threshold_scores = scores(threshold.predict(bt[WINDOW]), label)
    climatology = scores(np.full_like(label, label.mean()), label)  # rain everywhere: CSI is the rain fraction
    assert tree_scores.csi > climatology.csi + 0.25
    assert tree_scores.csi > threshold_scores.csi + 0.1
    assert tree_scores.rmse < 0.95 * climatology.rmse and tree_scores.rmse < threshold_scores.rmse
    assert tree_scores.cc > 0.45 > threshold_scores.cc
    assert trees.provenance["held_out_csi"] == pytest.approx(tree_scores.csi, abs=0.03)


def test_trees_are_nan_where_a_band_is_nan_and_zero_or_rain_elsewhere(trees):
    bt, _ = synthetic_pixels(1_000, seed=4)
    bt = bt.reshape(8, 10, 100)
    bt[3, 0, :5] = np.nan
    rate = trees.predict(bt)
    assert rate.shape == (10, 100)
    assert np.isnan(rate[0, :5]).all() and np.isfinite(rate[0, 5:]).all()
    raining = rate[np.isfinite(rate)] > 0
    assert (rate[np.isfinite(rate)][raining] >= 0.1).all() and raining.any() and not raining.all()
    with pytest.raises(ValueError, match="expected the 8 bands"):
        trees.predict(bt[:7])


def test_trees_fit_reproducibly(trees):
    bt, label = synthetic_pixels(200_000, seed=0)
    again = TreeBaseline.fit(bt, label, PAPER_BANDS, seed=0, provenance={"store": "synthetic"})
    assert again.to_dict() == trees.to_dict()


def test_trees_round_trip_bit_identically_without_pickle(trees, tmp_path):
    path = trees.save(tmp_path / "trees.json")
    text = path.read_text(encoding="utf-8")
    assert b"pickle" not in path.read_bytes() and text.lstrip().startswith("{")
    loaded = TreeBaseline.load(path)
    bt, _ = synthetic_pixels(20_000, seed=5)
    np.testing.assert_array_equal(loaded.predict(bt), trees.predict(bt))
    np.testing.assert_array_equal(loaded.probability(bt), trees.probability(bt))
    assert loaded.save(tmp_path / "again.json").read_bytes() == path.read_bytes()
    header = json.loads(text)
    assert header["bands"] == list(PAPER_BANDS) and header["features"][-3:] == ["WV6.25-IR10.8", "IR10.8-IR12.0",
                                                                                "IR8.50-IR10.8"]
    assert header["provenance"]["store"] == "synthetic" and header["provenance"]["lightgbm_version"]


def _three_feature_model() -> str:
    import lightgbm

    rng = np.random.default_rng(7)
    data = lightgbm.Dataset(rng.random((500, 3)), label=rng.random(500), params={"verbosity": -1})
    return lightgbm.train({"objective": "regression", "verbosity": -1}, data, num_boost_round=2).model_to_string()


def _tamper(trees, tmp_path, change):
    document = trees.to_dict()
    change(document)
    path = tmp_path / "tampered.json"
    path.write_text(json.dumps(document))
    return path


@pytest.mark.parametrize(("change", "message"), [
    (lambda doc: doc.update(format="satpy-prenet-threshold-baseline"), "format 'satpy-prenet-threshold-baseline', "
                                                                       "expected 'satpy-prenet-tree-baseline'"),
    (lambda doc: doc.update(version=99), "version 99"),
    (lambda doc: doc.pop("bands"), "missing entry.*bands"),
    (lambda doc: doc["bands"].__setitem__(0, "IR3.90"), "Unknown AGRI band.*IR3.90"),
    (lambda doc: doc.update(features=doc["features"][:-1]), "do not follow from the bands"),
    (lambda doc: doc.update(classifier=doc["classifier"][:200]), "classifier model cannot be read"),
    (lambda doc: doc.update(classifier=42), "classifier model is not a LightGBM text model"),
    (lambda doc: doc.update(regressor=_three_feature_model()), "regressor model takes 3 features, the header names 11"),
])
def test_tampered_tree_files_are_refused_naming_the_file(trees, tmp_path, change, message):
    path = _tamper(trees, tmp_path, change)
    with pytest.raises(BaselineError, match=message) as error:
        TreeBaseline.load(path)
    assert str(path) in str(error.value)


def test_missing_or_foreign_files_are_refused_naming_the_file(tmp_path):
    with pytest.raises(BaselineError, match="no such baseline file") as error:
        TreeBaseline.load(tmp_path / "absent.json")
    assert "absent.json" in str(error.value)
    garbage = tmp_path / "trees.json"
    garbage.write_bytes(b"\x80\x04\x95 a pickle, not JSON")
    with pytest.raises(BaselineError, match=r"trees\.json: (not a JSON file|cannot read)"):
        TreeBaseline.load(garbage)
    garbage.write_text("[1, 2]")
    with pytest.raises(BaselineError, match="format 'list'"):
        ThresholdBaseline.load(garbage)


def test_trees_need_rain_and_dry_pixels():
    bt, label = synthetic_pixels(2_000, seed=6)
    with pytest.raises(BaselineError, match="both rain and dry pixels"):
        TreeBaseline.fit(bt, np.zeros_like(label), PAPER_BANDS)


# --- composites through a real Scene --------------------------------------------------------------------------------


@pytest.mark.parametrize("platform", PLATFORMS)
def test_baseline_composites_through_a_scene(agri_files, platform):
    from satpy.enhancements.enhancer import get_enhanced_image
    from satpy.tests.utils import assert_maximum_dask_computes

    window = channel_name("IR10.8", platform)
    scn = Scene(reader=READERS[platform], filenames=[str(agri_files[platform])])
    assert set(BASELINE_PRODUCTS) <= set(scn.available_composite_names())
    scn.load([window])  # the reader computes its look-up table here
    with assert_maximum_dask_computes(0):
        scn.load(BASELINE_PRODUCTS)
    bt = scn[window].values
    assert np.isnan(bt).any() and np.isfinite(bt).any(), "the region must hold space and disc"
    for name, function in zip(BASELINE_PRODUCTS, (gpi_rate, autoestimator_rate), strict=True):
        product = scn[name]
        assert isinstance(product.data, da.Array) and product.dtype == np.float32
        np.testing.assert_array_equal(product.values, function(bt.astype(np.float32)))
        assert np.isnan(product.values[np.isnan(bt)]).all()
        assert product.attrs["retrieval_method"] == name.rsplit("_", 1)[1]
        assert product.attrs["standard_name"] == "lwe_precipitation_rate" and product.attrs["units"] == "mm h-1"
        assert product.attrs["platform_name"] == platform and product.attrs["sensor"] == "agri"
        assert product.attrs["area"] == scn[window].attrs["area"]
        assert product.attrs["start_time"] == scn[window].attrs["start_time"]
        assert "valid_range" not in product.attrs, "the band's valid range would mask the rates"
    rate = scn["precipitation_rate_gpi"].values
    assert (rate == 3).any() and (rate == 0).any()
    alpha = get_enhanced_image(scn["precipitation_rate_gpi"]).data.sel(bands="A").values
    assert (alpha[rate == 3] == 1).all() and (alpha[rate == 0] == 0).all()


def test_baseline_compositor_refuses_another_band(agri_files):
    from satpy_prenet.composites import BaselineRate

    scn = Scene(reader=READERS["FY-4A"], filenames=[str(agri_files["FY-4A"])])
    scn.load(["C13"])  # 12.0 um on FY-4A
    with pytest.raises(ValueError, match="expected the 10.8 um band, got 'C13' of FY-4A"):
        BaselineRate("precipitation_rate_gpi")([scn["C13"]])
    with pytest.raises(ValueError, match="unknown baseline method 'persiann'"):
        BaselineRate("precipitation_rate_x", method="persiann")


# --- the CLI on a tiny store -----------------------------------------------------------------------------------------


def _write_split(root, split, tiles, seed):
    bt, label = synthetic_pixels(tiles * 64 * 64, seed)
    ir = bt.reshape(8, tiles, 64, 64).transpose(1, 0, 2, 3).copy()
    label = label.reshape(tiles, 64, 64).copy()
    ir[0, :, :, :16] = np.nan  # space on the left of the first tile
    label[0, :, :16] = np.nan
    dataset = xr.Dataset({"ir": (("tile", "ir_band", "y", "x"), ir), "label": (("tile", "y", "x"), label)},
                         coords={"ir_band": list(PAPER_BANDS),
                                 "sample_id": ("tile", [f"disc-{split}-{i:03d}" for i in range(tiles)])})
    path = store_path(root, FULL_IPR, split)
    append_tiles(path, dataset, kind=FULL_IPR, attrs={"split": split, "simulated": True})
    return path


def test_cli_fits_writes_and_scores_the_baselines(tmp_path):
    from satpy_prenet.training.cli import main

    data = tmp_path / "datasets"
    _write_split(data, "train", 8, seed=10)
    _write_split(data, "validation", 3, seed=11)
    config = tmp_path / "tiny.yaml"
    config.write_text("model: {preset: small}\n")
    workdir = tmp_path / "work"
    result = CliRunner().invoke(main, ["baseline", "--config", str(config), "--workdir", str(workdir),
                                       "--data", str(data), "--max-pixels", "20000"])
    assert result.exit_code == 0, result.output
    trees = TreeBaseline.load(workdir / "baseline-trees.json")
    threshold = ThresholdBaseline.load(workdir / "baseline-threshold.json")
    assert trees.bands == PAPER_BANDS and trees.provenance["n_pixels"] == 20_000
    assert trees.provenance["store"].endswith("full_ipr/train.zarr")
    assert 200.0 < threshold.threshold_k < 260.0
    rows = {line[:18].strip(): line[18:].split() for line in result.output.splitlines()[4:]}
    assert set(rows) == {"trees (IR)", "threshold (tuned)", "GPI", "auto-estimator"}
    validation = xr.open_zarr(store_path(data, FULL_IPR, "validation"), consolidated=False)
    labelled = int(np.isfinite(validation["label"]).sum())
    assert all(int(row[-1]) == labelled for row in rows.values())
    assert float(rows["trees (IR)"][0]) > float(rows["threshold (tuned)"][0]) > 0.2  # CSI


def test_cli_reports_missing_and_empty_stores(tmp_path):
    from satpy_prenet.training.cli import main

    config = tmp_path / "tiny.yaml"
    config.write_text("model: {preset: small}\n")
    runner = CliRunner()
    command = ["baseline", "--config", str(config), "--workdir", str(tmp_path / "work")]
    result = runner.invoke(main, command)
    assert result.exit_code == 1 and "full_ipr/train.zarr: no training store" in result.output
    path = _write_split(tmp_path / "work" / "datasets", "train", 1, seed=12)
    truncate(path, 0)  # what an interrupted first append leaves
    result = runner.invoke(main, command)
    assert result.exit_code == 1 and "full_ipr/train.zarr: the store holds no tiles" in result.output
