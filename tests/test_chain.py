"""The operational chain with real processes on loopback: posttroll messages -> trollflow2 launcher -> products.

Every test starts the real ``satpy_launcher.py`` with the shipped product list (only its publishing address is
changed, to a free port), announces files with a real posttroll publisher on 127.0.0.1, listens to the completion
messages, and stops the launcher within bounded waits.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import rasterio
import xarray as xr
from PIL import Image
from posttroll.message import Message

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
from satpy_prenet.pictures import DEMO_MARK_COLOUR, PICTURES

SHIPPED = config_dir() / "trollflow2" / "agri_precipitation.yaml"
PRODUCTS = ("precipitation_rate", "precipitation_probability", "precipitation_flag", "precipitation_quality")
#: Files per input: four NetCDF products, the rate as GeoTIFF and the two pictures as PNG, on the native grid and
#: the region.
FILES_PER_INPUT = 14
JOB_TIMEOUT_S = 240


class Chain:
    """The shipped product list run by a launcher in ``workdir``, with an announcer and a product watcher."""

    def __init__(self, workdir: Path, now: dt.datetime, threaded: bool = False):
        self.workdir = workdir
        self.products = workdir / "products"
        self.product_list = copy_product_list(SHIPPED, workdir, free_address(), now=now)
        self.listen = free_address()
        self.threaded = threaded

    def __enter__(self):
        self.announcer = Announcer(self.listen)
        self.watcher = ProductWatcher(product_list_publisher(self.product_list))
        self.launcher = Launcher(self.product_list, self.listen, self.workdir / "launcher.log", threaded=self.threaded,
                                 cwd=self.workdir)
        try:
            self.launcher.start()
        except BaseException:
            self.watcher.stop()
            self.announcer.stop()
            raise
        return self

    def __exit__(self, *exc):
        try:
            assert self.launcher.stop() == 0, self.launcher.log()
        finally:
            self.watcher.stop()
            self.announcer.stop()

    def announce(self, path, **overrides):
        self.announcer.send(file_message(path, **overrides))

    def product_files(self):
        return sorted(path for path in self.products.iterdir() if path.is_file())

    def leftovers(self):
        """Anything in the staging zone: partial files or job folders."""
        staging = self.products / ".staging"
        return list(staging.rglob("*")) if staging.exists() else []


def test_message_to_products(recent_agri_files, chain_now, no_weights_env, tmp_path):
    good = recent_agri_files["FY-4A", 0]
    with Chain(tmp_path, chain_now) as chain:
        chain.announce(good)
        assert chain.launcher.wait_for_jobs(1, JOB_TIMEOUT_S) == [FILES_PER_INPUT], chain.launcher.log()
        received = chain.watcher.wait(FILES_PER_INPUT, timeout=30)
    files = chain.product_files()
    assert len(files) == FILES_PER_INPUT
    assert sorted(Path(item.message.data["uri"]) for item in received) == files
    assert {item.message.subject for item in received} == {
        f"/PRENET/precipitation/{area}/{product}" for area in ("native", "east_asia")
        for product in (*PRODUCTS, *PICTURES)}
    assert chain.leftovers() == []
    for area, shape in (("native", (256, 256)), ("east_asia", (1625, 2500))):
        _check_netcdf(chain.products, area, shape, good)
        for name in ("precipitation_rate.tif", *(f"{picture}.png" for picture in PICTURES)):
            [image] = [path for path in files if path.name.endswith(f"_{area}_{name}")]
            _check_image(image, shape)


def _check_netcdf(folder, area, shape, source):
    data = {}
    for product in PRODUCTS:
        [path] = folder.glob(f"FY-4A_AGRI_*_{area}_{product}.nc")
        with xr.open_dataset(path, mask_and_scale=False) as written:  # the flags keep their fill value -1
            assert written["time"].size == 1 and "time_bnds" in written, "a CF time axis of one step"
            assert written.attrs["source"].startswith(f"{source.name} (FY-4A AGRI L1 4 km); PRE-Net weights bundle")
            variable = written[product].squeeze("time", drop=True)
            assert variable.shape == shape
            assert "grid_mapping" in variable.attrs or "crs" in written.coords or "crs" in written
            assert variable.attrs["prenet_bundle_purpose"] == "demo-synthetic"
            data[product] = (variable.values, dict(variable.attrs))
    rate, rate_attrs = data["precipitation_rate"]
    assert rate_attrs["units"] == "mm h-1"
    assert rate_attrs["standard_name"] == "lwe_precipitation_rate"
    covered = np.isfinite(rate)
    assert covered.any()
    assert 0 <= np.nanmin(rate) and np.nanmax(rate) < 200  # mm/h
    probability = data["precipitation_probability"][0][covered]
    assert ((probability >= 0) & (probability <= 1)).all()
    flag, flag_attrs = data["precipitation_flag"]
    assert set(np.unique(flag[covered])) <= {0, 1}
    np.testing.assert_array_equal(flag[covered] == 1, rate[covered] > 0)
    quality, quality_attrs = data["precipitation_quality"]
    assert quality_attrs["flag_meanings"].split()[0] == "good"
    assert set(np.unique(quality[covered])) <= {0, 1, 2}
    if area == "native":
        assert covered.all(), "a region over land and sea has a retrieval everywhere"
    else:
        assert 0 < covered.mean() < 0.1, "the regional file covers a small part of the PRE-Net region"
        assert set(np.unique(quality[~covered])) == {-1}


def _check_image(path, shape):
    if path.suffix == ".tif":
        with rasterio.open(path) as tif:
            assert (tif.height, tif.width) == shape
            assert tif.count == 4  # RGBA through the product's colormap
            assert tif.crs is not None
    else:  # decorated: the title's white box at the top left, the demo mark under it
        with Image.open(path) as png:
            assert png.size == shape[::-1]
            pixels = np.asarray(png.convert("RGB"))
        assert tuple(pixels[1, 1]) == (255, 255, 255)
        # within two levels: satpy turns the decorated picture back into floats before writing it
        assert (np.abs(pixels[:100] - np.array(DEMO_MARK_COLOUR)) <= 2).all(axis=-1).any(), "the demo mark"


def test_bad_files_are_skipped_and_the_next_good_one_still_processed(recent_agri_files, chain_now, bad_agri_inputs,
                                                                    damaged_agri_file, no_weights_env, tmp_path):
    bad = [*bad_agri_inputs, ("damaged data", damaged_agri_file, "FY-4A", "channel C12 (10.8 um) is corrupt")]
    with Chain(tmp_path, chain_now) as chain:
        for _, path, platform, _ in bad:
            chain.announce(path, platform_name=platform)
        chain.announce(recent_agri_files["FY-4A", 0])
        jobs = chain.launcher.wait_for_jobs(len(bad) + 1, JOB_TIMEOUT_S * 2)
        chain.watcher.wait(FILES_PER_INPUT, timeout=30)
    log = chain.launcher.log()
    assert jobs == [0] * len(bad) + [FILES_PER_INPUT], log
    for kind, path, _, expected in bad:
        assert any(expected in line and str(path) in line and "ERROR" in line for line in log.splitlines()), kind
    assert "Traceback" not in log
    assert len(chain.product_files()) == FILES_PER_INPUT
    assert len(chain.watcher.received) == FILES_PER_INPUT
    assert chain.leftovers() == []


def test_the_same_message_twice_gives_one_set_of_products(recent_agri_files, chain_now, no_weights_env, tmp_path):
    good = recent_agri_files["FY-4A", 0]
    with Chain(tmp_path, chain_now, threaded=True) as chain:
        chain.announce(good)
        chain.launcher.wait_for_jobs(1, JOB_TIMEOUT_S)
        first = {path.name: _values(path) for path in chain.product_files() if path.suffix == ".nc"}
        chain.announce(good)
        assert chain.launcher.wait_for_jobs(2, JOB_TIMEOUT_S) == [FILES_PER_INPUT] * 2, chain.launcher.log()
    files = chain.product_files()
    assert len(files) == FILES_PER_INPUT
    assert chain.leftovers() == []
    second = {path.name: _values(path) for path in files if path.suffix == ".nc"}
    assert first.keys() == second.keys()
    for name in first:
        np.testing.assert_array_equal(first[name], second[name], err_msg=name)


def _values(path):
    with xr.open_dataset(path) as written:
        [name] = [key for key in written.data_vars if key.startswith("precipitation")]
        return written[name].values


def test_a_burst_is_processed_completely_and_in_order(recent_agri_files, chain_now, no_weights_env, tmp_path):
    """Messages sent back to back, one process per message: none lost, handled in order, one model load each."""
    inputs = [recent_agri_files["FY-4A", 2], recent_agri_files["FY-4B", 0], recent_agri_files["FY-4A", 1]]
    with Chain(tmp_path, chain_now) as chain:
        for path in inputs:
            chain.announce(path)
        jobs = chain.launcher.wait_for_jobs(len(inputs), JOB_TIMEOUT_S * len(inputs))
        received = chain.watcher.wait(FILES_PER_INPUT * len(inputs), timeout=30)
    assert jobs == [FILES_PER_INPUT] * len(inputs), chain.launcher.log()
    assert len(chain.product_files()) == FILES_PER_INPUT * len(inputs)
    announced = [file_message(path).data for path in inputs]
    order = []
    for item in received:
        key = (item.message.data["platform_name"], item.message.data["start_time"])
        if not order or order[-1] != key:
            order.append(key)
    assert order == [(data["platform_name"], data["start_time"]) for data in announced]
    assert chain.launcher.log().count("Loaded demo-synthetic PRE-Net bundle") == len(inputs)


def test_threaded_launcher_keeps_the_model_loaded(recent_agri_files, chain_now, no_weights_env, tmp_path):
    inputs = [recent_agri_files["FY-4A", slot] for slot in (2, 1, 0)]
    with Chain(tmp_path, chain_now, threaded=True) as chain:
        for path in inputs:
            chain.announce(path)
        jobs = chain.launcher.wait_for_jobs(len(inputs), JOB_TIMEOUT_S * len(inputs))
    log = chain.launcher.log()
    assert jobs == [FILES_PER_INPUT] * len(inputs), log
    assert log.count("Loaded demo-synthetic PRE-Net bundle") == 1
    assert log.count("Read the input and ran PRE-Net") == len(inputs)


def test_launcher_processes_a_message_file(recent_agri_files, chain_now, no_weights_env, tmp_path):
    """``satpy_launcher.py -m FILE``, the operators' way to replay a message, with the shipped product list."""
    message_file = tmp_path / "message.txt"
    message_file.write_text(file_message(recent_agri_files["FY-4A", 0]).encode() + "\n")
    chain = Chain(tmp_path, chain_now)
    command = [sys.executable, str(Path(sys.executable).with_name("satpy_launcher.py")), "-m", str(message_file),
               "-c", str(config_dir() / "trollflow2" / "log_config.yaml"), str(chain.product_list)]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=JOB_TIMEOUT_S,
                          env={**os.environ, "SATPY_CONFIG_PATH": str(config_dir())})
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"All {FILES_PER_INPUT} files produced nominally" in done.stdout + done.stderr
    assert len(chain.product_files()) == FILES_PER_INPUT


def test_job_ends_are_read_from_the_launcher_log(tmp_path):
    """Each job starts with "New message received." and ends with trollflow2's first result line."""
    log = tmp_path / "launcher.log"
    log.write_text("\n".join([
        "[t INFO trollflow2.launcher] New message received.", "[t INFO trollflow2.launcher] All 12 files produced "
        "nominally in 0:00:05", "[t INFO trollflow2.launcher] New message received.",
        "[t WARNING trollflow2.launcher] PRE-Net job skipped: x", "[t INFO trollflow2.launcher] All 0 files produced "
        "nominally in 0:00:01", "[t INFO trollflow2.launcher] New message received.",  # a failed write, threaded
        "[t ERROR trollflow2.launcher] Missing file: products/a.nc", "[t INFO trollflow2.launcher] New message "
        "received.", "[t ERROR trollflow2.launcher] Missing file: products/b.nc",  # the same, one process per job
        "[t CRITICAL trollflow2.launcher] Process crashed with exit code 1",
        "[t INFO trollflow2.launcher] New message received.", "[t INFO trollflow2.plugins] Creating scene"]))
    launcher = Launcher(SHIPPED, free_address(), log)
    assert launcher.finished_jobs() == [12, 0, None, None]  # the fifth job is still running


def test_file_message_is_read_from_the_file_name(tmp_path):
    name = "FY4B-_AGRI--_N_DISK_1330E_L1-_FDI-_MULT_NOM_20260801060000_20260801061459_4000M_V0001.HDF"
    data = file_message(tmp_path / name).data  # the file itself is never opened
    assert data["uri"] == str(tmp_path / name)
    assert (data["platform_name"], data["sensor"], data["observation_type"]) == ("FY-4B", "agri", "DISK")
    assert data["start_time"] == dt.datetime(2026, 8, 1, 6, tzinfo=dt.timezone.utc)
    assert data["end_time"] - data["start_time"] == dt.timedelta(minutes=14, seconds=59)
    later = dt.datetime(2026, 8, 1, 7, tzinfo=dt.timezone.utc)
    moved = file_message(tmp_path / name, platform_name="FY-4A", start_time=later).data
    assert (moved["platform_name"], moved["start_time"]) == ("FY-4A", later)
    assert moved["end_time"] - moved["start_time"] == dt.timedelta(minutes=14, seconds=59)


def test_shipped_sample_message_is_a_valid_agri_announcement():
    raw = (config_dir() / "trollflow2" / "sample_message.txt").read_text().splitlines()[0]
    message = Message(rawstr=raw)
    assert message.type == "file"
    assert message.subject.startswith("/AGRI/L1")
    assert message.data["platform_name"] in ("FY-4A", "FY-4B")
    assert message.data["sensor"] == "agri"
    assert message.data["start_time"].tzinfo is not None
    assert "resolution" not in message.data  # trollflow2 would silently skip every product
    assert message.data == file_message(message.data["uri"]).data
