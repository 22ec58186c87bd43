"""The satpy composites through satpy's own AGRI readers, on files written in the real AGRI L1 layout."""

from __future__ import annotations

import json
import logging

import dask
import dask.array as da
import numpy as np
import pytest
from safetensors import safe_open
from safetensors.torch import save_file
from satpy import Scene

from satpy_prenet import composites
from satpy_prenet.bundle import BundleError, load_model_once
from satpy_prenet.channels import READERS
from satpy_prenet.composites import QUALITY_FLAGS

PRODUCTS = ["precipitation_rate", "precipitation_probability", "precipitation_flag", "precipitation_quality"]
PLATFORMS = ["FY-4A", "FY-4B"]


def _scene(path, platform):
    return Scene(reader=READERS[platform], filenames=[str(path)])


def test_satpy_finds_the_composites_through_the_entry_points():
    from satpy.composites.config_loader import load_compositor_configs_for_sensors

    compositors, _ = load_compositor_configs_for_sensors(["agri"])
    names = {key["name"] for key in compositors["agri"]}
    assert set(PRODUCTS) <= names


@pytest.mark.parametrize("platform", PLATFORMS)
def test_products_are_listed_and_load(agri_files, demo_bundle, no_weights_env, platform, caplog, monkeypatch):
    scn = _scene(agri_files[platform], platform)
    assert set(PRODUCTS) <= set(scn.available_composite_names())
    monkeypatch.setattr(composites, "_DEMO_WARNED", set())
    with caplog.at_level(logging.INFO, logger="satpy_prenet"):
        scn.load(PRODUCTS)
    assert "trained on simulated data only" in caplog.text
    assert sum("Running PRE-Net on" in record.message for record in caplog.records
               if record.levelno >= logging.INFO) <= 1, "the device choice is announced once"
    for name in PRODUCTS:
        assert isinstance(scn[name].data, da.Array), f"{name} is not lazy"
        assert "crs" in scn[name].coords, "without its CRS, satpy's CF writer warns it cannot tell the grid"
        assert scn[name].attrs["area"] == scn[PRODUCTS[0]].attrs["area"]
        assert scn[name].attrs["prenet_bundle_purpose"] == "demo-synthetic"
        assert "simulated data" in scn[name].attrs["comment"]
    rate, probability, flag, quality = (scn[name].values for name in PRODUCTS)
    space = quality == QUALITY_FLAGS["space"]
    assert 0 < space.mean() < 1, "the test region must hold space and disc"
    assert np.isnan(rate[space]).all() and np.isnan(probability[space]).all()
    assert (flag[space] == -1).all()
    assert np.isfinite(rate[~space]).all() and (rate[~space] >= 0).all()
    assert ((probability[~space] >= 0) & (probability[~space] <= 1)).all()
    assert set(np.unique(flag[~space])) <= {0, 1}
    threshold = scn["precipitation_flag"].attrs["probability_threshold"]
    np.testing.assert_array_equal(flag[~space] == 1, rate[~space] > 0)
    assert (probability[~space][flag[~space] == 1] >= threshold).all(), "rain flagged below the probability threshold"
    assert (rate[~space][flag[~space] == 1] >= 0.1).all(), "a rain rate below the rain threshold"
    assert (quality == QUALITY_FLAGS["degraded_high_viewing_angle"]).any(), "the limb must be flagged degraded"
    attrs = scn["precipitation_rate"].attrs
    assert attrs["units"] == "mm h-1"
    assert attrs["standard_name"] == "lwe_precipitation_rate"
    assert attrs["platform_name"] == platform


def test_fy4a_and_fy4b_use_the_same_bands(agri_files, demo_bundle, no_weights_env):
    rates = {}
    for platform in PLATFORMS:
        scn = _scene(agri_files[platform], platform)
        scn.load(["precipitation_rate"])
        rates[platform] = scn["precipitation_rate"]
        assert rates[platform].attrs["prenet_bands"].split() == list(load_model_once(demo_bundle).header.bands)
    # Same atmosphere seen from two longitudes: both products rain somewhere, neither is a copy of the other.
    assert all(np.nanmax(rate.values) > 0 for rate in rates.values())


def test_products_share_one_model_run(agri_files, demo_bundle, no_weights_env):
    scn = _scene(agri_files["FY-4A"], "FY-4A")
    scn.load(PRODUCTS)
    model = load_model_once(demo_bundle).model
    calls = []
    handle = model.register_forward_hook(lambda module, args, output: calls.append(args[0].shape[0]))
    try:
        dask.compute(*[scn[name].data for name in PRODUCTS])
        tiles_all = sum(calls)
        calls.clear()
        dask.compute(scn["precipitation_rate"].data)
        tiles_one = sum(calls)
    finally:
        handle.remove()
    assert tiles_one > 0
    assert tiles_all == tiles_one


def test_result_does_not_depend_on_dask_chunks(agri_files, demo_bundle, no_weights_env, monkeypatch):
    from satpy_prenet.composites import PrecipitationRate
    from satpy_prenet.inference import lazy

    channels = ["C07", "C08", "C09", "C10", "C11", "C12", "C13", "C14"]
    scn = _scene(agri_files["FY-4A"], "FY-4A")
    scn.load(channels)
    compositor = PrecipitationRate("precipitation_rate")
    whole = compositor([], optional_datasets=[scn[name].chunk(-1) for name in channels])
    merged = compositor([], optional_datasets=[scn[name].chunk(128) for name in channels])
    assert whole.data.numblocks == merged.data.numblocks == (1, 1)  # smaller than MIN_BLOCK_TILES tiles: merged
    monkeypatch.setattr(lazy, "MIN_BLOCK_TILES", 1)  # blocks of one tile and more: the model runs on 2 x 2 blocks
    chunked = compositor([], optional_datasets=[scn[name].chunk(128) for name in channels])
    assert chunked.data.numblocks == (2, 2)
    for result in (merged, chunked):
        np.testing.assert_allclose(result.values, whole.values, rtol=1e-5, atol=1e-5, equal_nan=True)


@pytest.mark.parametrize("precision", ["float32", "bfloat16"])
def test_products_name_the_arithmetic_they_ran_in(agri_files, demo_bundle, no_weights_env, precision):
    import satpy

    with satpy.config.set(prenet_precision=precision):
        scn = _scene(agri_files["FY-4A"], "FY-4A")
        scn.load(["precipitation_rate", "precipitation_quality"])
    for name in ("precipitation_rate", "precipitation_quality"):
        assert scn[name].attrs["prenet_precision"] == precision


def _copy_bundle(source, target, *, header_change=None, tensor_change=None):
    with safe_open(str(source), framework="pt") as handle:
        metadata = handle.metadata()
        tensors = {name: handle.get_tensor(name) for name in handle.keys()}
    header = json.loads(metadata["satpy_prenet"])
    if header_change:
        header_change(header)
    if tensor_change:
        tensor_change(tensors)
    save_file(tensors, str(target), metadata={"satpy_prenet": json.dumps(header)})
    return target


def test_tampered_bundle_is_refused(agri_files, demo_bundle, tmp_path, monkeypatch):
    def tamper(tensors):
        name = sorted(tensors)[0]
        tensors[name] = tensors[name] + 1e-3

    bundle = _copy_bundle(demo_bundle, tmp_path / "tampered.safetensors", tensor_change=tamper)
    monkeypatch.setenv("SATPY_PRENET_WEIGHTS", str(bundle))
    scn = _scene(agri_files["FY-4A"], "FY-4A")
    with pytest.raises(BundleError, match="sha256") as error:
        scn.load(["precipitation_rate"])
    assert str(bundle) in str(error.value)


def test_bundle_of_other_wavelengths_is_refused(agri_files, demo_bundle, tmp_path, monkeypatch):
    def other_band(header):
        header["bands"][0] = {"key": "IR3.90", "wavelength_um": 3.9}
        header["model"]["bands"][0] = "IR3.90"

    bundle = _copy_bundle(demo_bundle, tmp_path / "other.safetensors", header_change=other_band)
    monkeypatch.setenv("SATPY_PRENET_WEIGHTS", str(bundle))
    scn = _scene(agri_files["FY-4B"], "FY-4B")
    with pytest.raises(BundleError, match="IR3.90"):
        scn.load(["precipitation_rate"])


def test_a_file_read_with_the_other_platforms_reader_is_named(agri_files, demo_bundle, no_weights_env):
    """satpy's FY-4A reader opens an FY-4B file but names its channels by FY-4A's wavelengths."""
    from satpy import Scene

    scn = Scene(reader="agri_fy4a_l1", filenames=[str(agri_files["FY-4B"])])
    with pytest.raises(ValueError, match="FY-4B AGRI data .* read with satpy's 'agri_fy4a_l1' reader") as error:
        scn.load(["precipitation_rate"])
    assert "reader='agri_fy4b_l1'" in str(error.value) and not isinstance(error.value, BundleError)


def test_bundle_whose_bands_the_scene_lacks_is_refused(agri_files, demo_bundle, tmp_path, monkeypatch):
    """The compositor names the bands it did not get (here satpy is asked for the products without C07)."""
    from satpy_prenet.composites import PrecipitationRate

    monkeypatch.setenv("SATPY_PRENET_WEIGHTS", str(demo_bundle))
    scn = _scene(agri_files["FY-4A"], "FY-4A")
    scn.load(["C08", "C09", "C10", "C11", "C12", "C13", "C14"])
    compositor = PrecipitationRate("precipitation_rate")
    with pytest.raises(BundleError, match=r"IR3\.72H \(3\.72 um\)"):
        compositor([], optional_datasets=[scn[name] for name in ("C08", "C09", "C10", "C11", "C12", "C13", "C14")])


def test_missing_scan_lines_are_flagged_invalid(agri_files, demo_bundle, no_weights_env, tmp_path):
    """Fill values on the disc in one band (lost scan lines): no retrieval there, quality says invalid input."""
    import shutil

    import h5py

    damaged = tmp_path / agri_files["FY-4A"].name
    shutil.copy(agri_files["FY-4A"], damaged)
    with h5py.File(damaged, "r+") as h5:
        h5["NOMChannel12"][200:210, :] = 65535
    scn = _scene(damaged, "FY-4A")
    scn.load(["precipitation_rate", "precipitation_quality"])
    rate, quality = scn["precipitation_rate"].values, scn["precipitation_quality"].values
    lost = np.zeros(rate.shape, dtype=bool)
    lost[200:210] = True
    on_disc_lost = lost & (quality != QUALITY_FLAGS["space"])
    assert on_disc_lost.any()
    assert (quality[on_disc_lost] == QUALITY_FLAGS["invalid_input"]).all()
    assert np.isnan(rate[lost]).all()
    assert np.isfinite(rate[~lost & (quality != QUALITY_FLAGS["space"])]).all()


def test_pictures_are_satpys_background_composites_in_float32(agri_files, demo_bundle, no_weights_env):
    from satpy.composites.fill import BackgroundCompositor

    scn = _scene(agri_files["FY-4A"], "FY-4A")
    scn.load(["precipitation_rate_map", "precipitation_rate", "precipitation_disc"])
    picture = scn["precipitation_rate_map"]
    satpys = BackgroundCompositor("reference")([scn["precipitation_rate"], scn["precipitation_disc"]])
    assert picture.dtype == np.float32 and satpys.dtype == np.float64
    np.testing.assert_allclose(picture.values, satpys.values, rtol=0, atol=1e-6)
    assert np.nanmax(picture.values) > np.nanmin(picture.values)


def test_making_the_products_computes_nothing(agri_files, demo_bundle, no_weights_env):
    """The compositors only build the graph: the network runs when a writer computes."""
    from satpy.tests.utils import assert_maximum_dask_computes

    scn = _scene(agri_files["FY-4B"], "FY-4B")
    scn.load(["C07", "C08", "C09", "C10", "C12", "C13", "C14", "C15"])  # the reader computes its look-up tables
    with assert_maximum_dask_computes(0):
        scn.load(PRODUCTS)
