# SPDX-License-Identifier: GPL-3.0-or-later
"""``satpy-prenet ground``: simulate, fit-zr (state resumed), adjust (state carried between slots), validate."""

import datetime as dt
import json
import os
import stat

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from click.testing import CliRunner
from pyresample.geometry import AreaDefinition
from satpy import Scene
from satpy.cf.coords import EPOCH

from satpy_prenet.cli import main
from satpy_prenet.ground.ekf import ZREKF
from satpy_prenet.ground.product_files import read_rate
from satpy_prenet.ground.spectra_training import load_model

SLOT = dt.datetime(2026, 7, 15, 6, 0)
BIAS = 1.6


def _run(*args):
    result = CliRunner().invoke(main, ["ground", *map(str, args)])
    return result


@pytest.fixture(scope="module")
def sites(tmp_path_factory):
    out = tmp_path_factory.mktemp("sites")
    result = _run("simulate", "--out", out, "--days", 2, "--seed", 1, "--seed", 2, "--start", "2026-06-01T00:00")
    assert result.exit_code == 0, result.output
    return out


def test_simulate_writes_records_and_gauges(sites):
    assert sorted(p.name for p in sites.iterdir()) == ["gauges-1.csv", "gauges-2.csv", "site-1.nc", "site-2.nc"]
    with xr.open_dataset(sites / "site-1.nc") as site:
        assert site.attrs["simulated"] == 1 and site.sizes["time"] == 2 * 1440
        tips = int(site["gauge_tips"].sum())
    assert pd.read_csv(sites / "gauges-1.csv")["tips"].sum() == tips


def test_fit_zr_prints_every_method_and_resumes_its_state(sites, tmp_path):
    state = tmp_path / "ekf.json"
    first = _run("fit-zr", sites / "site-1.nc", "--state", state)
    assert first.exit_code == 0, first.output
    for name in ("marshall_palmer", "beijing_plain", "dynamic_ls", "ekf", "ekf_fixed_b", "ekf (from state)"):
        assert name in first.output
    saved = ZREKF.load(state)
    assert saved.counters["steps"] == 2 * 48
    later = tmp_path / "later"
    assert _run("simulate", "--out", later, "--days", 1, "--seed", 3, "--start", "2026-06-03T00:00").exit_code == 0
    second = _run("fit-zr", later / "site-3.nc", "--state", state)
    assert second.exit_code == 0, second.output
    assert ZREKF.load(state).counters["steps"] == 2 * 48 + 48
    again = _run("fit-zr", sites / "site-1.nc", "--state", state)
    assert again.exit_code != 0 and "already seen" in again.output


def test_fit_zr_names_a_bad_record(tmp_path):
    bad = tmp_path / "site.nc"
    xr.Dataset({"x": ("t", [1.0])}).to_netcdf(bad)
    result = _run("fit-zr", bad)
    assert result.exit_code != 0 and str(bad) in result.output and "lacks" in result.output


def test_train_dsd_trains_saves_and_scores_the_networks(tmp_path):
    assert _run("simulate", "--out", tmp_path, "--days", 5, "--seed", 5).exit_code == 0
    result = _run("train-dsd", tmp_path / "site-5.nc", "--out", tmp_path / "nets", "--preset", "small",
                  "--kind", "lstm", "--kind", "lstm_attention_lstm")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "nets").iterdir()) == ["lstm.safetensors",
                                                                     "lstm_attention_lstm.safetensors"]
    table = {line.split()[0]: line.split()[1:] for line in result.output.splitlines()
             if line.split() and line.split()[0] in ("integral", "lstm", "lstm_attention_lstm")}
    assert set(table) == {"integral", "lstm", "lstm_attention_lstm"}
    _, metadata = load_model(tmp_path / "nets" / "lstm.safetensors")
    assert metadata["trained_on"] == "simulated" and metadata["provenance"]["record"] == "site-5.nc"
    assert metadata["provenance"]["test_scores"]["rmse"] == pytest.approx(float(table["lstm"][0]), abs=1e-4)


def test_train_dsd_names_a_record_without_spectra(tmp_path):
    record = tmp_path / "site.nc"
    xr.Dataset({"rain_rate": ("time", [1.0])}, attrs={"simulated": 1}).to_netcdf(record)
    result = _run("train-dsd", record, "--out", tmp_path / "nets")
    assert result.exit_code != 0 and str(record) in result.output and "drop_spectrum" in result.output


def _product(path, scale, time_axis=False):
    """A CF product as the chain writes it (satpy's CF writer, geostationary grid mapping, no lon/lat).

    With ``time_axis``, on a time axis of one scan, as `satpy-prenet retrieve` writes it.
    """
    area = AreaDefinition("geos_test", "test", "geos_test",
                          {"proj": "geos", "h": 35786000, "lon_0": 104.7, "a": 6378140, "rf": 298.257223563},
                          64, 64, (-400_000, 2_400_000, -144_000, 2_656_000))
    x = np.linspace(0, 1, 64)
    truth = 8.0 * np.outer(np.sin(np.pi * x) ** 2, np.cos(np.pi * x / 2) ** 2)
    x_coords, y_coords = area.get_proj_vectors()
    rate = xr.DataArray((scale * truth).astype(np.float32), dims=("y", "x"), coords={"y": y_coords, "x": x_coords},
                        attrs={"area": area, "start_time": SLOT, "end_time": SLOT + dt.timedelta(minutes=4),
                               "units": "mm h-1", "name": "precipitation_rate", "platform_name": "FY-4A"})
    scene = Scene()
    scene["precipitation_rate"] = rate.assign_coords(time=np.datetime64(SLOT, "ns")) if time_axis else rate
    scene.save_datasets(writer="cf", filename=str(path), include_lonlats=False,
                        encoding={"time": {"units": EPOCH}} if time_axis else {})
    return area, truth


def _gauges(path, area, truth, stations=12):
    lons, lats = area.get_lonlats()
    rng = np.random.default_rng(1)
    rows = []
    for number, (i, j) in enumerate(zip(rng.integers(8, 56, stations), rng.integers(8, 56, stations), strict=True)):
        for minute in range(0, 60, 5):
            mm = truth[i, j] / 12 * rng.uniform(0.9, 1.1)
            rows.append({"station": f"G{number}", "lon": lons[i, j], "lat": lats[i, j], "mm": mm,
                         "time": (SLOT - dt.timedelta(minutes=55 - minute)).isoformat() + "Z"})
    rows.append({"station": "FAR", "lon": -60.0, "lat": 10.0, "mm": 1.0, "time": SLOT.isoformat() + "Z"})
    pd.DataFrame(rows).to_csv(path, index=False)


@pytest.mark.parametrize("time_axis", [False, True])
def test_adjust_and_validate_a_product(tmp_path, time_axis):
    product = tmp_path / "product.nc"
    area, truth = _product(product, BIAS, time_axis)
    gauges = tmp_path / "gauges.csv"
    _gauges(gauges, area, truth)
    state = tmp_path / "state" / "adjust.json"
    result = _run("adjust", product, "--gauges", gauges, "--state", state, "--out", tmp_path / "adjusted.nc")
    assert result.exit_code == 0, result.output
    assert "accepted" in result.output and "1 outside the image" in result.output
    adjusted = read_rate(tmp_path / "adjusted.nc", "precipitation_rate_adjusted")
    a = adjusted.attrs["gauge_adjustment_a"]
    assert abs(np.log(a / BIAS)) < abs(np.log(BIAS)) / 2  # one slot moves the bias factor most of the way
    assert json.loads(adjusted.attrs["gauge_adjustment_state"])["x"][0] == pytest.approx(np.log(a))
    assert ZREKF.load(state).a == pytest.approx(a)
    np.testing.assert_allclose(adjusted.values, read_rate(product).values / a, rtol=1e-5)
    with xr.open_dataset(tmp_path / "adjusted.nc") as written:
        assert written["precipitation_rate_adjusted"].dims == written["precipitation_rate"].dims
        assert ("time" in written["precipitation_rate"].dims) == time_axis

    onto_itself = _run("adjust", product, "--gauges", gauges, "--state", state, "--out", product)
    assert onto_itself.exit_code != 0 and "must not overwrite" in onto_itself.output

    scores = _run("validate", product, tmp_path / "adjusted.nc", "--gauges", gauges)
    assert scores.exit_code == 0, scores.output
    rmse = {line.split()[1]: float(line.split()[2]) for line in scores.output.splitlines()
            if line.startswith("adjusted.nc")}
    assert rmse["precipitation_rate_adjusted"] < 0.5 * rmse["precipitation_rate"]


@pytest.fixture(scope="module")
def slot(tmp_path_factory):
    """A product of the slot and its gauge file (12 stations on the image, one off it)."""
    folder = tmp_path_factory.mktemp("slot")
    area, truth = _product(folder / "product.nc", BIAS)
    _gauges(folder / "gauges.csv", area, truth)
    return folder / "product.nc", folder / "gauges.csv"


def test_adjust_without_usable_gauges_still_writes_the_product(slot, tmp_path):
    product, _ = slot
    far = tmp_path / "far.csv"
    pd.DataFrame([{"station": station, "lon": lon, "lat": 10.0, "mm": 1.0, "time": f"{time.isoformat()}Z"}
                  for station, lon in (("FAR", -60.0), ("FARTHER", -70.0))
                  for time in (SLOT - dt.timedelta(minutes=5), SLOT)]).to_csv(far, index=False)
    state = tmp_path / "adjust.json"
    result = _run("adjust", product, "--gauges", far, "--state", state, "--out", tmp_path / "adjusted.nc")
    assert result.exit_code == 0, result.output
    assert "no gauge update" in result.output and "2 outside the image" in result.output
    assert read_rate(tmp_path / "adjusted.nc", "precipitation_rate_adjusted").attrs["gauge_adjustment_a"] == 1.0
    assert ZREKF.load(state).counters["steps"] == 1
    state.write_text("{not json")
    broken = _run("adjust", product, "--gauges", far, "--state", state, "--out", tmp_path / "again.nc")
    assert broken.exit_code != 0 and str(state) in broken.output and not (tmp_path / "again.nc").exists()


@pytest.mark.parametrize("saved", [True, False])
@pytest.mark.parametrize("problem", ["mistyped", "no columns"])
def test_adjust_with_an_unreadable_gauge_file_changes_nothing(slot, tmp_path, problem, saved):
    product, _ = slot
    gauges = tmp_path / "gauges_typo.csv"
    if problem == "no columns":
        gauges.write_text("not,a,gauge,file\n1,2,3,4\n")
    state = tmp_path / "state" / "adjust.json"
    if saved:
        ZREKF().save(state)
    before = sorted(tmp_path.rglob("*"))
    content = state.read_bytes() if saved else None
    result = _run("adjust", product, "--gauges", gauges, "--state", state, "--out", tmp_path / "adjusted.nc")
    assert result.exit_code != 0
    assert result.output.startswith(f"Error: {gauges}: ") and len(result.output.splitlines()) == 1, result.output
    assert ("gauge file not found" if problem == "mistyped" else "missing required columns") in result.output
    assert sorted(tmp_path.rglob("*")) == before  # no product, no state created, no partial file left
    assert (state.read_bytes() if saved else None) == content


def _used(path):
    return read_rate(path, "precipitation_rate_adjusted").attrs["gauge_adjustment_n_gauges"]


def test_malformed_gauge_lines_are_named_and_the_other_stations_used(slot, tmp_path):
    product, clean = slot
    lines = clean.read_text().splitlines()
    lines[2:2] = ["G0,104.0,30.0"]
    lines[7:7] = ["G1,104.0,30.0,1.0,yesterday"]
    messy = tmp_path / "messy.csv"
    messy.write_text("\n".join(lines) + "\n")
    named = [f"{messy}:3: 3 fields, expected 5", f"{messy}:8: time 'yesterday' is not an ISO 8601 time"]
    for path, out in ((clean, "clean.nc"), (messy, "messy.nc")):
        result = _run("adjust", product, "--gauges", path, "--state", tmp_path / f"{out}.json", "--out", tmp_path / out)
        assert result.exit_code == 0, result.output
        assert all((line in result.output) == (path == messy) for line in named), result.output
    assert _used(tmp_path / "messy.nc") == _used(tmp_path / "clean.nc") > 0
    scores = _run("validate", product, "--gauges", messy)
    assert scores.exit_code == 0 and all(line in scores.output for line in named), scores.output


def test_a_gauge_file_without_a_usable_line_is_an_error(slot, tmp_path):
    product, _ = slot
    gauges = tmp_path / "gauges.csv"
    gauges.write_text("station,lon,lat,mm,time\nG0,104.0,30.0\nG1,east,30.0,1.0,2026-07-15T06:00Z\n")
    for command in (["adjust", product, "--state", tmp_path / "s.json", "--out", tmp_path / "out.nc"],
                    ["validate", product]):
        result = _run(*command, "--gauges", gauges)
        assert result.exit_code != 0 and f"{gauges}: no usable gauge record" in result.output, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["gauges.csv"]


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664)])
def test_adjust_writes_its_files_with_the_umask_permissions(slot, tmp_path, umask, mode):
    product, gauges = slot
    state, out = tmp_path / "adjust.json", tmp_path / "adjusted.nc"
    previous = os.umask(umask)
    try:
        result = _run("adjust", product, "--gauges", gauges, "--state", state, "--out", out)
    finally:
        os.umask(previous)
    assert result.exit_code == 0, result.output
    assert (stat.S_IMODE(out.stat().st_mode), stat.S_IMODE(state.stat().st_mode)) == (mode, mode)
