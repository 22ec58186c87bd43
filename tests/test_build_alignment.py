# SPDX-License-Identifier: GPL-3.0-or-later
"""Alignment of the built training tiles with their source files, and the builder's skip and abort paths.

Every stored value is checked against an independent read of the source file it came from (satpy for AGRI, the
HDF5 root attributes for the regional window, a brute-force haversine search over GMI, the raw DPR profile, a
nearest-cell CLDAS lookup, the DEM), so that an off-by-one, a transposed axis or a wrong hour in the builder fails.
The sources are those of tests/test_build.py, edited in a copy so that GMI S1 and S2 have different footprints,
some GMI footprints are bad (``Quality`` < 0 or fill Tc) and DPR has a real surface bin.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import shutil
from pathlib import Path

import h5py
import netCDF4
import numpy as np
import pytest
import xarray as xr
from test_build import CONFIG, T0, source_dir  # noqa: F401  (source_dir is a fixture used below)

from satpy_prenet.channels import READERS, channel_name
from satpy_prenet.data import collocation as col
from satpy_prenet.data import stores
from satpy_prenet.data.cldas import read_cldas_precipitation
from satpy_prenet.data.elevation import elevation_at, read_elevation
from satpy_prenet.data.errors import SourceFileError
from satpy_prenet.data.gpm import read_dpr_2a, read_gmi_1c
from satpy_prenet.training.builder import build_datasets, discover_sources

EARTH_RADIUS_M = 6371008.8
#: Shift (degrees of longitude) of the GMI S2 footprints against S1 in the edited copy.
S2_SHIFT = 0.037
#: binRealSurface written into the edited DPR copies (bins below it must be NaN).
SURFACE_BIN = 172


# ------------------------------------------------------------------------------------------------ fixtures


def _edit_gpm(folder: Path) -> None:
    """Make the GMI and DPR copies less regular: S2 shifted from S1, bad GMI footprints, a real surface bin."""
    rng = np.random.default_rng(7)
    for path in sorted(folder.glob("gpm/1C.GPM.GMI.*.HDF5")):
        with h5py.File(path, "r+") as h5:
            h5["S2/Longitude"][...] = h5["S2/Longitude"][...] + S2_SHIFT
            quality = h5["S1/Quality"][...]
            quality[rng.random(quality.shape) < 0.15] = -1
            h5["S1/Quality"][...] = quality
            tc = h5["S2/Tc"][...]
            tc[rng.random(tc.shape[:2]) < 0.15, 1] = h5["S2/Tc"].attrs.get("_FillValue", -9999.9)
            h5["S2/Tc"][...] = tc
    for path in sorted(folder.glob("gpm/2A.GPM.DPR.*.HDF5")):
        with h5py.File(path, "r+") as h5:
            surface = h5["FS/PRE/binRealSurface"]
            surface[...] = np.full(surface.shape, SURFACE_BIN, dtype=surface.dtype)


@pytest.fixture(scope="module")
def edited_sources(source_dir, tmp_path_factory):  # noqa: F811
    """A copy of tests/test_build.py's sources with the GPM files edited (:func:`_edit_gpm`)."""
    folder = tmp_path_factory.mktemp("aligned") / "sources"
    shutil.copytree(source_dir, folder)
    _edit_gpm(folder)
    return folder


@pytest.fixture(scope="module")
def aligned(edited_sources, tmp_path_factory):
    """The build of the edited sources: (sources folder, dataset root, report)."""
    root = tmp_path_factory.mktemp("aligned_root")
    report = build_datasets(discover_sources(edited_sources), root, CONFIG, progress=False)
    return edited_sources, root, report


def _tiles(root: Path, kind: str) -> xr.Dataset:
    """Every tile of a kind, all splits concatenated, loaded."""
    parts = [stores.open_tiles(path, kind).load() for split in stores.SPLITS
             if (path := stores.store_path(root, kind, split)).exists()]
    return xr.concat(parts, dim=stores.TILE_DIM)


def _source(folder: Path, name: str) -> Path:
    """The one file of that name under the sources folder."""
    (path,) = folder.rglob(name)
    return path


def _agri_scene(path: Path, bands: list[str]):
    """The AGRI file's IR bands (band, y, x) and area, read with satpy directly."""
    from satpy import Scene

    platform = "FY-4A" if path.name.startswith("FY4A") else "FY-4B"
    names = [channel_name(key, platform) for key in bands]
    scene = Scene(reader=READERS[platform], filenames=[str(path)])
    scene.load(names)
    values = np.stack([np.asarray(scene[name].values, np.float32) for name in names])
    return values, scene[names[0]].attrs["area"]


def _cldas_lookup(field: xr.DataArray, lon, lat) -> tuple[np.ndarray, np.ndarray]:
    """CLDAS value of the cell whose centre is nearest each point (= the cell containing it), NaN outside.

    Two answers: a point on a cell edge (lat 12.5 is one) lies in both cells, the first takes the lower-index cell,
    the second the upper one.
    """
    grid_lat, grid_lon = field["lat"].values, field["lon"].values
    lat, lon = np.asarray(lat, np.float64), np.mod(np.asarray(lon, np.float64), 360.0)
    answers = []
    for flip in (False, True):
        d_lat, d_lon = np.abs(lat[..., None] - grid_lat), np.abs(lon[..., None] - grid_lon)
        if flip:
            row = grid_lat.size - 1 - d_lat[..., ::-1].argmin(-1)
            column = grid_lon.size - 1 - d_lon[..., ::-1].argmin(-1)
        else:
            row, column = d_lat.argmin(-1), d_lon.argmin(-1)
        half = 0.0625 / 2 + 1e-9
        inside = (np.abs(grid_lat[row] - lat) <= half) & (np.abs(grid_lon[column] - lon) <= half)
        answers.append(np.where(inside, field.values[row, column], np.nan))
    return answers[0], answers[1]


def _assert_label(stored: np.ndarray, field: xr.DataArray, lon, lat, message: str) -> None:
    """The stored label is the value of a CLDAS cell containing the point."""
    first, second = _cldas_lookup(field, lon, lat)
    ok = (stored == first) | (stored == second) | (np.isnan(stored) & np.isnan(first) & np.isnan(second))
    assert np.all(ok), f"{message}: {np.size(ok) - np.sum(ok)} of {np.size(ok)} differ, e.g. stored " \
        f"{np.asarray(stored)[~ok][:3]} vs CLDAS {np.asarray(first)[~ok][:3]}"


def _label_hour_file(folder: Path, agri_start: dt.datetime) -> Path:
    """The CLDAS file of the documented hour: data time = AGRI nominal start floored to the hour + 1 h."""
    data_time = agri_start.replace(minute=0, second=0, microsecond=0) + dt.timedelta(hours=1)
    (path,) = folder.rglob(f"*HOR-PRE-{data_time:%Y%m%d%H}.nc")
    return path


def _haversine(lon1, lat1, lon2, lat2) -> np.ndarray:
    lon1, lat1, lon2, lat2 = (np.deg2rad(np.asarray(value, np.float64)) for value in (lon1, lat1, lon2, lat2))
    a = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(a))


def _swath_scan_offset(dpr: xr.Dataset, tile: xr.Dataset) -> int:
    """Index in the DPR file of the tile's first scan, from the first scan time in its sample id."""
    first = np.datetime64(dt.datetime.strptime(str(tile["sample_id"].item()).rsplit(":", 1)[1], "%Y%m%dT%H%M%S"))
    seconds = dpr["time"].values.astype("datetime64[s]")
    (index,) = np.flatnonzero(seconds == first)[:1]
    return int(index)


# ------------------------------------------------------------------------------------------------ swath alignment


def test_swath_tiles_align_with_their_sources(aligned):
    """ir, label, geo, pr and the time coordinates of every swath tile equal independent reads of the sources."""
    folder, root, report = aligned
    swath = _tiles(root, "swath_mpr")
    assert swath.sizes["tile"] == 4, report
    assert (swath["pr"].values == 30.0).any() and np.isnan(swath["pr"].sel(range_bin=SURFACE_BIN + 1)).all()
    _check_swath_tiles(folder, swath)


def _check_swath_tiles(folder: Path, swath: xr.Dataset) -> None:
    """The checks of :func:`test_swath_tiles_align_with_their_sources` on every tile of ``swath``."""
    dem = read_elevation(_source(folder, "*.tif"))
    for index in range(swath.sizes["tile"]):
        tile = swath.isel(tile=index)
        dpr = read_dpr_2a(_source(folder, str(tile["dpr_file"].item())))
        start = _swath_scan_offset(dpr, tile)
        block = dpr.isel(nscan=slice(start, start + tile.sizes["along"]))
        lon, lat = block["Longitude"].values.astype(np.float64), block["Latitude"].values.astype(np.float64)
        where = f"tile {tile['sample_id'].item()}"
        valid = col.footprint_valid(block)  # geo and label are NaN at footprints without DPR data

        geo = tile["geo"]
        np.testing.assert_array_equal(geo.sel(geo_channel="latitude").values,
                                      np.where(valid, lat, np.nan).astype(np.float32), err_msg=where)
        np.testing.assert_allclose(geo.sel(geo_channel="longitude").values, np.where(valid, lon, np.nan), atol=1e-4,
                                   err_msg=where)
        np.testing.assert_allclose(geo.sel(geo_channel="elevation").values,
                                   np.where(valid, elevation_at(dem, lon, lat), np.nan),
                                   rtol=1e-5, atol=1e-3, err_msg=f"{where}: elevation is not the DEM's")
        assert tile["gpm_time"].values == block["time"].values[block.sizes["nscan"] // 2]

        # IR: the AGRI pixel containing each footprint, channels read with satpy
        agri_path = _source(folder, str(tile["agri_file"].item()))
        values, area = _agri_scene(agri_path, list(tile["ir_band"].values))
        cols, rows = area.get_array_indices_from_lonlat(lon, lat)
        off = np.ma.getmaskarray(cols) | np.ma.getmaskarray(rows)
        assert off.mean() < 0.1, f"{where}: footprints off the AGRI file"
        expected_ir = np.where(off, np.nan, values[:, np.ma.getdata(rows) * ~off, np.ma.getdata(cols) * ~off])
        np.testing.assert_array_equal(tile["ir"].values, expected_ir, err_msg=f"{where}: ir is not the AGRI pixel")

        # label: CLDAS cell containing the footprint, for the hour whose period holds the AGRI nominal start
        agri_start = tile["time"].values.astype("datetime64[us]").item()
        assert agri_start == dt.datetime.strptime(agri_path.name.split("_")[9], "%Y%m%d%H%M%S")
        cldas_path = _label_hour_file(folder, agri_start)
        assert tile["label_file"].item() == cldas_path.name
        field = read_cldas_precipitation(cldas_path)
        lon_v, lat_v = np.where(valid, lon, np.nan), np.where(valid, lat, np.nan)
        _assert_label(tile["label"].values, field, lon_v, lat_v,
                      f"{where}: label is not the CLDAS cell of the footprint")
        np.testing.assert_array_equal(tile["label"].values, col.label_at(field, lon_v, lat_v))

        # PR: the Ku profile in file bin order where there is an echo; the floor / NaN elsewhere
        raw = block["zFactorFinal"].transpose("nbin", "nscan", "nray").values
        pr = tile["pr"].values
        assert list(tile["range_bin"].values) == list(range(1, 177))
        above = np.arange(1, 177)[:, None, None] <= block["binRealSurface"].values[None]
        has_data = valid[None]
        echo = np.isfinite(raw) & above & has_data
        np.testing.assert_array_equal(pr[echo], raw[echo], err_msg=f"{where}: pr is not the DPR profile")
        assert np.isnan(pr[~above | ~has_data]).all(), f"{where}: bins below binRealSurface must be NaN"
        assert (pr[~np.isfinite(raw) & above & has_data] == col.PR_NO_ECHO_DBZ).all()


def test_swath_pr_rain_patch_position(aligned):
    """The 30 dBZ patch written at scans 10-39, rays 20-29, bin indices 150-169 (bins 151-170) of granule 1000 lands
    at the same place of its first tile."""
    _, root, _ = aligned
    swath = _tiles(root, "swath_mpr")
    tile = swath.isel(tile=list(swath["sample_id"].values).index("swath:1000:20230701T060200"))
    patch = tile["pr"].values == 30.0
    bins, along, across = np.nonzero(patch)
    assert (bins.min() + 1, bins.max() + 1, along.min(), along.max(), across.min(), across.max()) == \
        (151, 170, 10, 39, 20, 29)
    assert patch.sum() == 20 * 30 * 10


@pytest.mark.parametrize("build", ["aligned", "simulated_fy4a"])
def test_swath_pmw_is_the_nearest_gmi_footprint(build, request):
    """pmw at a sample of footprints equals the brute-force nearest usable S1 / S2 footprint within 15 km."""
    folder, root, _ = request.getfixturevalue(build)
    swath = _tiles(root, "swath_mpr")
    rng = np.random.default_rng(3)
    checked = 0
    for index in range(swath.sizes["tile"]):
        tile = swath.isel(tile=index)
        gmi = read_gmi_1c(_source(folder, str(tile["gmi_file"].item())))
        labels = [str(value) for swath_name in ("S1", "S2")
                  for value in gmi[gmi[f"{swath_name}_Tc"].dims[-1]].values]
        assert list(tile["pmw_channel"].values) == labels
        lon = tile["geo"].sel(geo_channel="longitude").values.astype(np.float64)
        lat = tile["geo"].sel(geo_channel="latitude").values.astype(np.float64)
        picks = list(zip(rng.integers(0, tile.sizes["along"], 12), rng.integers(0, tile.sizes["across"], 12),
                         strict=True)) + [(0, 0), (tile.sizes["along"] - 1, tile.sizes["across"] - 1)]
        for along, across in picks:
            stored = tile["pmw"].values[:, along, across]
            for swath_name, channels in (("S1", slice(0, 9)), ("S2", slice(9, 13))):
                glon = gmi[f"{swath_name}_Longitude"].values.ravel()
                glat = gmi[f"{swath_name}_Latitude"].values.ravel()
                tc = gmi[f"{swath_name}_Tc"].values.reshape(glon.size, -1)
                usable = (gmi[f"{swath_name}_Quality"].values.ravel() >= 0) & np.isfinite(tc).all(-1)
                distance = np.where(usable, _haversine(lon[along, across], lat[along, across], glon, glat), np.inf)
                nearest = distance.min()
                where = f"{tile['sample_id'].item()} ({along}, {across}) {swath_name}"
                if nearest > col.GMI_RADIUS_M:
                    assert np.isnan(stored[channels]).all(), where
                    continue
                ties = np.flatnonzero(distance <= nearest + 1.0)  # equidistant footprints on the test grid
                assert any(np.array_equal(stored[channels], tc[k]) for k in ties), \
                    f"{where}: pmw {stored[channels]} is not the Tc of the nearest usable footprint {tc[ties]}"
                checked += 1
    assert checked >= 50


@pytest.fixture(scope="module")
def simulated_fy4a(tmp_path_factory):
    """A few minutes of the first simulated FY-4A pass of tests/test_pipeline.py's morning (seed 2026), built."""
    from satpy_prenet.synthetic.archive import simulate_archive

    folder = tmp_path_factory.mktemp("fy4a")
    archive = simulate_archive(folder / "archive", seed=2026, start=dt.datetime(2026, 7, 15, 2, 14),
                               end=dt.datetime(2026, 7, 15, 2, 20), platform="FY-4A", progress=False)
    config = dataclasses.replace(CONFIG, swath_tile_scans=64, disc_tile_size=256, max_disc_tiles_per_file=1,
                                 validation_from="2030-01-01T00:00:00", test_from="2031-01-01T00:00:00")
    report = build_datasets(discover_sources(archive.root), folder / "root", config, progress=False)
    return archive.root, folder / "root", report


def test_simulated_fy4a_swath_tiles_align(simulated_fy4a):
    """The same checks on a simulated FY-4A pass (reader agri_fy4a_l1, real GMI geometry, binRealSurface)."""
    folder, root, report = simulated_fy4a
    assert report.tiles.get("swath_mpr/train", 0) >= 1, report
    swath = _tiles(root, "swath_mpr")
    assert str(swath["agri_file"].values[0]).startswith("FY4A")
    _check_swath_tiles(folder, swath.isel(tile=slice(0, 3)))


# ------------------------------------------------------------------------------------------------ disc alignment


def test_disc_tiles_align_with_their_agri_file_and_label(aligned):
    """ir = the file's values at (line - line0, column - column0); label = CLDAS at each pixel's lon/lat."""
    folder, root, _ = aligned
    disc = _tiles(root, "full_ipr")
    assert disc.sizes["tile"] == 8
    size = disc.sizes["y"]
    rng = np.random.default_rng(5)
    for index in range(disc.sizes["tile"]):
        tile = disc.isel(tile=index)
        agri_path = _source(folder, str(tile["agri_file"].item()))
        values, area = _agri_scene(agri_path, list(tile["ir_band"].values))
        with h5py.File(agri_path, "r") as h5:  # the regional window's place on the disc, as the file states it
            line0, column0 = int(h5.attrs["Begin Line Number"][0]), int(h5.attrs["Begin Pixel Number"][0])
        line, column = int(tile["line"].item()) - line0, int(tile["column"].item()) - column0
        assert 0 <= line <= values.shape[1] - size and 0 <= column <= values.shape[2] - size
        where = f"tile {tile['sample_id'].item()}"
        np.testing.assert_array_equal(tile["ir"].values, values[:, line:line + size, column:column + size],
                                      err_msg=f"{where}: ir is not the file's window")
        cldas_path = _label_hour_file(folder, tile["time"].values.astype("datetime64[us]").item())
        assert tile["label_file"].item() == cldas_path.name
        field = read_cldas_precipitation(cldas_path)
        lons, lats = area.get_lonlats()
        for y, x in zip(rng.integers(0, size, 20), rng.integers(0, size, 20), strict=True):
            _assert_label(tile["label"].values[y, x], field, lons[line + y, column + x], lats[line + y, column + x],
                          f"{where}: label at ({y}, {x}) is not the CLDAS cell of the pixel")


# ------------------------------------------------------------------------------------------------ skip reasons


def _disc_only(folder: Path, agri: int = 0):
    """One AGRI file, the CLDAS files and the DEM, no GPM."""
    sources = discover_sources(folder)
    return dataclasses.replace(sources, agri=[sources.agri[agri]], dpr=[], gmi=[])


def test_ir_coverage_skips_tiles_with_blanked_lines(source_dir, tmp_path):  # noqa: F811
    """Lines 0-99 of the file set to fill: the two upper disc tiles hold 78 % IR (< 90 %) and are dropped."""
    sources = _disc_only(source_dir)
    copy = tmp_path / sources.agri[0].name
    shutil.copy(sources.agri[0], copy)
    with h5py.File(copy, "r+") as h5:
        for key in h5["Data"]:
            if key.startswith("NOMChannel"):
                h5["Data"][key][:100] = 65535
    report = build_datasets(dataclasses.replace(sources, agri=[copy]), tmp_path / "root", CONFIG, progress=False)
    assert report.skipped == {"ir_coverage": 2}
    disc = stores.open_tiles(stores.store_path(tmp_path / "root", "full_ipr", "train"))
    assert sorted(disc["line"].values.tolist()) == [928, 928]


def test_label_coverage_skips_tiles_without_cldas_values(source_dir, tmp_path):  # noqa: F811
    """A CLDAS copy missing everywhere north of 14.5 N: the northern disc tiles fail min_label_coverage."""
    sources = _disc_only(source_dir)
    copy = tmp_path / sources.cldas[0].name
    shutil.copy(sources.cldas[0], copy)
    with netCDF4.Dataset(copy, "r+") as nc:
        lat = nc["LAT"][:]
        prcp = nc["PRCP"][:]
        prcp[lat > 14.5, :] = -9999.0
        nc["PRCP"][:] = prcp
    report = build_datasets(dataclasses.replace(sources, cldas=[copy]), tmp_path / "root", CONFIG, progress=False)
    assert report.skipped.get("label_coverage", 0) >= 1, report.skipped
    assert set(report.skipped) == {"label_coverage"}
    kept = report.tiles.get("full_ipr/train", 0)
    assert kept + report.skipped["label_coverage"] == 4


def test_split_boundary_drops_swath_tiles_whose_agri_scan_is_in_another_split(source_dir, tmp_path):  # noqa: F811
    """Granule 1001 starts 06:16, its AGRI scan 06:15; a boundary at 06:16 puts them in two splits."""
    sources = discover_sources(source_dir)
    granule = [index for index, path in enumerate(sources.dpr) if ".001001." in path.name][0]
    sources = dataclasses.replace(sources, dpr=[sources.dpr[granule]], gmi=[sources.gmi[granule]])
    config = dataclasses.replace(CONFIG, validation_from="2023-07-01T06:16:00")
    report = build_datasets(sources, tmp_path / "root", config, progress=False)
    assert report.skipped == {"split_boundary": 2}
    assert report.tiles == {"full_ipr/train": 8}


def test_split_gap_drops_tiles_before_a_boundary(source_dir, tmp_path):  # noqa: F811
    """A 10 minute gap before 06:10: granule 1000 (06:02, 2 tiles) and the 06:00 AGRI file (one unit) fall in it."""
    sources = discover_sources(source_dir)
    config = dataclasses.replace(CONFIG, split_gap_minutes=10)
    report = build_datasets(sources, tmp_path / "root", config, progress=False)
    assert report.skipped == {"split_gap": 3}
    assert report.tiles == {"swath_mpr/validation": 2, "full_ipr/validation": 4}


def test_tile_limit_keeps_the_rainiest_disc_tile(source_dir, tmp_path):  # noqa: F811
    """max_disc_tiles_per_file=1 keeps the tile with the largest rain fraction and counts three tile_limit."""
    sources = _disc_only(source_dir)
    everything = build_datasets(sources, tmp_path / "all", CONFIG, progress=False)
    assert everything.tiles == {"full_ipr/train": 4}
    tiles = stores.open_tiles(stores.store_path(tmp_path / "all", "full_ipr", "train")).load()
    fractions = [float((tile.values[np.isfinite(tile.values)] >= 0.1).mean()) for tile in tiles["label"]]
    rainiest = str(tiles["sample_id"].values[int(np.argmax(fractions))])
    report = build_datasets(sources, tmp_path / "one", dataclasses.replace(CONFIG, max_disc_tiles_per_file=1),
                            progress=False)
    assert report.skipped == {"tile_limit": 3}
    kept = stores.open_tiles(stores.store_path(tmp_path / "one", "full_ipr", "train"))
    assert list(kept["sample_id"].values) == [rainiest]


def _one_granule(folder: Path, tmp_path: Path, edit) -> tuple:
    """Sources with granule 1000 only, its GMI file replaced by an edited copy."""
    sources = discover_sources(folder)
    granule = [index for index, path in enumerate(sources.dpr) if ".001000." in path.name][0]
    copy = tmp_path / sources.gmi[granule].name
    shutil.copy(sources.gmi[granule], copy)
    with h5py.File(copy, "r+") as h5:
        edit(h5)
    return dataclasses.replace(sources, dpr=[sources.dpr[granule]], gmi=[copy], agri=sources.agri[:1]), copy


def test_gmi_all_nan_skips_the_granule(source_dir, tmp_path):  # noqa: F811
    """Every GMI Tc set to the fill value: the granule is skipped as gmi_all_nan, its disc tiles stay."""
    def fill(h5):
        for swath in ("S1", "S2"):
            h5[f"{swath}/Tc"][...] = h5[f"{swath}/Tc"].attrs.get("_FillValue", -9999.9)

    sources, _ = _one_granule(source_dir, tmp_path, fill)
    report = build_datasets(sources, tmp_path / "root", CONFIG, progress=False)
    assert report.skipped == {"gmi_all_nan": 1}
    assert report.tiles == {"full_ipr/train": 4}


def test_pmw_coverage_drops_swath_tiles(source_dir, tmp_path):  # noqa: F811
    """Every S1 footprint of bad Quality (Tc kept): no footprint has all 13 channels, both tiles fail."""
    def bad_quality(h5):
        h5["S1/Quality"][...] = -1

    sources, _ = _one_granule(source_dir, tmp_path, bad_quality)
    report = build_datasets(sources, tmp_path / "root", CONFIG, progress=False)
    assert report.skipped == {"pmw_coverage": 2}
    assert report.tiles == {"full_ipr/train": 4}


# ------------------------------------------------------------------------------------------------ aborts


def test_corrupt_gpm_file_aborts_naming_it(source_dir, tmp_path):  # noqa: F811
    """A truncated DPR file inside a build stops it with an error naming the file."""
    sources = discover_sources(source_dir)
    corrupt = tmp_path / sources.dpr[0].name
    corrupt.write_bytes(sources.dpr[0].read_bytes()[:3000])
    with pytest.raises(SourceFileError) as info:
        build_datasets(dataclasses.replace(sources, dpr=[corrupt, *sources.dpr[1:]]), tmp_path / "root", CONFIG,
                       progress=False)
    assert str(corrupt) in str(info.value)


def test_corrupt_cldas_file_aborts_naming_it(source_dir, tmp_path):  # noqa: F811
    """A truncated CLDAS file inside a build stops it with an error naming the file."""
    sources = _disc_only(source_dir)
    corrupt = tmp_path / sources.cldas[0].name
    corrupt.write_bytes(sources.cldas[0].read_bytes()[:1500])
    with pytest.raises(SourceFileError) as info:
        build_datasets(dataclasses.replace(sources, cldas=[corrupt]), tmp_path / "root", CONFIG, progress=False)
    assert str(corrupt) in str(info.value)


def test_appending_other_pmw_channels_raises(aligned, tmp_path):
    """A tile whose pmw_channel labels differ from the store's is refused with a StoreError."""
    _, root, _ = aligned
    path = tmp_path / "copy.zarr"
    shutil.copytree(stores.store_path(root, "swath_mpr", "train"), path)
    tile = stores.open_tiles(path, "swath_mpr").isel(tile=[0]).load()
    tile = tile.assign_coords(pmw_channel=[f"{label}x" for label in tile["pmw_channel"].values],
                              sample_id=("tile", ["swath:9999:20230701T000000"]))
    with pytest.raises(stores.StoreError, match="pmw_channel"):
        stores.append_tiles(path, tile, kind="swath_mpr")
    assert stores.tile_count(path) == 2
