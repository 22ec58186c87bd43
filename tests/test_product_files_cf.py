"""The NetCDF files of ``satpy-prenet retrieve`` and of the product list: CF time, global attributes, longitudes and
latitudes, chunks, file modes, and the removal of the staging folders that killed jobs leave behind."""

from __future__ import annotations

import datetime as dt
import os
import socket
import subprocess
import sys
import time

import netCDF4
import numpy as np
import pytest
import xarray as xr
from click.testing import CliRunner
from conftest import START
from satpy import Scene
from satpy.cf.coords import EPOCH

from satpy_prenet import retrieve
from satpy_prenet.chain import config_dir, read_product_list
from satpy_prenet.cli import main
from satpy_prenet.picture_writer import PICTURE_WRITER
from satpy_prenet.pictures import PNG_COMPRESS_LEVEL

#: Chunks smaller than the fixture's 256 x 256 grid, to see that the encoding reaches the file.
SMALL_CHUNKS = [1, 100, 100]
#: A modification time older than `retrieve.STALE_AFTER_S`.
TWO_HOURS_AGO = time.time() - 2 * 3600


def _dead_pid():
    """The process id of a process that has ended."""
    process = subprocess.Popen([sys.executable, "-c", ""])
    process.wait()
    return process.pid


def _staging_folder(out, host, pid, mtime=None):
    """A staging folder as ``retrieve_file`` names them, holding a partial file, last changed at ``mtime``."""
    folder = out / f"{retrieve.STAGING_PREFIX}{host}.{pid}.job{len(list(out.iterdir()))}"
    folder.mkdir()
    (folder / "partial.nc").write_bytes(b"partial")
    if mtime is not None:
        os.utime(folder, (mtime, mtime))
    return folder.name


@pytest.fixture(scope="module")
def written(agri_files, demo_bundle, tmp_path_factory):
    """``satpy-prenet retrieve --lonlats`` into a folder holding staging folders of earlier jobs, under umask 022.

    Returns the output folder, the NetCDF file, and the names of the staging folders that must go and stay.
    """
    out = tmp_path_factory.mktemp("cf") / "products"
    out.mkdir()
    host, dead = socket.gethostname(), _dead_pid()
    stale = [_staging_folder(out, host, dead, TWO_HOURS_AGO)]
    kept = [
        _staging_folder(out, host, dead),  # of a dead job, but changed just now
        _staging_folder(out, host, os.getpid(), TWO_HOURS_AGO),  # of a job still running (this process)
        _staging_folder(out, f"other-{host}", dead, TWO_HOURS_AGO),  # of another host: its process ids mean nothing
    ]
    foreign = out / ".FY4A_AGRI_REGC_20260715060000_precipitation.abcd"  # not a name of ours
    foreign.mkdir()
    os.utime(foreign, (TWO_HOURS_AGO, TWO_HOURS_AGO))
    kept.append(foreign.name)
    old_umask = os.umask(0o022)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.delenv("SATPY_PRENET_WEIGHTS", raising=False)
            patch.setattr(retrieve, "PRODUCT_ENCODING", {**retrieve.PRODUCT_ENCODING, "chunksizes": SMALL_CHUNKS})
            result = CliRunner().invoke(main, ["retrieve", str(agri_files["FY-4A"]), "--out", str(out), "--lonlats",
                                               "--institution", "Test Institute"])
    finally:
        os.umask(old_umask)
    assert result.exit_code == 0, result.output
    [netcdf] = out.glob("*.nc")
    return out, netcdf, stale, kept


def test_the_file_has_a_cf_time_coordinate_and_global_attributes(written, agri_files, demo_bundle):
    _, netcdf, _, _ = written
    with xr.open_dataset(netcdf) as products:
        assert products["precipitation_rate"].dims == ("time", "y", "x")
        assert products["time"].size == 1 and products["time"].values[0] == np.datetime64(START)
        assert products["time"].attrs["standard_name"] == "time"
        start, end = products[products["time"].attrs["bounds"]].values[0]
        assert start == np.datetime64(START) and np.datetime64(START) < end
        attrs = products.attrs
    assert attrs["title"] == "PRE-Net precipitation from FY-4A AGRI"
    assert attrs["institution"] == "Test Institute"
    for words in (agri_files["FY-4A"].name, demo_bundle.name, "demo-synthetic", "trained on simulated data only"):
        assert words in attrs["source"]
    assert attrs["references"] == retrieve.REFERENCES and "KDD 2025" in attrs["references"]
    assert attrs["Conventions"].startswith("CF-1.") and "satpy" in attrs["history"]
    with netCDF4.Dataset(netcdf) as raw:  # CF units, in whole seconds
        assert raw["time"].units == "seconds since 1970-01-01"
        assert raw["time"][0] == START.replace(tzinfo=dt.timezone.utc).timestamp()


def test_lonlats_are_cf_auxiliary_coordinates_with_the_area_values(written, agri_files):
    _, netcdf, _, _ = written
    scene = Scene(reader="agri_fy4a_l1", filenames=[str(agri_files["FY-4A"])])
    scene.load(["C12"])
    lons, lats = scene["C12"].attrs["area"].get_lonlats()
    with netCDF4.Dataset(netcdf) as raw:
        assert raw["precipitation_rate"].coordinates.split() == ["latitude", "longitude"]
        assert (raw["longitude"].standard_name, raw["longitude"].units) == ("longitude", "degrees_east")
        assert (raw["latitude"].standard_name, raw["latitude"].units) == ("latitude", "degrees_north")
        pixels = (np.array([0, 40, 128, 200, 255]), np.array([0, 250, 200, 150, 255]))
        assert np.isfinite(lats[pixels]).sum() == 4, "the pixels: one in space (infinite), four on the disc"
        np.testing.assert_allclose(raw["longitude"][:][pixels], lons[pixels], atol=1e-4)
        np.testing.assert_allclose(raw["latitude"][:][pixels], lats[pixels], atol=1e-4)


def test_the_encoding_sets_the_chunks_and_compression(written):
    _, netcdf, _, _ = written
    with netCDF4.Dataset(netcdf) as raw:
        for name in retrieve.PRODUCTS:
            assert raw[name].chunking() == SMALL_CHUNKS, name
            assert raw[name].filters()["zlib"] and raw[name].filters()["complevel"] == 4
        for name in ("longitude", "latitude"):
            assert raw[name].chunking() == SMALL_CHUNKS[1:] and raw[name].dtype == np.float32


def test_chunks_never_exceed_the_grid():
    encoding = retrieve._netcdf_encoding((100, 2748), lonlats=True)
    assert encoding["precipitation_rate"]["chunksizes"] == [1, 100, 256]
    assert encoding["latitude"]["chunksizes"] == [100, 256]


def test_products_have_the_mode_of_the_umask(written):
    out, _, _, _ = written
    products = [path for path in out.iterdir() if path.is_file()]
    assert len(products) == 3
    assert {oct(path.stat().st_mode & 0o777) for path in products} == {oct(0o644)}


def test_only_staging_folders_of_dead_jobs_unchanged_for_an_hour_are_removed(written):
    out, _, stale, kept = written
    folders = {path.name for path in out.iterdir() if path.is_dir()}
    assert folders == set(kept), f"removed {set(kept) - folders}, left {folders - set(kept)}"
    assert not set(stale) & folders


def test_the_product_list_writes_pictures_as_retrieve_does():
    """Every PNG of the product list is written by the writer and at the compression level `retrieve` uses."""
    product_list = read_product_list(config_dir() / "trollflow2" / "agri_precipitation.yaml")["product_list"]
    pngs = [fmt for area in product_list["areas"].values() for product in area["products"].values()
            for fmt in product["formats"] if fmt.get("format") == "png"]
    assert pngs and {(fmt["writer"], fmt.get("compress_level")) for fmt in pngs} == {(PICTURE_WRITER,
                                                                                      PNG_COMPRESS_LEVEL)}


def test_the_product_list_reads_in_the_chunks_retrieve_reads_in():
    product_list = read_product_list(config_dir() / "trollflow2" / "agri_precipitation.yaml")
    (model,) = [worker for worker in product_list["workers"] if "dask_chunk_size" in worker]  # load_prenet_model
    assert model["dask_chunk_size"] == retrieve.DASK_CHUNK_SIZE


def test_the_product_list_writes_netcdf_as_retrieve_does():
    """The YAML cannot import Python: its CF settings must repeat those of `satpy_prenet.retrieve`."""
    product_list = read_product_list(config_dir() / "trollflow2" / "agri_precipitation.yaml")["product_list"]
    entries = [(name, fmt) for area in product_list["areas"].values() for name, product in area["products"].items()
               for fmt in product["formats"] if fmt["writer"] == "cf"]
    assert {name for name, _ in entries} == set(retrieve.PRODUCTS)
    for name, fmt in entries:
        assert fmt["encoding"] == {name: retrieve.PRODUCT_ENCODING, "time": {"units": EPOCH}}
        assert fmt["include_lonlats"] is False
        header = fmt["header_attrs"]
        assert header["references"] == retrieve.REFERENCES
        assert header["title"].startswith("PRE-Net precipitation from FY-4")
        assert header["institution"] == retrieve.INSTITUTION
        assert "demo-synthetic" in header["source"]
