# SPDX-License-Identifier: GPL-3.0-or-later
"""Gauge adjustment of the satellite rain rate: the library on synthetic fields, the worker on real trollflow2 jobs."""

from __future__ import annotations

import copy
import datetime as dt
import json
import logging
import re
from pathlib import Path

import dask.array as da
import numpy as np
import pandas as pd
import pytest
import xarray as xr
import yaml
from conftest import CHINA_REGIONS
from pyresample import create_area_def
from pyresample.geometry import AreaDefinition
from satpy.cf.coords import EPOCH
from test_trollflow2_workers import make_job
from trollflow2.plugins import create_scene, load_composites, resample

from satpy_prenet.ground.adjust import (
    adjust_precipitation_rate,
    gauge_observation,
    match_gauges,
    validate_against_gauges,
)
from satpy_prenet.ground.ekf import ZREKF
from satpy_prenet.ground.gauges import LOCATION, OUTSIDE, read_gauges
from satpy_prenet.synthetic import write_agri_l1
from trollflow2_plugins.delivery import save_datasets_staged
from trollflow2_plugins.ground import adjust_with_gauges
from trollflow2_plugins.prenet import check_agri_input, compute_products

#: 0.05 degree grid over southern China.
AREA = create_area_def("gauge_test", {"proj": "longlat", "datum": "WGS84"}, width=80, height=60,
                       area_extent=(110.0, 20.0, 114.0, 23.0))
#: Coarse full disc of FY-4A: space around the Earth.
DISC = AreaDefinition("disc", "coarse FY-4A disc", "geos",
                      {"proj": "geos", "lon_0": 104.7, "h": 35786000, "a": 6378140, "rf": 298.257223563,
                       "units": "m"}, 110, 110, (-5_500_000, -5_500_000, 5_500_000, 5_500_000))
SLOTS = [np.datetime64("2026-07-15T00:00", "ns") + np.timedelta64(hour, "h") for hour in range(1, 5)]
INTERVAL = np.timedelta64(10, "m")
PER_WINDOW = 6  # 10-minute intervals in the 1-hour window
WINDOW = "1h"  # these slots are hourly, with the truth constant over each hour


def rain_field(seed, shape=(60, 80)):
    """Smooth showers (mm/h) with dry ground between them."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:shape[0], 0:shape[1]]
    field = np.zeros(shape)
    for _ in range(6):
        cy, cx, size, peak = rng.uniform(0, shape[0]), rng.uniform(0, shape[1]), rng.uniform(5, 15), rng.uniform(2, 15)
        field += peak * np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * size**2))
    return np.where(field > 1, field - 1, 0.0)


def satellite(values, time, area=AREA):
    """A satellite rate product as the composite gives it (area, times, name, units)."""
    start = pd.Timestamp(time).to_pydatetime()
    return xr.DataArray(np.asarray(values, dtype=np.float32), dims=("y", "x"), name="precipitation_rate",
                        attrs={"area": area, "start_time": start, "end_time": start + dt.timedelta(minutes=4),
                               "name": "precipitation_rate", "units": "mm h-1",
                               "long_name": "surface precipitation rate retrieved by PRE-Net"})


def stations(rng, count, prefix, area=AREA):
    """Names, pixel rows/cols and the lon/lat of their pixel centres."""
    rows, cols = rng.integers(0, area.height, count), rng.integers(0, area.width, count)
    lon, lat = area.get_lonlat_from_array_coordinates(cols, rows)
    return [f"{prefix}{i:02d}" for i in range(count)], rows, cols, lon, lat


def records(network, fields, rng, slots=SLOTS):
    """Long-format gauge records: each hour's true rate over its six 10-minute intervals, with 10 % noise."""
    names, rows, cols, lon, lat = network
    table = []
    for slot, truth in zip(slots, fields, strict=True):
        for step in range(PER_WINDOW):
            end = slot - (PER_WINDOW - 1 - step) * INTERVAL
            depth = truth[rows, cols] / PER_WINDOW * rng.lognormal(0, 0.1, len(names))
            table += [{"station": name, "lon": x, "lat": y, "time": f"{end}Z", "mm": mm}
                      for name, x, y, mm in zip(names, lon, lat, depth, strict=True)]
    return pd.DataFrame(table)


def write_netcdf(table, path):
    """The same records as a station x time NetCDF grid."""
    grid = table.assign(time=pd.to_datetime(table["time"]).dt.tz_convert(None)).set_index(["station", "time"])
    ds = grid["mm"].to_xarray().to_dataset()
    positions = table.groupby("station")[["lon", "lat"]].first()
    ds = ds.assign_coords(lon=("station", positions["lon"].to_numpy()), lat=("station", positions["lat"].to_numpy()))
    ds.to_netcdf(path)
    return path


@pytest.fixture(scope="module")
def network(tmp_path_factory):
    """Four hourly rain fields, 30 adjusting gauges (CSV) and 30 independent checking gauges (NetCDF)."""
    out = tmp_path_factory.mktemp("gauges")
    rng = np.random.default_rng(7)
    fields = [rain_field(seed) for seed in range(len(SLOTS))]
    adjusting = records(stations(rng, 30, "A"), fields, rng)
    adjusting.to_csv(out / "adjusting.csv", index=False)
    checking = write_netcdf(records(stations(rng, 30, "C"), fields, rng), out / "checking.nc")
    return fields, read_gauges(out / "adjusting.csv"), read_gauges(checking)


@pytest.mark.parametrize(("fixed_b", "alpha", "beta"), [(True, 2.5, 1.0), (False, 2.0, 1.3)])
def test_filter_learns_the_bias_and_cuts_the_error_at_independent_gauges(network, fixed_b, alpha, beta):
    fields, gauges, checking = network
    assert int(gauges["flag"].sum()) == 0 and int(checking["flag"].sum()) == 0
    check_matches = match_gauges(checking, AREA)
    state, a_values, b_values = None, [], []
    for slot, truth in zip(SLOTS, fields, strict=True):
        rate = satellite(alpha * truth**beta, slot)
        adjusted = adjust_precipitation_rate(rate, gauges, state, fixed_b=fixed_b, window=WINDOW)
        assert adjusted.attrs["gauge_adjustment_status"] == "accepted"
        assert adjusted.attrs["gauge_adjustment_n_gauges"] == 30
        state = adjusted.attrs["gauge_adjustment_state"]
        a_values.append(adjusted.attrs["gauge_adjustment_a"])
        b_values.append(adjusted.attrs["gauge_adjustment_b"])
        raw = validate_against_gauges(rate, checking, check_matches, None, "1h")
        better = validate_against_gauges(adjusted, checking, check_matches, None, "1h")
        assert raw["n"] == better["n"] == 30
        assert better["rmse"] < 0.35 * raw["rmse"], slot
        assert better["mae"] < 0.35 * raw["mae"] and abs(better["bias"]) < 0.35 * abs(raw["bias"])
        assert better["r2"] > max(raw["r2"], 0.7) and better["pearson_r"] > 0.9
    saved = json.loads(state)
    assert saved["counters"]["accepted"] == len(SLOTS)
    assert saved["time"] == pd.Timestamp(SLOTS[-1]).timestamp()
    if fixed_b:
        assert b_values == [1.0] * len(SLOTS)
        assert abs(np.log(a_values[-1] / alpha)) < 0.1 < abs(np.log(1.0 / alpha))
    else:
        assert all(1.02 < b <= beta for b in b_values)  # one pooled gauge sum: a ridge, b only moves toward beta


def test_state_round_trips_through_the_attributes_and_leaves_a_given_filter_alone(network):
    fields, gauges, _ = network
    first = adjust_precipitation_rate(satellite(2 * fields[0], SLOTS[0]), gauges, window=WINDOW)
    given = ZREKF.from_dict(json.loads(first.attrs["gauge_adjustment_state"]))
    before = given.to_dict()
    rate = satellite(2 * fields[1], SLOTS[1])
    results = [adjust_precipitation_rate(rate, gauges, state, window=WINDOW)
               for state in (first.attrs["gauge_adjustment_state"], before, given)]
    assert given.to_dict() == before
    assert len({result.attrs["gauge_adjustment_state"] for result in results}) == 1
    np.testing.assert_array_equal(results[0].values, results[2].values)
    fresh = adjust_precipitation_rate(rate, gauges, window=WINDOW)
    assert fresh.attrs["gauge_adjustment_a"] != results[0].attrs["gauge_adjustment_a"]
    again = adjust_precipitation_rate(rate, gauges, results[0].attrs["gauge_adjustment_state"], window=WINDOW)
    assert again.attrs["gauge_adjustment_status"].startswith("gated: no gauge update: the filter is already at")
    assert again.attrs["gauge_adjustment_a"] == results[0].attrs["gauge_adjustment_a"]


def test_without_gauges_the_relation_is_predicted_and_its_uncertainty_grows(network):
    fields, gauges, _ = network
    first = adjust_precipitation_rate(satellite(3 * fields[0], SLOTS[0]), gauges, window=WINDOW)
    variances = []
    for hours in (1, 6):
        rate = satellite(3 * fields[1], SLOTS[0] + np.timedelta64(hours, "h"))
        later = adjust_precipitation_rate(rate, None, first.attrs["gauge_adjustment_state"], window=WINDOW)
        state = json.loads(later.attrs["gauge_adjustment_state"])
        assert later.attrs["gauge_adjustment_status"] == "gated: no gauge update: no gauge data"
        assert later.attrs["gauge_adjustment_a"] == first.attrs["gauge_adjustment_a"]
        assert state["time"] == pd.Timestamp(SLOTS[0] + np.timedelta64(hours, "h")).timestamp()
        np.testing.assert_allclose(later.values, rate.values / later.attrs["gauge_adjustment_a"], rtol=1e-6)
        variances.append(state["P"][0][0])
    assert variances[0] < variances[1]


def test_zero_and_nan_stay_and_only_gauge_chunks_are_computed(network):
    fields, gauges, _ = network
    values = (2 * fields[0]).astype(np.float32)
    values[:, :12] = np.nan  # no retrieval (e.g. space)
    computed = []

    def record(block, block_info=None):
        computed.append(tuple(block_info[0]["chunk-location"]))
        return block

    lazy = da.map_blocks(record, da.from_array(values, chunks=(20, 20)), dtype=np.float32)
    rate = satellite(values, SLOTS[0]).copy(deep=False, data=lazy)
    adjusted = adjust_precipitation_rate(rate, gauges, window=WINDOW)
    assert isinstance(adjusted.data, da.Array)
    matches = match_gauges(gauges, AREA)
    expected = set(zip(matches["row"].to_numpy() // 20, matches["col"].to_numpy() // 20, strict=True))
    assert set(computed) == expected and len(expected) < lazy.npartitions
    assert adjusted.name == adjusted.attrs["name"] == "precipitation_rate_adjusted"
    assert adjusted.dims == rate.dims and adjusted.attrs["area"] is AREA and adjusted.dtype == np.float32
    result, a = adjusted.values, adjusted.attrs["gauge_adjustment_a"]
    np.testing.assert_array_equal(np.isnan(result), np.isnan(values))
    np.testing.assert_array_equal(result == 0, values == 0)
    np.testing.assert_allclose(result, values / a, rtol=1e-6)
    assert adjusted.attrs["gauge_adjustment_n_gauges"] < 30  # gauges under the NaN columns are skipped
    assert "no satellite rate at the pixel" in adjusted.attrs["gauge_adjustment_skipped"]


def _write_csv(tmp_path, rows, name="gauges.csv"):
    path = tmp_path / name
    pd.DataFrame(rows, columns=["station", "lon", "lat", "time", "mm"]).to_csv(path, index=False)
    return path


def test_match_gauges_on_the_disc_flags_space_outside_and_invalid_positions(tmp_path):
    points = {"nadir": (104.9, 0.3), "china": (113.0, 23.0), "far_side": (-75.0, 0.0), "pole": (104.7, 89.5),
              "nowhere": (np.nan, np.nan)}
    path = _write_csv(tmp_path, [(name, lon, lat, f"{time}Z", 0.0) for name, (lon, lat) in points.items()
                                 for time in SLOTS[:2]])
    gauges = read_gauges(path)
    matches = match_gauges(gauges, DISC, max_distance_m=100_000)
    valid = dict(zip(matches["station"].to_numpy(), matches["valid"].to_numpy(), strict=True))
    assert valid == {"nadir": True, "china": True, "far_side": False, "pole": False, "nowhere": False}
    on_disc = matches.sel(station=["nadir", "china"])
    cols, rows = DISC.get_array_indices_from_lonlat(on_disc["lon"].to_numpy(), on_disc["lat"].to_numpy())
    np.testing.assert_array_equal(on_disc["row"], rows)
    np.testing.assert_array_equal(on_disc["col"], cols)
    off = matches.sel(station=["far_side", "pole", "nowhere"])
    assert (off["row"] == -1).all() and (off["col"] == -1).all() and (off["flag"] == OUTSIDE).all()
    assert (matches.sel(station=["nadir", "china"])["flag"] == 0).all()

    rate = satellite(np.ones(DISC.shape), SLOTS[1], area=DISC)
    observation = gauge_observation(rate, gauges, matches, None, "1h")
    assert observation.skipped == {"far_side": "outside the image", "pole": "outside the image",
                                   "nowhere": "invalid position"}
    assert bool(gauges["flag"].sel(station="nowhere")[0] & LOCATION)
    assert sorted(observation.stations) == ["china", "nadir"]


@pytest.mark.parametrize(("lon", "lat", "valid"), [(120.0, 21.0, False), (None, None, True)])
def test_a_single_station_is_matched_or_flagged(tmp_path, lon, lat, valid):
    """The simulator's gauge files hold one station: pyresample answers a single point with scalars."""
    if lon is None:
        centre = AREA.get_lonlat_from_array_coordinates(np.array([10]), np.array([20]))
        lon, lat = float(centre[0][0]), float(centre[1][0])
    gauges = read_gauges(_write_csv(tmp_path, [("one", lon, lat, f"{time}Z", 0.1) for time in SLOTS[:2]]))
    matches = match_gauges(gauges, AREA)
    assert list(matches["valid"].to_numpy()) == [valid]
    assert (int(matches["row"][0]), int(matches["col"][0])) == ((20, 10) if valid else (-1, -1))


def test_stations_off_the_grid_or_far_from_the_pixel_centre_are_flagged(tmp_path):
    centre_lon, centre_lat = AREA.get_lonlat_from_array_coordinates(np.array([10]), np.array([20]))
    points = {"centre": (centre_lon[0], centre_lat[0]), "offset": (centre_lon[0] + 0.02, centre_lat[0]),
              "east": (120.0, 21.0), "south": (112.0, 10.0)}
    gauges = read_gauges(_write_csv(tmp_path, [(name, lon, lat, f"{time}Z", 0.1) for name, (lon, lat)
                                               in points.items() for time in SLOTS[:2]]))
    loose, strict = match_gauges(gauges, AREA), match_gauges(gauges, AREA, max_distance_m=1000)
    assert list(loose["valid"].to_numpy()) == [True, True, False, False]
    assert list(strict["valid"].to_numpy()) == [True, False, False, False]
    assert (int(loose["row"][0]), int(loose["col"][0])) == (20, 10)
    assert 1500 < float(strict["distance_m"][1]) < 2500 and float(strict["distance_m"][0]) < 1
    assert list(strict["flag"].to_numpy()) == [0, OUTSIDE, OUTSIDE, OUTSIDE]


def _bad_data_rows(network_rows, cols, lon, lat, slot):
    """One window of good stations plus a gap, a negative, a stuck and an off-grid station."""
    rows = []
    for step in range(PER_WINDOW):
        time = f"{slot - (PER_WINDOW - 1 - step) * INTERVAL}Z"
        for i, (x, y) in enumerate(zip(lon, lat, strict=True)):
            rows.append((f"good{i}", x, y, time, 0.3 + 0.01 * step + 0.05 * i))
        if step != 3:
            rows.append(("gap", lon[0], lat[0], time, 0.2 + 0.01 * step))
        rows.append(("negative", lon[1], lat[1], time, -0.5 if step == 2 else 0.2 + 0.01 * step))
        rows.append(("stuck", lon[2], lat[2], time, 0.4))
        rows.append(("outside", 130.0, 40.0, time, 0.2 + 0.01 * step))
    return rows


def test_bad_gauge_data_is_skipped_with_reasons_and_never_raises(tmp_path):
    rng = np.random.default_rng(3)
    _, rows, cols, lon, lat = stations(rng, 5, "G")
    gauges = read_gauges(_write_csv(tmp_path, _bad_data_rows(rows, cols, lon, lat, SLOTS[0])))
    rate = satellite(np.full(AREA.shape, 0.6), SLOTS[0])
    observation = gauge_observation(rate, gauges, match_gauges(gauges, AREA), None, "1h")
    assert observation.skipped == {"gap": "gap in the window", "negative": "negative value", "stuck": "stuck value",
                                   "outside": "outside the image"}
    assert observation.n_used == 5
    adjusted = adjust_precipitation_rate(rate, gauges, window=WINDOW)
    assert adjusted.attrs["gauge_adjustment_status"] == "accepted"
    assert adjusted.attrs["gauge_adjustment_n_gauges"] == 5
    assert adjusted.attrs["gauge_adjustment_a"] < 0.7  # the good gauges hold more rain than the satellite
    for reason in observation.skipped.values():
        assert f"1 {reason}" in adjusted.attrs["gauge_adjustment_skipped"]

    only_bad = gauges.drop_sel(station=[f"good{i}" for i in range(5)])
    adjusted = adjust_precipitation_rate(rate, only_bad, window=WINDOW)
    assert adjusted.attrs["gauge_adjustment_status"].startswith("gated: no gauge update: no usable gauges (1 ")
    assert adjusted.attrs["gauge_adjustment_a"] == 1.0 and adjusted.attrs["gauge_adjustment_n_gauges"] == 0
    np.testing.assert_array_equal(adjusted.values, rate.values)

    dry = adjust_precipitation_rate(rate, gauges.assign(precipitation_mm=gauges["precipitation_mm"] * 0), window=WINDOW)
    assert re.search(r"no gauge update: 0 mm at \d gauge\(s\), less than", dry.attrs["gauge_adjustment_status"])
    clear_sky = adjust_precipitation_rate(satellite(np.zeros(AREA.shape), SLOTS[0]), gauges, window=WINDOW)
    assert clear_sky.attrs["gauge_adjustment_status"] == "gated: no gauge update: no satellite rain at the 5 " \
                                                         "usable gauge(s)"


def test_clear_errors(network):
    fields, gauges, _ = network
    rate = satellite(fields[0], SLOTS[0])
    no_area = rate.copy()
    del no_area.attrs["area"]
    with pytest.raises(ValueError, match="no 'area' attribute"):
        adjust_precipitation_rate(no_area, gauges, window=WINDOW)
    with pytest.raises(ValueError, match="no time overlap"):
        adjust_precipitation_rate(rate, gauges, time=SLOTS[0] + np.timedelta64(10, "D"), window=WINDOW)
    with pytest.raises(ValueError, match="no time overlap"):
        adjust_precipitation_rate(rate, gauges, time="2020-01-01T00:00", window=WINDOW)
    for window, words in (("-1h", "positive duration"), ("0s", "positive duration"), ("soon", "a duration"),
                          (3600, "bare number"), (None, "positive duration")):
        with pytest.raises(ValueError, match=words):
            adjust_precipitation_rate(rate, gauges, window=window)
    with pytest.raises(ValueError, match="not a multiple of the gauge interval"):
        adjust_precipitation_rate(rate, gauges, window="15min")


# The worker on real trollflow2 jobs -----------------------------------------------------------------------------

FORMATS = [{"format": "NETCDF4", "writer": "cf", "fname_pattern": "{areaname}_{productname}.nc",
            "encoding": {"time": {"units": EPOCH}}}]
ALPHA = 2.0  # satellite / gauge in the worker tests


def computed_job(path, out_dir):
    """A job of AGRI file ``path`` with the products computed on the native grid, to be written to ``out_dir``."""
    job = make_job(path, out_dir)
    job["product_list"]["product_list"]["gauge_adjusted_products"] = {
        "precipitation_rate_adjusted": {"productname": "precipitation_rate_adjusted", "formats": FORMATS}}
    with pytest.MonkeyPatch.context() as patch:
        patch.delenv("SATPY_PRENET_WEIGHTS", raising=False)
        for step in (check_agri_input, create_scene, load_composites, compute_products):
            step(job)
    return job


@pytest.fixture(scope="module")
def computed_jobs(recent_agri_files, tmp_path_factory):
    """Jobs of two consecutive FY-4A slots (oldest first) with the products computed on the native grid.

    The slots are fixed (06:15 and 06:30 UTC on 2026-07-15, conftest's ``recent_agri_files``), not the clock's: the
    tests below need rain at the gauges, and which slots rain is a property of the simulated day, not of the hour
    the suite runs at. ``test_worker_accepts_gauges_at_any_hour`` covers slots at other hours.
    """
    return [computed_job(recent_agri_files["FY-4A", slot], tmp_path_factory.mktemp("products")) for slot in (1, 0)]


def fresh(job):
    """A copy of a computed job that a worker may change."""
    return {**job, "scene": job["scene"].copy(), "product_list": copy.deepcopy(job["product_list"])}


def write_slot_gauges(job, folder, alpha=ALPHA):
    """Gauges at the 15 wettest and 10 dry pixels of the job's rate, alpha times drier than the satellite.

    Two 15-minute intervals end at and before the slot; the file is named after the slot.
    """
    rate = job["scene"]["precipitation_rate"]
    values = rate.values
    order = np.argsort(np.nan_to_num(values, nan=-1).ravel())
    dry = np.flatnonzero(values.ravel() == 0)[::997][:10]
    rows, cols = np.unravel_index(np.concatenate([order[-15:], dry]), values.shape)
    lon, lat = rate.attrs["area"].get_lonlat_from_array_coordinates(cols, rows)
    start = pd.Timestamp(rate.attrs["start_time"])
    rng = np.random.default_rng(int(start.timestamp()))
    table = [{"station": f"S{i:02d}", "lon": lon[i], "lat": lat[i], "time": f"{start - pd.Timedelta(minutes=m)}Z",
              "mm": values[r, c] / alpha * 0.25 * rng.lognormal(0, 0.05)}
             for m in (15, 0) for i, (r, c) in enumerate(zip(rows, cols, strict=True))]
    path = Path(folder) / f"gauges_{start:%Y%m%d%H%M}.csv"
    pd.DataFrame(table).to_csv(path, index=False)
    return path


def test_worker_adds_the_product_and_carries_the_state_between_slots(computed_jobs, tmp_path):
    for job in computed_jobs:
        write_slot_gauges(job, tmp_path)
    pattern, state_file = str(tmp_path / "gauges_{start_time:%Y%m%d%H%M}.csv"), tmp_path / "state" / "ekf.json"
    first, second = fresh(computed_jobs[0]), fresh(computed_jobs[1])

    adjust_with_gauges(first, gauges=pattern, state_file=str(state_file), window="30min")
    product = first["scene"]["precipitation_rate_adjusted"]
    assert product.attrs["gauge_adjustment_status"] == "accepted"
    assert product.attrs["gauge_adjustment_n_gauges"] == 25
    assert 1.4 < product.attrs["gauge_adjustment_a"] < ALPHA * 1.1
    after_first = json.loads(state_file.read_text())
    assert after_first == json.loads(product.attrs["gauge_adjustment_state"])
    assert after_first["time"] == pd.Timestamp(product.attrs["start_time"]).timestamp()

    adjust_with_gauges(second, gauges=pattern, state_file=str(state_file), window="30min")
    product = second["scene"]["precipitation_rate_adjusted"]
    after_second = json.loads(state_file.read_text())
    assert after_second["counters"] == {"steps": 2, "accepted": 2, "rejected": 0, "gated": 0}
    expected = adjust_precipitation_rate(second["scene"]["precipitation_rate"], read_gauges(
        tmp_path / f"gauges_{pd.Timestamp(product.attrs['start_time']):%Y%m%d%H%M}.csv"), after_first, "30min")
    assert after_second == json.loads(expected.attrs["gauge_adjustment_state"])

    resample(second)
    save_datasets_staged(second)
    out = Path(second["product_list"]["product_list"]["output_dir"])
    with xr.open_dataset(out / "None_precipitation_rate_adjusted.nc") as written:
        variable = written["precipitation_rate_adjusted"]
        assert variable.attrs["gauge_adjustment_status"] == "accepted"
        assert json.loads(variable.attrs["gauge_adjustment_state"]) == after_second
        np.testing.assert_allclose(variable.squeeze("time").values, product.values, rtol=1e-6)


@pytest.mark.parametrize("hour", [0, 6, 12, 18])
def test_worker_accepts_gauges_at_any_hour(world, tmp_path, hour):
    """The worker adjusts slots spread over the simulated day (2026-07-15, HH:30 UTC), not only the tests' slots."""
    start = dt.datetime(2026, 7, 15, hour, 30)
    path = write_agri_l1(world.scene(start, "FY-4A", CHINA_REGIONS["FY-4A"]), tmp_path / "agri")
    job = computed_job(path, tmp_path / "products")
    pattern = str(tmp_path / "gauges_{start_time:%Y%m%d%H%M}.csv")
    write_slot_gauges(job, tmp_path)
    adjust_with_gauges(job, gauges=pattern, state_file=str(tmp_path / "ekf.json"), window="30min")
    product = job["scene"]["precipitation_rate_adjusted"]
    assert product.attrs["gauge_adjustment_status"] == "accepted"
    assert product.attrs["gauge_adjustment_n_gauges"] == 25
    assert 1.4 < product.attrs["gauge_adjustment_a"] < ALPHA * 1.1


def bad_records(good, start):
    """Six 15-minute intervals in which every station is bad: a negative value, a gap, or a stuck reading."""
    positions = good.groupby("station")[["lon", "lat"]].first()
    rows = []
    for i, (station, (lon, lat)) in enumerate(positions.iterrows()):
        kind = ("negative", "gap", "stuck")[i % 3]
        for k, minutes in enumerate((75, 60, 45, 30, 15, 0)):
            mm = 0.7 if kind == "stuck" else 0.2 + 0.01 * k + 0.001 * i
            if kind == "negative" and minutes == 0:
                mm = -1.0
            if kind != "gap" or minutes != 15:
                rows.append({"station": station, "lon": lon, "lat": lat,
                             "time": f"{start - pd.Timedelta(minutes=minutes)}Z", "mm": mm})
    return pd.DataFrame(rows)


@pytest.mark.parametrize("problem", ["missing", "corrupt", "outside", "no overlap", "gaps, negative and stuck"])
def test_worker_survives_bad_gauge_files(computed_jobs, tmp_path, caplog, problem):
    job = fresh(computed_jobs[0])
    start = pd.Timestamp(job["scene"]["precipitation_rate"].attrs["start_time"])
    path = write_slot_gauges(job, tmp_path)
    good = pd.read_csv(path)
    if problem == "missing":
        path.unlink()
    elif problem == "corrupt":
        path.write_bytes(np.random.default_rng(1).integers(0, 256, 3000, dtype=np.uint8).tobytes())
    elif problem == "outside":
        good.assign(lon=good["lon"] + 60).to_csv(path, index=False)
    elif problem == "no overlap":
        good.assign(time=[f"{pd.Timestamp(t) - pd.Timedelta(days=3)}" for t in good["time"]]).to_csv(path, index=False)
    else:
        bad_records(good, start).to_csv(path, index=False)
    state_file = tmp_path / "ekf.json"
    with caplog.at_level(logging.WARNING):
        adjust_with_gauges(job, gauges=str(tmp_path / "gauges_{start_time:%Y%m%d%H%M}.csv"),
                           state_file=str(state_file), window="30min")
    product = job["scene"]["precipitation_rate_adjusted"]
    status = product.attrs["gauge_adjustment_status"]
    assert status.startswith("gated: no gauge update: "), status
    assert any(str(path) in record.getMessage() and record.levelno == logging.WARNING for record in caplog.records)
    if problem == "gaps, negative and stuck":
        for reason in ("gap in the window", "negative value", "stuck value"):
            assert reason in status
    np.testing.assert_array_equal(product.values, job["scene"]["precipitation_rate"].values)  # fresh filter: a = 1
    saved = json.loads(state_file.read_text())
    assert saved["counters"]["gated"] == 1 and saved["time"] == start.timestamp()
    assert "precipitation_rate_adjusted" in job["product_list"]["product_list"]["areas"]["None"]["products"]


def test_worker_sets_a_corrupt_state_aside_and_starts_afresh(computed_jobs, tmp_path, caplog):
    job = fresh(computed_jobs[0])
    write_slot_gauges(job, tmp_path)
    state_file = tmp_path / "ekf.json"
    state_file.write_text('{"version": 1, "x": [0.3')
    with caplog.at_level(logging.WARNING):
        adjust_with_gauges(job, gauges=str(tmp_path / "gauges_{start_time:%Y%m%d%H%M}.csv"),
                           state_file=str(state_file), window="30min")
    assert (tmp_path / "ekf.json.corrupt").read_text() == '{"version": 1, "x": [0.3'
    assert any(str(state_file) in record.getMessage() and "Corrupt" in record.getMessage()
               for record in caplog.records)
    saved = json.loads(state_file.read_text())
    assert saved["counters"] == {"steps": 1, "accepted": 1, "rejected": 0, "gated": 0}
    assert job["scene"]["precipitation_rate_adjusted"].attrs["gauge_adjustment_status"] == "accepted"


def test_worker_skips_a_product_it_cannot_place_and_keeps_the_others(computed_jobs, tmp_path, caplog):
    job = fresh(computed_jobs[0])
    write_slot_gauges(job, tmp_path)
    scene = job["scene"]
    placeless = scene["precipitation_rate"].copy()  # the fixture's array is shared with the other tests
    del placeless.attrs["area"]
    scene["precipitation_rate"] = placeless
    state_file = tmp_path / "{product}.json"
    with caplog.at_level(logging.ERROR):
        adjust_with_gauges(job, gauges=str(tmp_path / "gauges_{start_time:%Y%m%d%H%M}.csv"),
                           state_file=str(state_file), window="30min",
                           products=("precipitation_rate", "precipitation_probability"))
    assert "precipitation_rate_adjusted" not in scene and "precipitation_probability_adjusted" in scene
    assert any("No gauge adjustment of precipitation_rate" in record.getMessage() for record in caplog.records)
    assert not (tmp_path / "precipitation_rate.json").exists()


class TagLoader(yaml.SafeLoader):
    """YAML loader that reads ``!!python/...`` tags as their text and builds nothing (no publisher is bound)."""


TagLoader.add_multi_constructor("tag:yaml.org,2002:python/", lambda loader, suffix, node: suffix)


def test_product_list_block_is_ready_to_uncomment():
    text = (Path(__file__).parents[1] / "etc" / "trollflow2" / "agri_precipitation.yaml").read_text()
    active = yaml.load(text, Loader=TagLoader)
    assert "gauge_adjusted_products" not in active["product_list"]
    assert all("ground" not in worker["fun"] for worker in active["workers"])

    lines, inside = [], False
    for line in text.splitlines():
        if ">>> gauge adjustment" in line or "<<< gauge adjustment" in line:
            inside = ">>>" in line
            continue
        lines.append(re.sub(r"^(\s*)# ", r"\1", line) if inside else line)
    enabled = yaml.load("\n".join(lines), Loader=TagLoader)
    names = [worker["fun"].rsplit(".", 1)[-1] for worker in enabled["workers"]]
    assert names.index("compute_products") < names.index("adjust_with_gauges") < names.index("resample")
    worker = enabled["workers"][names.index("adjust_with_gauges")]
    assert worker["fun"] == f"name:{adjust_with_gauges.__module__}.{adjust_with_gauges.__name__}"
    assert {"gauges", "state_file"} <= set(worker)
    entry = enabled["product_list"]["gauge_adjusted_products"]["precipitation_rate_adjusted"]
    assert entry["formats"][0]["writer"] == "cf" and "precipitation_rate_adjusted" in entry["formats"][0]["encoding"]
