# SPDX-License-Identifier: GPL-3.0-or-later
"""Tests of the DEM reader and the simulated DEM writer."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

from satpy_prenet.data.elevation import ElevationFileError, elevation_at, read_elevation
from satpy_prenet.synthetic.elevation_file import NODATA, write_elevation
from satpy_prenet.synthetic.surface import global_surface

SEED = 7
REGION = (95.0, 105.0, 25.0, 35.0)


@pytest.fixture(scope="module")
def dem_file(tmp_path_factory):
    """A small simulated DEM over a mountainous region."""
    return write_elevation(SEED, tmp_path_factory.mktemp("dem"), resolution=0.25, region=REGION)


def test_round_trip_grid_and_tags(dem_file):
    """The simulated file is an Int16 EPSG:4326 GeoTIFF whose grid reads back ascending, in metres."""
    assert dem_file.name == "simulated_dem_seed7_0p25deg.tif"
    with rasterio.open(dem_file) as src:
        assert src.dtypes[0] == "int16"
        assert src.nodata == NODATA
        assert src.crs.to_epsg() == 4326
        assert src.tags()["simulated"] == "true"
    dem = read_elevation(dem_file)
    assert dem.dims == ("latitude", "longitude")
    assert dem.dtype == np.float32
    assert dem.shape == (40, 40)
    np.testing.assert_allclose(dem["latitude"].values[[0, -1]], [25.125, 34.875])
    np.testing.assert_allclose(dem["longitude"].values[[0, -1]], [95.125, 104.875])
    assert dem.attrs["units"] == "m"
    assert dem.attrs["simulated"] == "true"


def test_values_match_the_world(dem_file):
    """The heights are the world's surface (km -> m, rounded) at the cell centres."""
    dem = read_elevation(dem_file)
    lon, lat = np.meshgrid(dem["longitude"].values, dem["latitude"].values)
    expected = global_surface(SEED).sample("elevation", lon, lat) * 1000.0
    np.testing.assert_allclose(dem.values, expected, atol=0.51)
    assert dem.values.max() > 1000.0  # the region holds mountains


def test_elevation_at_points(dem_file):
    """Bilinear and nearest sampling agree with the grid at cell centres and give NaN outside."""
    dem = read_elevation(dem_file)
    lon = np.array([[dem["longitude"].values[3], 200.0], [np.nan, dem["longitude"].values[10]]])
    lat = np.array([[dem["latitude"].values[5], 30.0], [30.0, dem["latitude"].values[20]]])
    for method in ("linear", "nearest"):
        values = elevation_at(dem, lon, lat, method=method)
        assert values.shape == (2, 2)
        assert values[0, 0] == pytest.approx(dem.values[5, 3])
        assert values[1, 1] == pytest.approx(dem.values[20, 10])
        assert np.isnan(values[0, 1]) and np.isnan(values[1, 0])
    with pytest.raises(ValueError, match="method"):
        elevation_at(dem, lon, lat, method="cubic")


def test_nodata_and_south_up(tmp_path):
    """Nodata becomes NaN; a south-up file still reads ascending."""
    path = tmp_path / "dem.tif"
    data = np.array([[1, 2, 3], [4, NODATA, 6]], dtype=np.int16)
    with rasterio.open(path, "w", driver="GTiff", width=3, height=2, count=1, dtype="int16", crs="EPSG:4326",
                       transform=rasterio.Affine(1.0, 0, 10.0, 0, 1.0, 20.0), nodata=NODATA) as dst:
        dst.write(data, 1)
    dem = read_elevation(path)
    np.testing.assert_allclose(dem["latitude"], [20.5, 21.5])
    assert np.isnan(dem.values[1, 1])
    assert dem.values[0, 2] == 3


@pytest.mark.parametrize("case, problem", [
    ("missing", "no such file"),
    ("empty", "empty file"),
    ("text", "not a GeoTIFF"),
    ("projected", "projected CRS"),
    ("no_crs", "no coordinate reference system"),
    ("truncated", "cannot be read"),
])
def test_bad_files(tmp_path, dem_file, case, problem):
    """Every bad file gives an ElevationFileError naming the file and the problem."""
    path = tmp_path / f"{case}.tif"
    if case == "empty":
        path.write_bytes(b"")
    elif case == "text":
        path.write_text("not a tiff")
    elif case == "truncated":
        path.write_bytes(dem_file.read_bytes()[:300])
    elif case in ("projected", "no_crs"):
        crs = "EPSG:3857" if case == "projected" else None
        with rasterio.open(path, "w", driver="GTiff", width=2, height=2, count=1, dtype="int16", crs=crs,
                           transform=rasterio.Affine(1000.0, 0, 0, 0, -1000.0, 2000.0)) as dst:
            dst.write(np.zeros((2, 2), np.int16), 1)
    with pytest.raises(ElevationFileError, match=problem) as info:
        read_elevation(path)
    assert str(path) in str(info.value)
