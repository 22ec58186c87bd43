# SPDX-License-Identifier: GPL-3.0-or-later
import logging

import numpy as np
import pandas as pd
import pytest
import xarray as xr

from satpy_prenet.ground import gauges as g

TIMES = pd.date_range("2024-06-01T00:10", periods=6, freq="10min")


def _table(**overrides):
    """Two stations x six 10-min intervals of mm, in long format."""
    rows = []
    for name, lon, lat, values in (("A", 116.0, 40.0, [0.0, 0.2, 0.4, 0.0, 1.0, 0.2]),
                                   ("B", 117.5, 39.5, [0.1, 0.0, 0.0, 0.3, 0.0, 0.0])):
        for time, value in zip(TIMES, values, strict=True):
            rows.append({"station": name, "lon": lon, "lat": lat, "time": time.strftime("%Y-%m-%dT%H:%M:%SZ"),
                         "mm": value})
    table = pd.DataFrame(rows)
    for key, value in overrides.items():
        table[key] = value
    return table


def _csv(tmp_path, table, name="g.csv"):
    path = tmp_path / name
    table.to_csv(path, index=False)
    return path


def _flags(ds, station, bit):
    return (ds["flag"].sel(station=station).to_numpy() & bit) != 0


@pytest.mark.parametrize("bucket", [0.1, 0.2])
def test_tips_depth_round_trip_without_bias(bucket):
    rng = np.random.default_rng(0)
    increments = rng.gamma(0.3, 0.5, size=5000)
    cumulative = np.cumsum(increments)
    tips = g.tips_from_depth(cumulative, bucket)
    assert tips.dtype.kind == "i" and (tips >= 0).all()
    total = g.depth_from_tips(tips, bucket).sum()
    assert cumulative[-1] - bucket < total <= cumulative[-1] + 1e-9
    # Per-window rounding would accumulate an error of order 0.5 bucket per wet window.
    assert np.cumsum(g.depth_from_tips(tips, bucket)) == pytest.approx(cumulative, abs=bucket)


def test_tips_exact_multiples_are_counted():
    assert g.tips_from_depth([0.1, 0.3, 0.3, 0.6], 0.1).tolist() == [1, 2, 0, 3]


@pytest.mark.parametrize("bucket", [0.0, -0.2, np.nan])
def test_bad_bucket_rejected(bucket):
    with pytest.raises(ValueError, match="bucket_mm"):
        g.depth_from_tips([1, 2], bucket)
    with pytest.raises(ValueError, match="bucket_mm"):
        g.tips_from_depth([0.1, 0.2], bucket)


def test_decreasing_cumulative_depth_rejected():
    with pytest.raises(ValueError, match="non-decreasing"):
        g.tips_from_depth([0.5, 0.4], 0.1)


def test_csv_layout_and_clean_data_unflagged(tmp_path):
    ds = g.read_gauges(_csv(tmp_path, _table()))
    assert ds["precipitation_mm"].dims == ("station", "time")
    assert ds["station"].to_numpy().tolist() == ["A", "B"]
    assert ds["lon"].to_numpy().tolist() == [116.0, 117.5]
    assert ds["time"].to_numpy()[0] == np.datetime64("2024-06-01T00:10")
    assert ds.attrs["interval_s"] == 600.0
    assert ds["flag"].dtype == np.uint8 and (ds["flag"] == 0).all()
    assert ds["precipitation_mm"].sel(station="A").to_numpy() == pytest.approx([0.0, 0.2, 0.4, 0.0, 1.0, 0.2])


def test_csv_tips_with_bucket_column_and_argument(tmp_path):
    table = _table()
    table["tips"] = np.round(table.pop("mm") / 0.1).astype(int)
    from_argument = g.read_gauges(_csv(tmp_path, table, "a.csv"), bucket_mm=0.1)
    table["bucket_mm"] = 0.1
    from_column = g.read_gauges(_csv(tmp_path, table, "c.csv"))
    reference = g.read_gauges(_csv(tmp_path, _table(), "mm.csv"))
    xr.testing.assert_allclose(from_argument, reference)
    xr.testing.assert_allclose(from_column, reference)


def test_netcdf_grid_and_flat_table_match_csv(tmp_path):
    reference = g.read_gauges(_csv(tmp_path, _table()))
    grid = xr.Dataset({"mm": reference["precipitation_mm"]}).reset_coords()
    grid.to_netcdf(tmp_path / "grid.nc")
    flat = _table()
    flat["time"] = pd.to_datetime(flat["time"]).dt.tz_convert(None)
    xr.Dataset.from_dataframe(flat).to_netcdf(tmp_path / "flat.nc")
    for name in ("grid.nc", "flat.nc"):
        xr.testing.assert_identical(g.read_gauges(tmp_path / name), reference)


def test_gap_inserted_and_flagged(tmp_path):
    table = _table().drop(index=2)
    ds = g.read_gauges(_csv(tmp_path, table))
    assert ds.sizes["time"] == 6
    assert np.isnan(ds["precipitation_mm"].sel(station="A").to_numpy()[2])
    assert _flags(ds, "A", g.GAP).tolist() == [False, False, True, False, False, False]
    assert not _flags(ds, "B", g.GAP).any()


def test_negative_value_flagged_and_removed(tmp_path):
    table = _table()
    table.loc[1, "mm"] = -0.5
    ds = g.read_gauges(_csv(tmp_path, table))
    assert np.isnan(ds["precipitation_mm"].sel(station="A").to_numpy()[1])
    assert ds["flag"].sel(station="A").to_numpy()[1] == g.NEGATIVE


def test_stuck_values_flagged_by_run_length(tmp_path):
    table = _table()
    table.loc[1:4, "mm"] = 0.7  # station A: four equal non-zero values
    path = _csv(tmp_path, table)
    assert _flags(g.read_gauges(path, stuck_intervals=4), "A", g.STUCK).tolist() == [False, True, True, True, True,
                                                                                       False]
    assert not _flags(g.read_gauges(path, stuck_intervals=5), "A", g.STUCK).any()
    assert not _flags(g.read_gauges(path, stuck_intervals=2), "B", g.STUCK).any()  # repeated zeros are fine


def test_implausible_rate_flagged(tmp_path):
    table = _table()
    table.loc[7, "mm"] = 60.0  # 60 mm in 10 min = 360 mm/h
    ds = g.read_gauges(_csv(tmp_path, table))
    assert _flags(ds, "B", g.RATE).tolist() == [False, True, False, False, False, False]
    assert not _flags(g.read_gauges(_csv(tmp_path, table), max_rate_mm_h=400.0), "B", g.RATE).any()


def test_duplicate_timestamp_keeps_first(tmp_path):
    table = _table()
    extra = table.iloc[[3]].assign(mm=9.0)
    ds = g.read_gauges(_csv(tmp_path, pd.concat([table, extra])))
    assert ds["precipitation_mm"].sel(station="A").to_numpy()[3] == 0.0
    assert _flags(ds, "A", g.DUPLICATE).tolist() == [False, False, False, True, False, False]
    assert not _flags(ds, "B", g.DUPLICATE).any()


@pytest.mark.parametrize("lon, lat", [(np.nan, 40.0), (200.0, 40.0), (116.0, -91.0)])
def test_bad_location_flags_whole_station(tmp_path, lon, lat):
    table = _table()
    table.loc[table["station"] == "B", ["lon", "lat"]] = [lon, lat]
    ds = g.read_gauges(_csv(tmp_path, table))
    assert _flags(ds, "B", g.LOCATION).all()
    assert not _flags(ds, "A", g.LOCATION).any()


def test_flag_outside_box(tmp_path):
    ds = g.read_gauges(_csv(tmp_path, _table()))
    out = g.flag_outside(ds, 115.0, 117.0, 39.0, 41.0)
    assert not _flags(out, "A", g.OUTSIDE).any()
    assert _flags(out, "B", g.OUTSIDE).all()
    assert (ds["flag"] == 0).all()  # input untouched


def test_missing_file_named(tmp_path):
    path = tmp_path / "nope.csv"
    with pytest.raises(FileNotFoundError, match="nope.csv"):
        g.read_gauges(path)


@pytest.mark.parametrize("name, content", [("bad.nc", b"not a netcdf file"), ("bad.csv", b"a,b\n1,2,3,4\n\"x")])
def test_corrupt_file_named(tmp_path, name, content):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ValueError, match=name):
        g.read_gauges(path)


@pytest.mark.parametrize("change, message", [
    (lambda t: t.drop(columns="lat"), "missing required columns"),
    (lambda t: t.assign(time="yesterday"), "no usable gauge record"),
    (lambda t: t.assign(tips=1), "exactly one"),
    (lambda t: t.drop(columns="mm"), "exactly one"),
    (lambda t: t.drop(columns="mm").assign(tips=1), "bucket_mm"),
])
def test_content_errors_name_file(tmp_path, change, message):
    path = _csv(tmp_path, change(_table()), "station_file.csv")
    with pytest.raises(ValueError, match=message) as err:
        g.read_gauges(path)
    assert "station_file.csv" in str(err.value)


def test_malformed_csv_lines_are_skipped_one_by_one_and_named(tmp_path, caplog):
    clean = _csv(tmp_path, _table(), "clean.csv")
    lines = clean.read_text().splitlines()
    lines[3:3] = ["A,116.0,40.0", "B,east,39.5,2024-06-01T00:30:00Z,0.0", "", ",116.0,40.0,2024-06-01T00:30:00Z,1"]
    lines[9:9] = ["A,116.0,40.0,yesterday,0.2,extra", "B,117.5,39.5,soon,x"]
    path = tmp_path / "messy.csv"
    path.write_text("\n".join(lines) + "\n")
    with caplog.at_level(logging.WARNING, logger="satpy_prenet.ground.gauges"):
        ds = g.read_gauges(path)
    expected = [f"{path}:4: 3 fields, expected 5", f"{path}:5: lon 'east' is not a number", f"{path}:7: no station",
                f"{path}:10: 6 fields, expected 5",
                f"{path}:11: time 'soon' is not an ISO 8601 time, mm 'x' is not a number"]
    assert ds.attrs.pop("skipped_lines") == expected
    assert [record.getMessage() for record in caplog.records] == [f"Malformed gauge line skipped: {line}"
                                                                  for line in expected]
    reference = g.read_gauges(clean)
    assert reference.attrs.pop("skipped_lines") == []
    xr.testing.assert_identical(ds, reference)


def test_missing_values_are_not_malformed(tmp_path):
    table = _table()
    table["mm"] = table["mm"].astype(object)
    table.loc[1, "mm"] = "NA"
    ds = g.read_gauges(_csv(tmp_path, table))
    assert ds.attrs["skipped_lines"] == []
    assert _flags(ds, "A", g.GAP).tolist() == [False, True, False, False, False, False]


@pytest.mark.parametrize("body, message", [("", "no usable gauge record$"),
                                           ("A,116.0,40.0\nB,x,39.5,2024-06-01T00:10:00Z,0.1\n",
                                            r"no usable gauge record \(2 malformed lines, the first line 2: 3 fields")])
def test_csv_without_a_usable_line_is_an_error_naming_the_file(tmp_path, body, message):
    path = tmp_path / "empty_gauges.csv"
    path.write_text("station,lon,lat,time,mm\n" + body)
    with pytest.raises(ValueError, match=message) as err:
        g.read_gauges(path)
    assert str(err.value).startswith(f"{path}: ")
