"""``satpy-prenet evaluate``: methods on a Full-IPR store, and product files against CLDAS-format hourly references."""

from __future__ import annotations

import csv
import datetime as dt
import json

import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner
from conftest import CHINA_REGIONS
from test_training import write_stores

from satpy_prenet.cli import main
from satpy_prenet.data.stores import FULL_IPR, open_tiles, store_path
from satpy_prenet.evaluation.baselines import gpi_rate
from satpy_prenet.evaluation.comparison import Comparison
from satpy_prenet.evaluation.evaluate import evaluate_products
from satpy_prenet.evaluation.metrics import PAPER_COLUMNS, StreamingScores

#: The hour of the product test: four slots from 06:00, the CLDAS file of data time 07:00 (the hour's end).
HOUR = dt.datetime(2026, 7, 15, 6)


@pytest.fixture(scope="module")
def stores(tmp_path_factory):
    return write_stores(tmp_path_factory.mktemp("datasets"), seed=3)


def test_store_report_in_the_papers_columns(stores, demo_bundle, no_weights_env, tmp_path):
    result = CliRunner().invoke(main, ["evaluate", "--store", str(stores), "--out", str(tmp_path / "report"),
                                       "--method", str(demo_bundle), "--method", "gpi", "--method", "autoestimator"])
    assert result.exit_code == 0, result.output
    report = tmp_path / "report"
    for name in ("report.md", "scores.csv", "by_threshold.csv", "by_rate_class.csv", "report.json", "maps.png",
                 "scatter.png", "thresholds.png"):
        assert (report / name).stat().st_size > 0, name
    with open(report / "scores.csv") as stream:
        rows = list(csv.DictReader(stream))
    assert list(rows[0])[:8] == ["method", *PAPER_COLUMNS[:7]]
    assert [row["method"] for row in rows] == ["PRE-Net (demo-synthetic)", "GPI", "auto-estimator"]
    assert len({row["n_pixels"] for row in rows}) == 1, "every method is scored on the same pixels"
    assert "| method | RMSE | CC | POD | FAR | CSI | CSI-4 | CSI-8 |" in result.output

    # The GPI row equals scores computed here from the store directly.
    tiles = open_tiles(store_path(stores, FULL_IPR, "test"), FULL_IPR)
    window = list(tiles["ir_band"].values).index("IR10.8")
    expected = StreamingScores(blocks=(4, 8))
    for index in range(tiles.sizes["tile"]):
        expected.update(gpi_rate(tiles["ir"].values[index, window]), tiles["label"].values[index])
    gpi = expected.table_row()
    for column in ("rmse", "cc", "pod", "far", "csi", "csi4"):
        np.testing.assert_allclose(float(rows[1][column]), gpi[column], rtol=1e-9, err_msg=column)
    assert json.loads((report / "report.json").read_text())["context"]["simulated data"] is True


def test_the_report_names_the_precision_the_bundle_ran_in(stores, demo_bundle, tmp_path):
    scores = {}
    for precision in ("float32", "bfloat16"):
        out = tmp_path / precision
        result = CliRunner().invoke(main, ["evaluate", "--store", str(stores), "--out", str(out), "--method",
                                           str(demo_bundle), "--precision", precision, "--max-tiles", "2"])
        assert result.exit_code == 0, result.output
        report = json.loads((out / "report.json").read_text())
        assert report["context"]["method PRE-Net (demo-synthetic)"].endswith(f", {precision})")
        with open(out / "scores.csv") as stream:
            scores[precision] = next(csv.DictReader(stream))
    assert scores["float32"]["n_pixels"] == scores["bfloat16"]["n_pixels"]
    assert abs(float(scores["float32"]["csi"]) - float(scores["bfloat16"]["csi"])) < 0.02


def test_fitted_baselines_are_methods_of_the_report(stores, tmp_path):
    from satpy_prenet.channels import DAY_NIGHT_BANDS
    from satpy_prenet.evaluation.baselines import fit_baselines

    fitted = fit_baselines(stores, tmp_path, DAY_NIGHT_BANDS, max_pixels=5000)
    result = CliRunner().invoke(main, ["evaluate", "--store", str(stores), "--split", "validation", "--out",
                                       str(tmp_path / "report"), "--method", str(fitted.trees_path), "--method",
                                       str(fitted.threshold_path)])
    assert result.exit_code == 0, result.output
    rows = json.loads((tmp_path / "report" / "report.json").read_text())["scores"]
    assert [row["method"] for row in rows] == ["trees (IR)", "threshold (tuned)"]
    assert all(0 < row["csi"] <= 1 for row in rows)


def test_a_pixel_one_method_cannot_retrieve_is_left_out_for_all():
    comparison = Comparison(["a", "b"])
    label = np.array([[0.0, 1.0], [2.0, np.nan]])
    comparison.add(label, {"a": np.array([[0.0, 1.0], [np.nan, 3.0]]), "b": np.ones((2, 2))}, name="x")
    assert [row["n_pixels"] for row in comparison.table()] == [2, 2]
    assert comparison.scores["a"].result().rmse == 0.0
    assert comparison.sample.rain_pixels == 1
    with pytest.raises(ValueError, match="predictions for"):
        comparison.add(label, {"a": label})
    with pytest.raises(ValueError, match="an image"):
        comparison.add(label[0], {"a": label[0], "b": label[0]})


@pytest.mark.parametrize(("arguments", "words"), [
    ([], "give either --store, or --products with --reference"),
    (["--store", "{stores}", "--method", "nowcast"], "nowcast: not a method"),
    (["--store", "{stores}", "--method", "{missing}.json"], "not a readable baseline file"),
    (["--store", "{stores}", "--method", "{missing}.safetensors"], "weights bundle not found"),
    (["--store", "{missing}"], "no training store here"),
    (["--store", "{stores}", "--reference", "{missing}.nc"], "--reference goes with --products"),
])
def test_clear_errors(stores, tmp_path, arguments, words):
    arguments = [value.format(stores=stores, missing=tmp_path / "nowhere") for value in arguments]
    result = CliRunner().invoke(main, ["evaluate", "--out", str(tmp_path / "report"), *arguments])
    assert result.exit_code == 1, result.output
    assert words in result.output
    assert "Traceback" not in result.output


@pytest.fixture(scope="module")
def hour_of_products(world, tmp_path_factory):
    """The products of the hour's four FY-4A slots (``satpy-prenet retrieve``), the same files holding the true rain
    instead of PRE-Net's, and the hour's CLDAS-like truth without gauge-merging error."""
    from satpy_prenet.retrieve import retrieve_file
    from satpy_prenet.synthetic import write_agri_l1
    from satpy_prenet.synthetic.cldas_file import hourly_truth, write_cldas

    out = tmp_path_factory.mktemp("hour")
    scenes = [world.scene(HOUR + dt.timedelta(minutes=15 * slot), "FY-4A", CHINA_REGIONS["FY-4A"])
              for slot in range(4)]
    products, truths = [], []
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("SATPY_PRENET_WEIGHTS", raising=False)
        for scene in scenes:
            netcdf = retrieve_file(write_agri_l1(scene, out / "agri"), out / "products").netcdf
            products.append(netcdf)
            with xr.open_dataset(netcdf) as written:
                product = written.load()
            product["precipitation_rate"].values = np.where(np.isfinite(product["precipitation_rate"]),
                                                            scene.rain_rate, np.nan)
            truths.append(out / "truth" / netcdf.name)
            truths[-1].parent.mkdir(exist_ok=True)
            product.to_netcdf(truths[-1])
    truth = hourly_truth(scenes, seed=1, gauge_error=0.0)
    reference = write_cldas(truth, out / "cldas", data_time=HOUR + dt.timedelta(hours=1))
    later = write_cldas(truth, out / "cldas", data_time=HOUR + dt.timedelta(hours=3))
    return products, truths, reference, later


def test_the_true_rain_as_a_product_matches_the_hourly_reference(hour_of_products):
    _, truths, reference, _ = hour_of_products
    comparison = evaluate_products(truths, [reference], progress=False)
    assert comparison.images == 1
    row = comparison.table()[0]
    assert row["method"] == "precipitation_rate"
    assert row["n_pixels"] > 1000  # 0.0625 degree cells under a 256 x 256 window of 4 km pixels
    assert row["cc"] > 0.999 and row["csi"] > 0.99
    assert abs(row["bias"]) < 1e-3


def test_product_files_against_a_reference_through_the_command(hour_of_products, tmp_path):
    products, _, reference, later = hour_of_products
    arguments = ["evaluate", "--out", str(tmp_path)]
    for path in products:
        arguments += ["--products", str(path)]
    result = CliRunner().invoke(main, [*arguments, "--reference", str(reference)])
    assert result.exit_code == 0, result.output
    with open(tmp_path / "scores.csv") as stream:
        [row] = list(csv.DictReader(stream))
    assert row["method"] == "precipitation_rate"
    assert 0 < float(row["csi"]) < 1
    late = CliRunner().invoke(main, [*arguments, "--reference", str(later)])
    assert late.exit_code == 1
    assert "no product falls in the hour of any of the 1 reference file(s)" in late.output
