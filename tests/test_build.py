# SPDX-License-Identifier: GPL-3.0-or-later
"""Tests of the collocation functions and of the training-dataset builder (Swath-MPR, Full-IPR)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil

import h5py
import numpy as np
import pytest
import xarray as xr
import zarr
from gpm_copies import DPR_TEMPLATE, GMI_TEMPLATE, write_dpr, write_gmi
from pyresample.geometry import AreaDefinition

from satpy_prenet.data import collocation as col
from satpy_prenet.data import stores
from satpy_prenet.data.gpm import read_dpr_2a, read_gmi_1c
from satpy_prenet.training.builder import BuildConfig, BuildError, Sources, build_datasets, discover_sources

SEED = 11
#: FY-4B window over the South China Sea / Philippines (about 126-136 E, 12-21 N).
WINDOW = (800, 1056, 1200, 1456)
T0 = dt.datetime(2023, 7, 1, 6, 0)
CONFIG = BuildConfig(swath_tile_scans=128, disc_tile_size=128, min_rain_fraction=0.0,
                     validation_from="2023-07-01T06:10:00", test_from="2023-07-01T07:00:00")


# ------------------------------------------------------------------------------------------------ collocation


def _lonlat_area() -> AreaDefinition:
    """A 10 x 20 lat/lon area, 1 degree pixels, 10-30 E, 0-10 N."""
    return AreaDefinition("test", "test", "test", "EPSG:4326", 20, 10, (10.0, 0.0, 30.0, 10.0))


def test_agri_at_footprints_nearest_pixel():
    """The pixel containing the footprint is taken; off the area and NaN points give NaN."""
    area = _lonlat_area()
    ir = np.stack([np.arange(200, dtype=np.float32).reshape(10, 20), np.ones((10, 20), np.float32)])
    lon = np.array([[10.9, 29.9, 40.0, np.nan]])
    lat = np.array([[9.1, 0.1, 5.0, 5.0]])
    out = col.agri_at_footprints(ir, area, lon, lat)
    np.testing.assert_array_equal(out[0, 0, :2], [0.0, 199.0])
    assert np.isnan(out[:, 0, 2:]).all()


def test_agri_footprint_at_high_viewing_angle_is_kept():
    """Near the limb a 4 km AGRI pixel reaches far more than 6 km from its centre: a footprint in its corner is
    still sampled (it was blanked by a 6 km distance limit), while a point off the disc is not."""
    size = 4000.0
    area = AreaDefinition("disc", "disc", "disc", {"proj": "geos", "h": 35786000, "lon_0": 133.0}, 2748, 2748,
                          (-1374 * size, -1374 * size, 1374 * size, 1374 * size))
    row, column = 400, 2200  # far north-east (about 45 N, 170 W), high viewing angle
    x, y = area.get_proj_coords(data_slice=(row, column))
    corner_lon, corner_lat = area.get_lonlat_from_projection_coordinates(x + 0.45 * size, y + 0.45 * size)
    centre_lon, centre_lat = area.get_lonlat_from_projection_coordinates(x, y)
    distance = np.deg2rad(np.hypot((corner_lon - centre_lon) * np.cos(np.deg2rad(centre_lat)),
                                   corner_lat - centre_lat)) * 6371000
    assert distance > 6000
    rows, cols, valid = col.agri_indices(area, np.array([corner_lon.item(), 133.0 + 120]),
                                         np.array([corner_lat.item(), 0.0]))
    assert valid.tolist() == [True, False] and (rows[0], cols[0]) == (row, column)


def test_disc_offsets_of_a_window():
    """A regional AGRI area's first line and column on the 2748 x 2748 disc."""
    size = 4000.0
    area = AreaDefinition("w", "w", "w", {"proj": "geos", "h": 35786000, "lon_0": 133.0}, 256, 128,
                          ((1200 - 1374) * size, (1374 - 928) * size, (1456 - 1374) * size, (1374 - 800) * size))
    assert col.disc_offsets(area) == (800, 1200)


def test_swath_nearest_and_gmi_channels():
    """Each target takes its nearest source footprint within the radius; S1 and S2 are sampled separately."""
    source_lon, source_lat = np.meshgrid(np.arange(100.0, 101.0, 0.1), np.arange(10.0, 11.0, 0.1))
    values = np.stack([source_lon, source_lat], axis=-1).astype(np.float32)
    lon = np.array([[100.31, 100.79], [105.0, np.nan]])
    lat = np.array([[10.52, 10.11], [10.5, 10.5]])
    out = col.swath_nearest(source_lon, source_lat, values, lon, lat, radius_m=15_000)
    assert out.shape == (2, 2, 2)
    np.testing.assert_allclose(out[:, 0, 0], [100.3, 10.5], atol=1e-5)
    np.testing.assert_allclose(out[:, 0, 1], [100.8, 10.1], atol=1e-5)
    assert np.isnan(out[:, 1]).all()


def test_dpr_profiles_floor_and_missing():
    """Fill bins of valid footprints become the floor; missing footprints stay NaN; order is (bin, scan, ray)."""
    z = np.full((2, 3, 4), np.nan, np.float32)
    z[0, 1, 2] = 33.0
    dpr = xr.Dataset({"zFactorFinal": (("nscan", "nray", "nbin"), z)},
                     coords={"rain_type": (("nscan", "nray"), np.zeros((2, 3), np.int8)),
                             "Latitude": (("nscan", "nray"), [[1.0, 1.0, np.nan], [1.0, 1.0, 1.0]]),
                             "Longitude": (("nscan", "nray"), np.ones((2, 3))),
                             "time": ("nscan", np.array(["2023-07-01T06:00", "NaT"], dtype="datetime64[ns]"))})
    profile = col.dpr_profiles(dpr)
    assert profile.shape == (4, 2, 3)
    assert profile[2, 0, 1] == 33.0
    assert profile[0, 0, 0] == col.PR_NO_ECHO_DBZ
    assert np.isnan(profile[:, 0, 2]).all() and np.isnan(profile[:, 1]).all()


def test_dpr_profiles_of_a_real_granule():
    """Real cut granule: echoes kept, fill above the surface is the floor, bins below binRealSurface are NaN."""
    dpr = read_dpr_2a(DPR_TEMPLATE)
    profile = col.dpr_profiles(dpr)
    raw = dpr["zFactorFinal"].transpose("nbin", "nscan", "nray").values
    below = dpr["nbin"].values[:, None, None] > dpr["binRealSurface"].values[None]
    assert profile.shape == (176, 10, 10)
    assert below.any() and col.footprint_valid(dpr).all()
    assert np.isnan(profile[below]).all()
    assert np.isfinite(profile[~below]).all()
    echo = np.isfinite(raw) & ~below
    np.testing.assert_array_equal(profile[echo], raw[echo])
    assert (profile[~np.isfinite(raw) & ~below] == col.PR_NO_ECHO_DBZ).all()


def test_missing_radar_data_is_not_no_echo():
    """A footprint with missing rain type or a bad Ku qualityFlag is NaN, not the "no echo" floor."""
    dpr = read_dpr_2a(DPR_TEMPLATE)
    rain_type, quality = dpr["rain_type"].values.copy(), dpr["qualityFlag"].values.copy()
    rain_type[0, 0], quality[1, 1] = -1, 2
    dpr = dpr.assign(rain_type=(dpr["rain_type"].dims, rain_type), qualityFlag=(dpr["qualityFlag"].dims, quality))
    profile = col.dpr_profiles(dpr)
    assert np.isnan(profile[:, 0, 0]).all() and np.isnan(profile[:, 1, 1]).all()
    assert col.footprint_valid(dpr).sum() == 98


def test_gmi_at_real_footprints_keeps_fill():
    """The real GMI granule's Tc is fill in its first scans: sampling gives 13 NaN channels, no error."""
    gmi = read_gmi_1c(GMI_TEMPLATE)
    out = col.gmi_at_footprints(gmi, gmi["S1_Longitude"].values, gmi["S1_Latitude"].values)
    assert out.shape == (13, 10, 10)
    assert np.isnan(out).all()
    assert col.gmi_channel_labels(gmi)[8] == "89.0H"


def test_label_hour_and_cell():
    """The hour whose period contains the scan start; the value of the cell containing the point."""
    assert col.cldas_data_time(dt.datetime(2023, 7, 1, 6, 45)) == dt.datetime(2023, 7, 1, 7)
    assert col.cldas_data_time(dt.datetime(2023, 7, 1, 6, 0)) == dt.datetime(2023, 7, 1, 7)
    lat, lon = 0.03125 + 0.0625 * np.arange(4), 60.03125 + 0.0625 * np.arange(3)
    label = xr.DataArray(np.arange(12, dtype=np.float32).reshape(4, 3), dims=("lat", "lon"),
                         coords={"lat": lat, "lon": lon})
    out = col.label_at(label, np.array([60.0001, 60.187, 59.9, 60.1, -299.9]),
                       np.array([0.0001, 0.249, 0.1, 0.26, 0.01]))
    np.testing.assert_array_equal(out[:2], [0.0, 11.0])
    assert np.isnan(out[2:4]).all()
    assert out[4] == 1.0  # -299.9 E is 60.1 E


def test_scan_blocks_and_agri_match():
    """Blocks are cut from the start of each run of usable scans; the AGRI file must be near in time and space."""
    usable = np.array([0, 1, 1, 1, 1, 1, 0, 1, 1], bool)
    assert col.scan_blocks(usable, 2) == [(1, 3), (3, 5), (7, 9)]
    area = _lonlat_area()
    times = np.array(["2023-07-01T06:05", "2023-07-01T06:08"], dtype="datetime64[ns]")
    lon, lat = np.full((2, 3), 15.5), np.full((2, 3), 5.5)  # pixel centres
    candidates = [(T0, area), (T0 + dt.timedelta(minutes=15), area)]
    assert col.match_agri_file(times, lon, lat, candidates, dt.timedelta(minutes=10)) == 0
    assert col.match_agri_file(times + np.timedelta64(2, "m"), lon, lat, candidates, dt.timedelta(minutes=10)) == 1
    assert col.match_agri_file(times, lon, lat, candidates, dt.timedelta(minutes=7)) is None
    assert col.match_agri_file(times, lon + 50, lat, candidates, dt.timedelta(minutes=10)) is None


def test_geo_channels():
    """Elevation from the DEM, latitude, longitude wrapped to [-180, 180)."""
    dem = xr.DataArray(np.array([[0.0, 100.0], [200.0, 300.0]], np.float32), dims=("latitude", "longitude"),
                       coords={"latitude": [0.5, 1.5], "longitude": [179.5, 180.5]})
    geo = col.geo_channels(dem, np.array([180.0]), np.array([1.0]))
    np.testing.assert_allclose(geo[:, 0], [150.0, 1.0, -180.0])


# ------------------------------------------------------------------------------------------------ sources


def _swath(n: int, start: dt.datetime, lon0: float, lat0: float = 12.5):
    """DPR-like footprints going north (n scans x 49 rays, about 3 km apart) and their scan times."""
    scan, ray = np.mgrid[0:n, 0:49]
    lat = (lat0 + 0.03 * scan).astype(np.float32)
    lon = (lon0 + 0.045 * (ray - 24)).astype(np.float32)
    times = np.datetime64(start, "ns") + (np.arange(n) * 700).astype("timedelta64[ms]")
    return times, lon, lat


def write_granule(folder, granule: int, start: dt.datetime, lon0: float, *, satellite: str = "GPM", gmi=True):
    """A DPR granule (260 scans with a rain patch) and, if ``gmi``, its GMI granule, over the test window."""
    times, lon, lat = _swath(260, start, lon0)
    z = np.full((*lat.shape, 176), np.nan, np.float32)
    type_precip = np.full(lat.shape, -1111, np.int32)
    z[10:40, 20:30, 150:170] = 30.0
    type_precip[10:40, 20:30] = 10_000_000
    dpr = write_dpr(folder, granule, times, lon, lat, z, type_precip)
    if not gmi:
        return dpr, None
    glon, glat = np.meshgrid(np.arange(lon0 - 3, lon0 + 3, 0.1), np.arange(11.5, 21.5, 0.1))
    gtimes = np.datetime64(start - dt.timedelta(seconds=67), "ns") + \
        (np.arange(glat.shape[0]) * 1875).astype("timedelta64[ms]")
    rng = np.random.default_rng(granule)
    tc1 = 200 + rng.random((*glat.shape, 9)) * 50
    tc2 = 220 + rng.random((*glat.shape, 4)) * 30
    return dpr, write_gmi(folder, granule, gtimes, glon, glat, tc1, tc2, satellite=satellite)


@pytest.fixture(scope="module")
def source_dir(tmp_path_factory):
    """Simulated AGRI (2 REGC files), CLDAS (1 hour), a DEM and two GPM granules (DPR + GMI)."""
    from satpy_prenet.synthetic import World, write_agri_l1
    from satpy_prenet.synthetic.cldas_file import hourly_truth, write_cldas
    from satpy_prenet.synthetic.elevation_file import write_elevation

    folder = tmp_path_factory.mktemp("sources")
    world = World(seed=SEED)
    scenes = [world.scene(T0 + dt.timedelta(minutes=15 * k), platform="FY-4B", window=WINDOW) for k in (0, 1)]
    for scene in scenes:
        write_agri_l1(scene, folder / "agri")
    write_cldas(hourly_truth(scenes, seed=SEED), folder / "cldas", data_time=T0 + dt.timedelta(hours=1))
    write_elevation(SEED, folder / "dem", region=(120.0, 140.0, 5.0, 30.0))
    write_granule(folder / "gpm", 1000, T0 + dt.timedelta(minutes=2), 131.0)
    write_granule(folder / "gpm", 1001, T0 + dt.timedelta(minutes=16), 130.0)
    return folder


@pytest.fixture(scope="module")
def built(source_dir, tmp_path_factory):
    """An uninterrupted build of the sources and its report."""
    root = tmp_path_factory.mktemp("built")
    return root, build_datasets(discover_sources(source_dir), root, CONFIG, progress=False)


# ------------------------------------------------------------------------------------------------ builder


def test_discover_sources(source_dir):
    """Every format is found by its real name."""
    sources = discover_sources(source_dir)
    assert [len(getattr(sources, key)) for key in ("agri", "gmi", "dpr", "cldas")] == [2, 2, 2, 1]
    assert sources.elevation.name == "simulated_dem_seed11_0p0625deg.tif"


def test_config_rejects_unknown_keys():
    """Unknown settings are named; known ones round-trip through to_dict."""
    with pytest.raises(ValueError, match="swath_tiles"):
        BuildConfig.from_dict({"swath_tiles": 3})
    assert BuildConfig.from_dict(CONFIG.to_dict()) == CONFIG


def test_build_writes_the_documented_layout(built):
    """Swath and disc stores per split, with the layout, coordinates and attributes of docs/training-data.md."""
    root, report = built
    assert report.tiles == {"swath_mpr/train": 2, "swath_mpr/validation": 2, "full_ipr/train": 4,
                            "full_ipr/validation": 4}
    swath = stores.open_tiles(stores.store_path(root, "swath_mpr", "train"), "swath_mpr")
    assert dict(swath.sizes) == {"tile": 2, "ir_band": 8, "pmw_channel": 13, "range_bin": 176, "geo_channel": 3,
                                 "along": 128, "across": 49}
    assert swath.attrs["split"] == "train" and swath.attrs["pr_no_echo_dbz"] == col.PR_NO_ECHO_DBZ
    assert swath.attrs["simulated"] is True and any("seed=11" in text for text in swath.attrs["simulation"])
    assert swath.attrs["build_config"]["swath_tile_scans"] == 128
    assert list(swath["sample_id"].values) == ["swath:1000:20230701T060200", "swath:1000:20230701T060329"]
    assert set(swath["agri_file"].values) == {"FY4B-_AGRI--_N_REGC_1330E_L1-_FDI-_MULT_NOM_20230701060000_"
                                              "20230701060416_4000M_V0001.HDF"}
    tile = swath.isel(tile=0).load()
    assert np.isfinite(tile["ir"]).all() and np.isfinite(tile["pmw"]).all() and np.isfinite(tile["pr"]).all()
    assert tile["pr"].sel(range_bin=160).values[15, 25] == 30.0
    assert (tile["pr"].values == col.PR_NO_ECHO_DBZ).mean() > 0.9
    np.testing.assert_allclose(tile["geo"].sel(geo_channel="latitude").values[:, 0], 12.5 + 0.03 * np.arange(128),
                               atol=1e-4)
    assert np.isfinite(tile["label"]).all() and tile["label"].values.min() >= 0

    disc = stores.open_tiles(stores.store_path(root, "full_ipr", "validation"), "full_ipr")
    assert dict(disc.sizes) == {"tile": 4, "ir_band": 8, "y": 128, "x": 128}
    assert sorted(zip(disc["line"].values.tolist(), disc["column"].values.tolist(), strict=True)) == [
        (800, 1200), (800, 1328), (928, 1200), (928, 1328)]
    assert disc["sample_id"].values[0] == "disc:FY-4B:20230701T0615:800:1200"
    assert (disc["platform"].values == "FY-4B").all()
    assert str(disc["label_file"].values[0]).endswith("HOR-PRE-2023070107.nc")


def test_ids_unique_across_splits(built):
    """sample_id is unique over every store."""
    root, _ = built
    ids = [value for kind in stores.KINDS for split in ("train", "validation")
           for value in stores.open_tiles(stores.store_path(root, kind, split))["sample_id"].values]
    assert len(ids) == len(set(ids)) == 12


def test_resume_after_a_kill_between_array_writes(source_dir, tmp_path, monkeypatch):
    """A kill inside an append leaves the arrays at different lengths (sample_id and label not yet grown); the
    resumed build cuts every array back and equals an uninterrupted one."""
    config = dataclasses.replace(CONFIG, validation_from="2030-01-01T00:00:00", test_from="2031-01-01T00:00:00")
    sources = discover_sources(source_dir)
    reference = build_datasets(sources, tmp_path / "reference", config, progress=False)
    calls = []
    original = stores.append_tiles

    def killed_append(path, tiles, **kwargs):
        calls.append(path)
        before = stores.tile_count(path) or 0
        original(path, tiles, **kwargs)
        if len(calls) == 3:  # the append of disc tiles to full_ipr/train
            group = zarr.open_group(path, mode="r+")
            for name in ("sample_id", "label"):
                group[name].resize((before, *group[name].shape[1:]))
            raise KeyboardInterrupt("simulated kill between two array writes")

    monkeypatch.setattr(stores, "append_tiles", killed_append)
    with pytest.raises(KeyboardInterrupt):
        build_datasets(sources, tmp_path / "root", config, progress=False)
    monkeypatch.setattr(stores, "append_tiles", original)
    lengths = stores.tile_lengths(stores.store_path(tmp_path / "root", "full_ipr", "train"))
    assert lengths["sample_id"] == 4 and lengths["ir"] == 8
    report = build_datasets(sources, tmp_path / "root", config, progress=False)
    assert report.units_resumed == 2 and report.units_done == 2 and report.tiles == reference.tiles
    for kind in stores.KINDS:
        expected = stores.open_tiles(stores.store_path(tmp_path / "reference", kind, "train")).load()
        actual = stores.open_tiles(stores.store_path(tmp_path / "root", kind, "train")).load()
        xr.testing.assert_identical(actual, expected)
    assert build_datasets(sources, tmp_path / "root", config, progress=False).units_resumed == 4


def test_resume_refuses_a_store_that_lost_tiles(source_dir, built, tmp_path):
    """A store shorter than its committed count (deleted or replaced) stops the resume, naming it."""
    root, _ = built
    copy = tmp_path / "root"
    shutil.copytree(root, copy)
    path = stores.store_path(copy, "full_ipr", "train")
    zarr.open_group(path, mode="r+")["ir"].resize((2, 8, 128, 128))
    with pytest.raises(BuildError, match="ir hold fewer than the 4 committed") as info:
        build_datasets(discover_sources(source_dir), copy, CONFIG, progress=False)
    assert str(path) in str(info.value)
    shutil.rmtree(path)
    with pytest.raises(BuildError, match="committed tiles is gone"):
        build_datasets(discover_sources(source_dir), copy, CONFIG, progress=False)


def test_resume_refuses_other_settings(built):
    """A root started with other settings is not mixed with a new build."""
    root, _ = built
    sources = Sources()
    with pytest.raises(BuildError, match="other settings"):
        build_datasets(sources, root, dataclasses.replace(CONFIG, min_rain_fraction=0.5), progress=False)


def test_filters_drop_tiles(source_dir, tmp_path):
    """Rain-fraction filter: with 100 % required no tile is kept, and the drops are counted."""
    sources = discover_sources(source_dir)
    sources.dpr, sources.gmi = sources.dpr[:1], sources.gmi[:1]
    sources.agri = sources.agri[:1]
    report = build_datasets(sources, tmp_path, dataclasses.replace(CONFIG, min_rain_fraction=1.0), progress=False)
    assert report.tiles == {}
    assert report.skipped == {"little_rain": 6}


def test_skips_missing_partners_and_empty_data(source_dir, tmp_path):
    """No GMI, a granule outside every AGRI file, NaN-only AGRI and a missing label hour skip with counts."""
    sources = discover_sources(source_dir)
    gpm = tmp_path / "gpm"
    far_dpr, _ = write_granule(gpm, 1002, T0 + dt.timedelta(minutes=2), 60.0)
    lonely_dpr, _ = write_granule(gpm, 1003, T0 + dt.timedelta(minutes=2), 131.0, gmi=False)
    nan_agri = tmp_path / "agri" / sources.agri[1].name
    nan_agri.parent.mkdir()
    shutil.copy(sources.agri[1], nan_agri)
    with h5py.File(nan_agri, "r+") as h5:
        for key in h5["Data"]:
            h5["Data"][key][...] = 65535
    sources = Sources(agri=[sources.agri[0], nan_agri], gmi=discover_sources(gpm).gmi, dpr=[far_dpr, lonely_dpr],
                      cldas=sources.cldas, elevation=sources.elevation)
    report = build_datasets(sources, tmp_path / "root", CONFIG, progress=False)
    assert report.skipped == {"no_agri": 1, "no_gmi": 1, "agri_all_nan": 1}
    assert report.tiles == {"full_ipr/train": 4}
    cldas, sources.cldas = sources.cldas, []
    report = build_datasets(sources, tmp_path / "no_label", CONFIG, progress=False)
    assert report.skipped == {"no_agri": 1, "no_gmi": 1, "no_label": 2}
    assert report.tiles == {}
    # units that missed a partner are retried: with the CLDAS file added, the disc tiles appear
    sources.cldas = cldas
    report = build_datasets(sources, tmp_path / "no_label", CONFIG, progress=False)
    assert report.units_resumed == 0 and report.units_done == 4
    assert report.tiles == {"full_ipr/train": 4}
    assert build_datasets(sources, tmp_path / "no_label", CONFIG, progress=False).units_resumed == 2


def test_malformed_inputs_abort_naming_the_file(source_dir, tmp_path):
    """A corrupt file, the wrong satellite and a missing DEM stop the build with the file in the message."""
    sources = discover_sources(source_dir)
    corrupt = tmp_path / sources.agri[0].name
    corrupt.write_bytes(sources.agri[0].read_bytes()[:2000])
    with pytest.raises(BuildError, match="truncated or corrupt") as info:
        build_datasets(dataclasses.replace(sources, agri=[corrupt]), tmp_path / "a", CONFIG, progress=False)
    assert str(corrupt) in str(info.value)

    dpr, gmi = write_granule(tmp_path / "trmm", 1004, T0 + dt.timedelta(minutes=2), 131.0, satellite="TRMM")
    with pytest.raises(BuildError, match="satellite 'TRMM'") as info:
        build_datasets(dataclasses.replace(sources, dpr=[dpr], gmi=[gmi]), tmp_path / "b", CONFIG, progress=False)
    assert gmi.name in str(info.value)

    fy4c = tmp_path / sources.agri[0].name.replace("FY4B", "FY4C")
    fy4c.write_bytes(b"")
    with pytest.raises(BuildError, match="FY4C is not supported") as info:
        build_datasets(dataclasses.replace(sources, agri=[fy4c]), tmp_path / "d", CONFIG, progress=False)
    assert str(fy4c) in str(info.value)

    with pytest.raises(BuildError, match="no elevation"):
        build_datasets(dataclasses.replace(sources, elevation=None), tmp_path / "c", CONFIG, progress=False)


def test_build_from_a_simulated_archive(tmp_path):
    """End to end: one simulated GPM pass over eastern China with its AGRI, CLDAS and DEM files."""
    from satpy_prenet.synthetic.archive import simulate_archive

    archive = simulate_archive(tmp_path / "archive", seed=2, start=dt.datetime(2023, 7, 1),
                               end=dt.datetime(2023, 7, 1, 12), platform="FY-4B", region=(110.0, 122.0, 20.0, 32.0),
                               progress=False)
    sources = discover_sources(archive.root)
    assert (len(sources.dpr), len(sources.gmi), sources.elevation) == (1, 1, archive.elevation)
    config = dataclasses.replace(CONFIG, validation_from="2030-01-01T00:00:00", test_from="2031-01-01T00:00:00")
    report = build_datasets(sources, tmp_path / "root", config, progress=False)
    assert report.tiles["swath_mpr/train"] >= 1 and report.tiles["full_ipr/train"] >= 1
    swath = stores.open_tiles(stores.store_path(tmp_path / "root", "swath_mpr", "train")).isel(tile=0).load()
    assert swath.attrs["simulated"] is True
    assert np.isfinite(swath["ir"]).mean() > 0.9 and np.isfinite(swath["pmw"]).mean() > 0.9
    assert np.isfinite(swath["pr"]).any("range_bin").all() and np.isfinite(swath["label"]).mean() > 0.5
    assert np.isnan(swath["pr"].isel(range_bin=-1)).mean() > 0.5  # below the surface: missing
    assert (swath["gmi_file"].item(), swath["dpr_file"].item()) == (sources.gmi[0].name, sources.dpr[0].name)


def test_duplicate_dpr_granules_keep_the_newest_version(tmp_path, caplog):
    """Of a V06 and a V07 file of one granule the V07 is used; the dropped file is named in a WARNING."""
    from satpy_prenet.training.builder.indexes import newest_by_granule

    old = tmp_path / "old" / DPR_TEMPLATE.name.replace("V07A", "V06A")
    new = tmp_path / "new" / DPR_TEMPLATE.name
    for path in (old, new):
        path.parent.mkdir()
        shutil.copy(DPR_TEMPLATE, path)
    assert newest_by_granule([new, old]) == {144: new}
    assert str(old) in caplog.text and "not used" in caplog.text
