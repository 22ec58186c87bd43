# SPDX-License-Identifier: GPL-3.0-or-later
"""CLDAS-V2.0 hourly precipitation: the simulated ground truth, its writer and the reader."""

from __future__ import annotations

import datetime as dt

import netCDF4
import numpy as np
import pytest

from satpy_prenet.data.cldas import CLDASFileError, parse_cldas_name, read_cldas_precipitation
from satpy_prenet.synthetic.cldas_file import GAUGE_ERROR_SIGMA, hourly_truth, write_cldas
from satpy_prenet.synthetic.world import World

HOUR = dt.datetime(2023, 7, 1, 6)
DATA_TIME = HOUR + dt.timedelta(hours=1)
#: Over southern China and the South China Sea, inside the CLDAS domain.
WINDOW = (700, 956, 1300, 1556)
STEP = 0.0625


@pytest.fixture(scope="module")
def scenes():
    world = World(11)
    return [world.scene(HOUR + dt.timedelta(minutes=15 * slot), "FY-4A", WINDOW) for slot in range(4)]


@pytest.fixture(scope="module")
def exact(scenes):
    return hourly_truth(scenes, seed=5, gauge_error=0.0)


@pytest.fixture(scope="module")
def truth(scenes):
    return hourly_truth(scenes, seed=5)


@pytest.fixture(scope="module")
def cldas_file(truth, tmp_path_factory):
    return write_cldas(truth, tmp_path_factory.mktemp("cldas"), data_time=DATA_TIME)


def _pooled_mean(scenes):
    """Hourly cell means computed directly: np.add.at of all pixels of the four scenes into their cells."""
    total = np.zeros((1040, 1600))
    count = np.zeros((1040, 1600))
    for scene in scenes:
        ok = np.isfinite(scene.rain_rate)
        rows = (scene.lat[ok] // STEP).astype(int)
        cols = ((scene.lon[ok] - 60.0) // STEP).astype(int)
        np.add.at(total, (rows, cols), scene.rain_rate[ok].astype(np.float64))
        np.add.at(count, (rows, cols), 1)
    with np.errstate(invalid="ignore"):
        return total / count


def _box_mean(scenes, lat, lon):
    """Mean over the four scenes of the pixels inside the cell centred at (lat, lon), with a plain box test."""
    means = []
    for scene in scenes:
        inside = (np.abs(scene.lat - lat) < STEP / 2) & (np.abs(scene.lon - lon) < STEP / 2)
        assert inside.sum() >= 1
        means.append(scene.rain_rate[inside].mean(dtype=np.float64))
    return np.mean(means)


def test_truth_grid_and_coverage(exact, scenes):
    centres = np.arange(1040) * STEP + STEP / 2
    np.testing.assert_allclose(exact["lat"], centres, atol=1e-9)
    np.testing.assert_allclose(exact["lon"], 60 + np.arange(1600) * STEP + STEP / 2, atol=1e-9)
    assert exact.dims == ("lat", "lon") and exact.dtype == np.float32
    valid = np.isfinite(exact.values)
    lats = np.broadcast_to(exact["lat"].values[:, None], exact.shape)[valid]
    lons = np.broadcast_to(exact["lon"].values[None, :], exact.shape)[valid]
    assert 20_000 < valid.sum() < 40_000  # the window only, the rest is missing
    assert lats.min() > scenes[0].lat.min() - STEP and lats.max() < scenes[0].lat.max() + STEP
    assert lons.min() > scenes[0].lon.min() - STEP and lons.max() < scenes[0].lon.max() + STEP
    assert exact.attrs["end_time"] == exact.attrs["data_time"] == DATA_TIME.isoformat()
    assert exact.attrs["start_time"] == HOUR.isoformat()


def test_hourly_cell_mean_equals_pixel_mean(exact, scenes):
    expected = _pooled_mean(scenes)
    np.testing.assert_array_equal(np.isnan(exact.values), np.isnan(expected))
    np.testing.assert_allclose(exact.values, expected, rtol=1e-5, atol=1e-6)
    rng = np.random.default_rng(0)
    rainy = np.flatnonzero(scenes[0].rain_rate > 1.0)
    for flat in rng.choice(rainy, 5, replace=False):
        row = int(scenes[0].lat.flat[flat] // STEP)
        col = int((scenes[0].lon.flat[flat] - 60.0) // STEP)
        box = _box_mean(scenes, row * STEP + STEP / 2, 60 + col * STEP + STEP / 2)
        assert box > 0
        assert exact.values[row, col] == pytest.approx(box, rel=1e-5)


def test_gauge_error_is_small_smooth_multiplicative(truth, exact):
    rainy = exact.values > 0
    np.testing.assert_array_equal(truth.values == 0, exact.values == 0)  # zeros stay zero
    np.testing.assert_array_equal(np.isnan(truth.values), np.isnan(exact.values))
    log_ratio = np.log(truth.values[rainy] / exact.values[rainy])
    assert 0.01 < log_ratio.std() < 3 * GAUGE_ERROR_SIGMA
    assert np.abs(log_ratio).max() < 6 * GAUGE_ERROR_SIGMA
    ratio = np.where(rainy, truth.values / np.where(rainy, exact.values, 1), np.nan)
    neighbour_step = np.abs(np.diff(np.log(ratio), axis=1))
    assert np.nanmedian(neighbour_step) < 0.2 * log_ratio.std()  # spatially smooth, not white noise


def test_gauge_error_is_seeded(scenes, truth):
    again = hourly_truth(scenes, seed=5)
    other = hourly_truth(scenes, seed=6)
    np.testing.assert_array_equal(again.values, truth.values)
    rainy = truth.values > 0
    assert not np.allclose(other.values[rainy], truth.values[rainy])


def test_truth_statistics_follow_the_pixels(truth, scenes):
    pixels = np.concatenate([scene.rain_rate[np.isfinite(scene.rain_rate)] for scene in scenes])
    cells = truth.values[np.isfinite(truth.values)]
    assert cells.mean() == pytest.approx(pixels.mean(), rel=0.1)
    pixel_fraction = (pixels > 0).mean()
    cell_fraction = (cells > 0).mean()
    assert 0.1 < pixel_fraction < 0.9
    assert pixel_fraction <= cell_fraction < pixel_fraction + 0.15


def test_hourly_truth_rejects_bad_input(scenes):
    late = World(11).scene(HOUR + dt.timedelta(hours=1), "FY-4A", WINDOW)
    with pytest.raises(ValueError, match="more than the hour"):
        hourly_truth([*scenes, late], seed=1)
    with pytest.raises(ValueError, match="at least one scene"):
        hourly_truth([], seed=1)


def test_round_trip(cldas_file, truth):
    assert not list(cldas_file.parent.glob(".*part"))
    field = read_cldas_precipitation(cldas_file)
    assert field.shape == (1040, 1600) and field.dtype == np.float32
    np.testing.assert_array_equal(field.values, truth.values)  # NaN in the same places
    np.testing.assert_allclose(field["lat"], np.arange(1040) * STEP + STEP / 2)
    np.testing.assert_allclose(field["lon"], 60 + np.arange(1600) * STEP + STEP / 2)
    assert field.attrs["data_time"] == field.attrs["end_time"] == "2023-07-01T07:00:00"
    assert field.attrs["start_time"] == "2023-07-01T06:00:00"
    assert field.attrs["product"] == "NRT" and field.attrs["region"] == "ASI"
    assert field.attrs["units"] == "mm/h" and field.attrs["units_in_file"] == "mm"


def test_file_layout(cldas_file, truth):
    with netCDF4.Dataset(cldas_file) as nc:
        nc.set_auto_mask(False)
        prcp = nc["PRCP"]
        assert prcp.dimensions == ("LAT", "LON") and prcp.dtype == np.float32
        assert prcp.units == "mm" and prcp._FillValue == np.float32(-9999.0)
        raw = prcp[:]
        assert nc["LAT"].shape == (1040,) and nc["LON"].shape == (1600,)
        assert np.all(np.diff(nc["LAT"][:]) > 0)
        assert "satpy-prenet" in nc.source and "simulator" in nc.comment
    np.testing.assert_array_equal(raw == -9999.0, np.isnan(truth.values))


def test_name_parses_back(cldas_file, truth, tmp_path):
    name = parse_cldas_name(cldas_file)
    assert name.data_time == DATA_TIME and name.product == "NRT" and name.region == "ASI"
    assert name.production_time > DATA_TIME
    rt = write_cldas(truth, tmp_path, data_time=DATA_TIME, product="RT",
                     production_time=dt.datetime(2023, 7, 1, 7, 41, 25))
    assert rt.name == "Z_NAFP_C_BABJ_20230701074125_P_CLDAS_RT_ASI_0P0625_HOR-PRE-2023070107.nc"
    assert parse_cldas_name(rt).product == "RT"
    real = parse_cldas_name("Z_NAFP_C_BABJ_20220714020018_P_CLDAS_NRT_ASI_0P0625_HOR-PRE-2022071202.nc")
    assert real.data_time == dt.datetime(2022, 7, 12, 2)
    assert real.production_time == dt.datetime(2022, 7, 14, 2, 0, 18)


def _small_file(path, *, lat=None, lon=None, values=None, lat_descending=False, time_dim=0, dtype="f4",
                fill=None, missing=None, omit=()):
    """A small CLDAS-like file with the chosen variant of the layout; returns the field as written (lat ascending)."""
    lat = np.arange(320, 328) * STEP + STEP / 2 if lat is None else lat
    lon = 60 + np.arange(1000, 1010) * STEP + STEP / 2 if lon is None else lon
    if values is None:
        values = np.arange(lat.size * lon.size, dtype=np.float64).reshape(lat.size, lon.size) / 10
    with netCDF4.Dataset(path, "w") as nc:
        nc.createDimension("LAT", lat.size)
        nc.createDimension("LON", lon.size)
        for key, axis in (("LAT", lat[::-1] if lat_descending else lat), ("LON", lon)):
            if key not in omit:
                nc.createVariable(key, "f8", (key,))[:] = axis
        dims = ("LAT", "LON")
        stored = values[::-1] if lat_descending else values
        if time_dim:
            nc.createDimension("time", time_dim)
            dims = ("time", *dims)
            stored = np.repeat(stored[None], time_dim, axis=0)
        if "PRCP" not in omit:
            prcp = nc.createVariable("PRCP", dtype, dims, fill_value=fill)
            if missing is not None:
                prcp.missing_value = missing
            prcp.set_auto_mask(False)
            prcp[:] = stored
    return values


SMALL = "Z_NAFP_C_BABJ_20210721084125_P_CLDAS_RT_CHN_0P0625_HOR-PRE-2021072108.nc"


@pytest.mark.parametrize("variant", [
    {},
    {"lat_descending": True},
    {"time_dim": 1},
    {"lat_descending": True, "time_dim": 1, "dtype": "f8"},
])
def test_reader_tolerates_layout_variants(tmp_path, variant):
    path = tmp_path / SMALL
    values = _small_file(path, **variant)
    field = read_cldas_precipitation(path)
    assert field.dims == ("lat", "lon") and field.shape == values.shape
    assert np.all(np.diff(field["lat"]) > 0)
    np.testing.assert_allclose(field["lat"], np.arange(320, 328) * STEP + STEP / 2)
    np.testing.assert_allclose(field.values, values.astype(np.float32))
    assert field.attrs["product"] == "RT" and field.attrs["region"] == "CHN"
    assert field.attrs["data_time"] == "2021-07-21T08:00:00"


@pytest.mark.parametrize("marker", [
    {"fill": -9999.0},
    {"fill": np.float32(9.999e20)},
    {"missing": np.float32(9.999e20)},
    {},  # no attribute: negative values and huge values are still missing
])
def test_reader_masks_missing_values(tmp_path, marker):
    path = tmp_path / SMALL
    values = np.full((8, 10), 1.5)
    values[0, 0] = -9999.0
    values[1, 1] = 9.999e20
    values[2, 2] = 0.0
    _small_file(path, values=values, lat_descending=True, **marker)
    field = read_cldas_precipitation(path).values
    assert np.isnan(field[0, 0]) and np.isnan(field[1, 1])
    assert field[2, 2] == 0.0
    assert np.isfinite(field).sum() == values.size - 2


def _error_case(tmp_path, case, cldas_file):
    path = tmp_path / SMALL
    if case == "missing":
        return path
    if case == "empty":
        path.touch()
    elif case == "text":
        path.write_text("LAT LON PRCP\n")
    elif case == "truncated":
        path.write_bytes(cldas_file.read_bytes()[:20_000])
    elif case in ("PRCP", "LAT", "LON"):
        _small_file(path, omit=(case,))
    elif case == "irregular":
        _small_file(path, lat=np.arange(8) * 0.1 + 20.05)
    elif case == "offset":
        _small_file(path, lon=60 + np.arange(1000, 1010) * STEP)
    elif case == "long_time":
        _small_file(path, time_dim=2)
    elif case == "name":
        path = tmp_path / "cldas_precipitation_2021072108.nc"
        _small_file(path)
    return path


@pytest.mark.parametrize(("case", "message"), [
    ("missing", "no such file"),
    ("empty", "empty file"),
    ("text", "not a NetCDF file"),
    ("truncated", "truncated or corrupt"),
    ("PRCP", "no PRCP variable"),
    ("LAT", "no LAT variable"),
    ("LON", "no LON variable"),
    ("irregular", "not a regular 0.0625-degree axis"),
    ("offset", "centres are not at"),
    ("long_time", "PRCP has dimensions"),
    ("name", "not a CLDAS hourly precipitation file name"),
])
def test_reader_errors_name_the_file(tmp_path, cldas_file, case, message):
    path = _error_case(tmp_path, case, cldas_file)
    with pytest.raises(CLDASFileError, match=message) as info:
        read_cldas_precipitation(path)
    assert str(path) in str(info.value)
    assert info.value.path == path


def test_writer_rejects_other_grids(truth, tmp_path):
    with pytest.raises(ValueError, match="shape"):
        write_cldas(truth.isel(lat=slice(0, 100)), tmp_path, data_time=DATA_TIME)
    with pytest.raises(ValueError, match="on the hour"):
        write_cldas(truth, tmp_path, data_time=DATA_TIME.replace(minute=30))
    assert not list(tmp_path.iterdir())
