"""The trollflow2 workers, called as trollflow2 calls them (``fun(job, **kwargs)``) on real files and scenes."""

from __future__ import annotations

import datetime as dt
import logging
import os
import queue
import tempfile
from pathlib import Path
from types import SimpleNamespace

import dask
import numpy as np
import pytest
import satpy
import torch
from satpy.cf.coords import EPOCH
from trollflow2.plugins import AbortProcessing, create_scene, load_composites, resample

from satpy_prenet.bundle import clear_model_cache, embedded_bundle_path, load_model_once
from satpy_prenet.chain import config_dir, file_message
from satpy_prenet.pictures import PICTURES
from trollflow2_plugins.delivery import save_datasets_staged
from trollflow2_plugins.prenet import JOB_BUNDLE_KEY, check_agri_input, compute_products, load_prenet_model

PRODUCTS = ("precipitation_rate", "precipitation_probability", "precipitation_flag", "precipitation_quality")


def make_job(path, output_dir=None, areas=("None",), product_names=PRODUCTS, **overrides):
    """A trollflow2 job as the launcher builds it from a message announcing ``path``: NetCDF files per area."""
    mda = file_message(path).data
    mda.update(overrides)
    def products():  # trollflow2 writes each file's name into its format entry: one set per area
        return {name: {"productname": name, "formats": [{"format": "NETCDF4", "writer": "cf",
                                                         "fname_pattern": "{areaname}_{productname}.nc",
                                                         "encoding": {"time": {"units": EPOCH}}}]}
                for name in product_names}

    settings = {"delay_composites": False, "resampler": "nearest", "radius_of_influence": 30000,
                "areas": {area: {"areaname": area, "products": products()} for area in areas}}
    if output_dir is not None:
        settings.update(output_dir=str(output_dir), staging_zone=str(output_dir / ".staging"))
    return {"input_filenames": [str(path)], "input_mda": mda, "product_list": {"product_list": settings},
            "produced_files": queue.Queue()}


@pytest.mark.parametrize(("platform", "reader"), [("FY-4A", "agri_fy4a_l1"), ("FY-4B", "agri_fy4b_l1")])
def test_check_accepts_a_good_file_and_picks_its_reader(recent_agri_files, chain_now, no_weights_env, platform,
                                                       reader):
    job = make_job(recent_agri_files[platform, 0])
    check_agri_input(job, max_age_minutes=180, now=chain_now)
    assert job["product_list"]["product_list"]["reader"] == reader


def test_check_refuses_bad_inputs_naming_file_and_problem(bad_agri_inputs, no_weights_env, caplog):
    for kind, path, platform, expected in bad_agri_inputs:
        caplog.clear()
        with caplog.at_level(logging.ERROR), pytest.raises(AbortProcessing) as raised:
            check_agri_input(make_job(path, platform_name=platform))
        assert expected in str(raised.value), kind
        assert str(path) in str(raised.value), kind
        assert any(expected in record.getMessage() for record in caplog.records), f"{kind}: no clear log line"


@pytest.mark.parametrize(("overrides", "kwargs", "expected"), [
    ({"platform_name": "Himawari-9"}, {}, "platform 'Himawari-9' is not one of FY-4A, FY-4B"),
    ({"sensor": "ahi"}, {}, "sensor 'ahi' is not 'agri'"),
    ({"start_time": dt.datetime(2026, 7, 14, 6, 30)}, {"max_age_minutes": 180},
     "are 1450 minutes old; the limit is 180 minutes"),
    ({}, {"max_age_minutes": 5}, "are 10 minutes old; the limit is 5 minutes"),
    ({}, {"max_age_minutes": 180, "now": "yesterday"}, "the check step's 'now' is not a time"),
    ({}, {"observation_types": ["DISK"]}, "REGC files are not processed here"),
])
def test_check_refuses_by_message(recent_agri_files, chain_now, no_weights_env, overrides, kwargs, expected):
    """The age is measured from the fixed ``chain_now`` (06:40 UTC, ten minutes after the file's slot)."""
    with pytest.raises(AbortProcessing, match=expected):
        check_agri_input(make_job(recent_agri_files["FY-4A", 0], **overrides), **{"now": chain_now, **kwargs})


def test_check_measures_the_age_from_an_iso_time(recent_agri_files, chain_now, no_weights_env):
    job = make_job(recent_agri_files["FY-4A", 0])
    check_agri_input(job, max_age_minutes=10, now=chain_now.isoformat())
    with pytest.raises(AbortProcessing, match="are 11 minutes old"):
        check_agri_input(job, max_age_minutes=10, now="2026-07-15T08:41+02:00")


def test_check_uses_the_bands_of_the_loaded_bundle(recent_agri_files, bad_agri_inputs, no_weights_env):
    """A model without the 10.8 um band accepts a file lacking that channel."""
    lacking = next(path for kind, path, _, _ in bad_agri_inputs if kind == "missing channel")
    job = make_job(lacking)
    job[JOB_BUNDLE_KEY] = SimpleNamespace(header=SimpleNamespace(bands=("IR12.0", "IR13.5")))
    check_agri_input(job)
    job[JOB_BUNDLE_KEY] = load_model_once(embedded_bundle_path(), "cpu")
    with pytest.raises(AbortProcessing, match="lacks channel"):
        check_agri_input(job)


def test_model_step_loads_once_and_hands_device_to_the_composites(recent_agri_files, no_weights_env, caplog):
    clear_model_cache()
    first, second = make_job(recent_agri_files["FY-4A", 0]), make_job(recent_agri_files["FY-4A", 1])
    with caplog.at_level(logging.INFO), satpy.config.set(prenet_device=None, prenet_weights=None):
        load_prenet_model(first, device="cpu", torch_threads=1)
        load_prenet_model(second, device="cpu", torch_threads=1)
        assert satpy.config.get("prenet_device") == "cpu"
        assert satpy.config.get("prenet_weights") == str(embedded_bundle_path())
    assert first[JOB_BUNDLE_KEY] is second[JOB_BUNDLE_KEY]
    assert sum("Loaded demo-synthetic PRE-Net bundle" in r.getMessage() for r in caplog.records) == 1
    assert torch.get_num_threads() == 1


def test_model_step_turns_on_satpys_angle_cache(recent_agri_files, tmp_path, no_weights_env):
    """With ``satpy_cache_dir``, the quality flag's zenith angles are cached by satpy and read back unchanged."""
    cache = tmp_path / "satpy-cache"
    qualities = []
    for cache_dir in (None, cache, cache):  # computed; computed and cached; read back
        job = make_job(recent_agri_files["FY-4A", 0])
        # Everything the worker sets in satpy's config is restored afterwards, so later tests do not see it.
        with satpy.config.set(config_path=[str(config_dir())], cache_lonlats=False, cache_sensor_angles=False,
                              cache_dir=satpy.config.get("cache_dir"), prenet_device=None, prenet_weights=None,
                              prenet_precision=None):
            load_prenet_model(job, device="cpu", satpy_cache_dir=cache_dir)
            assert satpy.config.get("cache_sensor_angles") is (cache_dir is not None)
            for step in (check_agri_input, create_scene, load_composites, compute_products):
                step(job)
        qualities.append(job["scene"]["precipitation_quality"].values)
        if cache_dir is None:
            assert not cache.exists()
    assert {path.name.split("_v")[0] for path in cache.glob("*.zarr")} >= {"_get_sensor_angles_from_sat_pos"}
    for quality in qualities[1:]:
        np.testing.assert_array_equal(quality, qualities[0])


def test_a_satpy_cache_folder_that_cannot_be_made_is_logged_and_the_job_goes_on(recent_agri_files, tmp_path,
                                                                              no_weights_env, caplog):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    job = make_job(recent_agri_files["FY-4A", 0])
    with satpy.config.set(config_path=[str(config_dir())], cache_lonlats=False, cache_sensor_angles=False,
                          cache_dir=satpy.config.get("cache_dir"), prenet_device=None, prenet_weights=None,
                          prenet_precision=None), caplog.at_level(logging.WARNING):
        load_prenet_model(job, device="cpu", satpy_cache_dir=blocker / "cache")
        assert not satpy.config.get("cache_sensor_angles")
        for step in (check_agri_input, create_scene, load_composites, compute_products):
            step(job)
    assert "precipitation_quality" in job["scene"]
    assert any(f"satpy_cache_dir {blocker / 'cache'} cannot be created" in record.getMessage()
               for record in caplog.records)


def test_reading_in_small_chunks_gives_the_same_products(recent_agri_files, no_weights_env):
    """``dask_chunk_size``: satpy reads the bands in pieces; the model's blocks, merged, give the same products."""
    products = []
    for chunk_size in (None, "64KiB"):
        job = make_job(recent_agri_files["FY-4A", 0])
        # Restored afterwards (the worker sets dask's config for the whole process, as a job process needs).
        with dask.config.set({"array.chunk-size": dask.config.get("array.chunk-size")}), satpy.config.set(
                config_path=[str(config_dir())], prenet_device=None, prenet_weights=None, prenet_precision=None):
            load_prenet_model(job, device="cpu", dask_chunk_size=chunk_size)
            for step in (check_agri_input, create_scene, load_composites):
                step(job)
            pieces = len(job["scene"]["precipitation_rate"].data.dask)
            compute_products(job)
        products.append((pieces, job["scene"]["precipitation_rate"].values, job["scene"]["precipitation_flag"].values))
    (whole_tasks, whole_rate, whole_flag), (piece_tasks, piece_rate, piece_flag) = products
    assert piece_tasks > whole_tasks  # read in pieces
    np.testing.assert_allclose(piece_rate, whole_rate, atol=1e-5, rtol=0)
    np.testing.assert_array_equal(piece_flag, whole_flag)


def test_after_the_model_step_satpy_finds_the_picture_writer_by_name(recent_agri_files, no_weights_env):
    from satpy.writers.core.config import load_writer

    from satpy_prenet.picture_writer import PICTURE_WRITER, PictureWriter

    with satpy.config.set(config_path=[str(config_dir())], prenet_device=None, prenet_weights=None,
                          prenet_precision=None):
        with pytest.raises(ValueError, match=f"Unknown writer '{PICTURE_WRITER}'"):
            load_writer(PICTURE_WRITER)
        for _ in range(2):  # a threaded launcher runs the step for every job: the folder is added once
            load_prenet_model(make_job(recent_agri_files["FY-4A", 0]), device="cpu")
        assert isinstance(load_writer(PICTURE_WRITER)[0], PictureWriter)
        assert len(satpy.config.get("config_path")) == 2


def test_model_step_refuses_an_unreadable_chunk_size(recent_agri_files, no_weights_env):
    with pytest.raises(AbortProcessing, match="dask_chunk_size.*parsecs"):
        load_prenet_model(make_job(recent_agri_files["FY-4A", 0]), device="cpu", dask_chunk_size="4 parsecs")


def test_model_step_refuses_a_tampered_bundle(recent_agri_files, tmp_path, no_weights_env, caplog):
    tampered = tmp_path / "tampered.safetensors"
    data = bytearray(embedded_bundle_path().read_bytes())
    data[-100] ^= 0xFF  # one byte of the last tensor
    tampered.write_bytes(bytes(data))
    with caplog.at_level(logging.ERROR), pytest.raises(AbortProcessing, match="No PRE-Net model") as raised:
        load_prenet_model(make_job(recent_agri_files["FY-4A", 0]), device="cpu", weights=str(tampered))
    assert str(tampered) in str(raised.value)
    assert any(str(tampered) in record.getMessage() for record in caplog.records)


def test_model_step_refuses_an_unknown_device(recent_agri_files, no_weights_env):
    with pytest.raises(AbortProcessing, match="Unknown torch device 'tpu7'"):
        load_prenet_model(make_job(recent_agri_files["FY-4A", 0]), device="tpu7")


def test_model_runs_once_per_job_whatever_the_files_and_areas(recent_agri_files, tmp_path, no_weights_env):
    """After compute_products, resampling to two areas and writing eight files never run the model again."""
    job = make_job(recent_agri_files["FY-4A", 0], tmp_path / "products", areas=("None", "prenet_east_asia_0p04"))
    calls = []
    bundle = load_model_once(embedded_bundle_path(), "cpu")
    hook = bundle.model.register_forward_hook(lambda *args: calls.append(1))
    try:
        with satpy.config.set(config_path=[str(config_dir())]):  # the area of etc/areas.yaml
            for step in (check_agri_input, create_scene, load_composites, compute_products):
                step(job)
            after_compute = len(calls)
            resample(job)
            save_datasets_staged(job)
    finally:
        hook.remove()
    assert after_compute > 0
    assert len(calls) == after_compute
    written = sorted(path.name for path in (tmp_path / "products").glob("*.nc"))
    assert written == sorted(f"{area}_{name}.nc" for area in ("None", "prenet_east_asia_0p04") for name in PRODUCTS)


def test_pictures_are_made_from_the_computed_products(recent_agri_files, no_weights_env):
    """compute_products makes the pictures after the products, from them: the model runs as often as for the
    products alone, and the pictures equal those computed together with the products."""
    calls = []
    bundle = load_model_once(embedded_bundle_path(), "cpu")
    hook = bundle.model.register_forward_hook(lambda *args: calls.append(1))
    counts, jobs = [], []
    try:
        with satpy.config.set(config_path=[str(config_dir())]):
            for names in (PRODUCTS, PRODUCTS + PICTURES):
                jobs.append(make_job(recent_agri_files["FY-4A", 0], product_names=names))
                for step in (check_agri_input, create_scene, load_composites, compute_products):
                    step(jobs[-1])
                counts.append(len(calls))
            together = make_job(recent_agri_files["FY-4A", 0], product_names=PRODUCTS + PICTURES)
            for step in (check_agri_input, create_scene, load_composites):
                step(together)
            expected = dask.compute(*(together["scene"][name] for name in PICTURES))
    finally:
        hook.remove()
    products_alone, with_pictures = counts[0], counts[1] - counts[0]
    assert products_alone > 0
    assert with_pictures == products_alone
    for name, picture in zip(PICTURES, expected, strict=True):
        made = jobs[1]["scene"][name]
        assert made.dims == picture.dims and made.dtype == picture.dtype
        np.testing.assert_array_equal(made.values, picture.values)


def test_pictures_that_cannot_be_made_end_the_job_naming_the_file(recent_agri_files, no_weights_env, caplog):
    job = make_job(recent_agri_files["FY-4A", 0], product_names=PRODUCTS + PICTURES)
    with satpy.config.set(config_path=[str(config_dir())]):
        for step in (check_agri_input, create_scene, load_composites):
            step(job)
        job["scene"].load = lambda *args, **kwargs: None  # satpy makes nothing (and would log why)
        with caplog.at_level(logging.ERROR), pytest.raises(AbortProcessing, match="could not make") as raised:
            compute_products(job)
    assert str(recent_agri_files["FY-4A", 0]) in str(raised.value)
    assert all(name in str(raised.value) for name in PICTURES)
    assert any("could not make" in record.getMessage() for record in caplog.records)


def test_damaged_data_end_the_job_naming_the_file(damaged_agri_file, no_weights_env, caplog):
    with pytest.raises(AbortProcessing, match=r"channel C12 \(10.8 um\) is corrupt") as error:
        check_agri_input(make_job(damaged_agri_file))  # the check reads the channels the model needs
    assert str(damaged_agri_file) in str(error.value)
    job = make_job(damaged_agri_file)
    job["product_list"]["product_list"]["reader"] = "agri_fy4a_l1"  # what the check would have chosen
    for step in (create_scene, load_composites):
        step(job)  # without the check, the damage is invisible until the data are read
    with caplog.at_level(logging.ERROR), pytest.raises(AbortProcessing, match="reading the data failed"):
        compute_products(job)
    assert any(str(damaged_agri_file) in record.getMessage() for record in caplog.records)


def test_staged_saving_writes_all_or_nothing(recent_agri_files, tmp_path, no_weights_env, caplog):
    import dask.array as da

    out = tmp_path / "products"
    good = make_job(recent_agri_files["FY-4A", 0], out)
    for step in (check_agri_input, create_scene, load_composites, compute_products, resample, save_datasets_staged):
        step(good)
    assert sorted(path.name for path in out.iterdir()) == [".staging", *sorted(f"None_{n}.nc" for n in PRODUCTS)]
    assert list((out / ".staging").iterdir()) == []

    failing_out = tmp_path / "failing"
    failing = make_job(recent_agri_files["FY-4A", 1], failing_out)
    for step in (check_agri_input, create_scene, load_composites, compute_products):
        step(failing)
    scene = failing["scene"]
    broken = scene["precipitation_flag"].copy()
    broken.data = da.map_blocks(_fail_on_compute, broken.data, dtype=broken.dtype)
    scene["precipitation_flag"] = broken
    resample(failing)
    with caplog.at_level(logging.ERROR), pytest.raises(RuntimeError, match="simulated write failure"):
        save_datasets_staged(failing)
    assert [path.name for path in failing_out.iterdir()] == [".staging"]
    assert list((failing_out / ".staging").iterdir()) == []
    assert any("partial files were removed" in r.getMessage() and str(recent_agri_files["FY-4A", 1]) in r.getMessage()
               for r in caplog.records)


def _fail_on_compute(block):
    raise RuntimeError("simulated write failure")


def test_staged_saving_refuses_a_staging_zone_on_another_file_system(recent_agri_files, tmp_path, no_weights_env):
    shm = Path("/dev/shm")
    if not shm.is_dir() or os.stat(shm).st_dev == os.stat(tmp_path).st_dev:
        pytest.fail("this test needs /dev/shm on a file system of its own (tmpfs), as on every Linux machine")
    job = make_job(recent_agri_files["FY-4A", 0], tmp_path / "products")
    with tempfile.TemporaryDirectory(dir=shm) as elsewhere:
        job["product_list"]["product_list"]["staging_zone"] = elsewhere
        with pytest.raises(AbortProcessing, match="different file systems"):
            save_datasets_staged(job)


def test_staged_saving_needs_a_staging_zone(recent_agri_files, no_weights_env):
    with pytest.raises(AbortProcessing, match="staging_zone"):
        save_datasets_staged(make_job(recent_agri_files["FY-4A", 0]))
