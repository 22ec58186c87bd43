"""The product pictures: space, dry, no data and rain told apart, a grey background, title, legend and demo mark."""

from __future__ import annotations

import datetime as dt
import shutil

import h5py
import numpy as np
import pytest
import xarray as xr
from PIL import Image
from satpy.enhancements.overlays import add_decorate
from scipy import ndimage
from trollimage.xrimage import XRImage

from satpy_prenet import pictures
from satpy_prenet.composites import QUALITY_FLAGS
from satpy_prenet.picture_writer import PICTURE_WRITER
from satpy_prenet.retrieve import retrieve_file


def _decorated(width, height, **options):
    """A black picture decorated by satpy's ``add_decorate`` with `pictures.decoration`, as an RGB array."""
    data = xr.DataArray(np.zeros((3, height, width)), dims=("bands", "y", "x"), coords={"bands": ["R", "G", "B"]})
    image = add_decorate(XRImage(data), **pictures.decoration("FY-4A AGRI title", width=width, **options))
    return np.asarray(image.pil_image().convert("RGB"))


def _has_colour(pixels, colour):
    return bool((pixels[..., :3] == colour).all(axis=-1).any())


def test_decoration_draws_title_legend_and_demo_mark():
    width, height = 900, 400
    drawn = _decorated(width, height, demo=True)
    box = pictures.font_size(width) + 2 * pictures.MARGIN  # at least the text height
    assert tuple(drawn[1, 1]) == (255, 255, 255), "the title's box at the top left"
    assert _has_colour(drawn[box: 3 * box], pictures.DEMO_MARK_COLOUR), "the demo mark under the title"
    legend = drawn[-box:]
    for _, colour in pictures.RAIN_CLASSES:
        assert _has_colour(legend, colour), f"legend box of {colour}"
    assert _has_colour(legend, pictures.NO_DATA_COLOUR)
    assert (drawn[3 * box: -2 * box] == 0).all(), "nothing drawn between the title and the legend"
    assert not _has_colour(_decorated(width, height, demo=False), pictures.DEMO_MARK_COLOUR)


def test_the_shipped_legend_is_the_one_the_palette_draws():
    """``python -m satpy_prenet.pictures`` redraws it after a change of colours or classes."""
    with Image.open(pictures.LEGEND) as shipped:
        shipped = np.asarray(shipped.convert("RGBA"), dtype=int)
    drawn = np.asarray(pictures.draw_legend(), dtype=int)
    assert shipped.shape == drawn.shape
    assert np.abs(shipped - drawn).mean() < 2, "the text may be smoothed slightly differently, not the colours"
    for _, colour in pictures.RAIN_CLASSES:
        assert _has_colour(shipped, colour)


def test_the_legend_fits_narrow_pictures():
    drawn = _decorated(256, 200, demo=False)
    assert _has_colour(drawn[-30:], pictures.NO_DATA_COLOUR), "the last box of the legend is on the picture"


def test_text_shrinks_on_narrow_pictures_but_stays_readable():
    assert pictures.font_size(2748) == pictures.FONT_SIZE
    assert 10 <= pictures.font_size(256) < pictures.font_size(1024) < pictures.FONT_SIZE


def test_the_rain_palette_has_one_colour_per_class_and_is_transparent_when_dry():
    palette = pictures.RAIN_RATE_PALETTE
    assert palette["values"] == sorted(palette["values"])
    assert [colour[3] for colour in palette["colors"]] == [0, 0] + [255] * len(pictures.RAIN_CLASSES)
    assert palette["values"][2] == 0.1, "colours start at the rain threshold"


def test_retrieve_pictures_tell_space_dry_no_data_and_rain(agri_files, no_weights_env, tmp_path):
    """On a region with space, the limb and a block of dead 10.8 um pixels, away from the decorations."""
    source = agri_files["FY-4A"]
    damaged = tmp_path / source.name
    shutil.copy(source, damaged)
    with h5py.File(damaged, "r+") as h5:
        counts = h5["NOMChannel12"]
        block = counts[...]
        block[150:200, 150:200] = counts.attrs["FillValue"][0]
        counts[...] = block
    products = retrieve_file(damaged, tmp_path / "out")
    with xr.open_dataset(products.netcdf) as written:
        quality = written["precipitation_quality"].values[0]
        rate = written["precipitation_rate"].values[0]
    rows = slice(70, 220)  # between the title and demo mark boxes and the legend
    quality, rate = quality[rows], rate[rows]
    space = quality == QUALITY_FLAGS["space"]
    no_data = quality == QUALITY_FLAGS["invalid_input"]
    dry = ~space & ~no_data & (rate == 0)
    rain = ~space & ~no_data & (rate >= 0.5)
    assert space.any() and no_data.any() and dry.any() and rain.any()

    rate_map = np.asarray(Image.open(products.image).convert("RGB"))[rows]
    space_colour = tuple(pictures.DISC_PALETTE["colors"][QUALITY_FLAGS["space"]][:3])
    assert (rate_map[space] == space_colour).all()
    assert (rate_map[no_data] == pictures.NO_DATA_COLOUR).all()
    assert (rate_map[dry] == 255).all()
    assert not (rate_map[rain] == 255).all(axis=-1).any(), "rain is coloured"

    on_ir = np.asarray(Image.open(products.quicklook).convert("RGB")).astype(int)[rows]
    assert (on_ir[space] == on_ir[space][0]).all() and on_ir[space].max() <= 5, "space black"
    assert (on_ir[no_data] == pictures.NO_DATA_COLOUR).all()
    grey = on_ir[dry]
    assert (grey[:, 0] == grey[:, 1]).all() and (grey[:, 1] == grey[:, 2]).all(), "the background is grey"
    assert np.ptp(grey[:, 0]) > 50, "the grey shows the clouds"
    coloured = on_ir[rain]
    assert (np.ptp(coloured, axis=-1) > 0).all(), "rain in colour over the grey"


def test_coastlines_are_drawn_from_gshhg_shapefiles(agri_files, no_weights_env, tmp_path):
    """A GSHHG-layout shapefile of one 4 x 2 degree 'island': the pictures change along its outline, only there."""
    shapefile = pytest.importorskip("shapefile")  # pyshp, installed with pycoast
    plain = retrieve_file(agri_files["FY-4A"], tmp_path / "plain", lonlats=True)
    with xr.open_dataset(plain.netcdf) as written:
        lon, lat = written["longitude"].values, written["latitude"].values
    lon0, lat0 = lon[160, 128], lat[160, 128]
    folder = tmp_path / "gshhg" / "GSHHS_shp" / "i"
    folder.mkdir(parents=True)
    with shapefile.Writer(str(folder / "GSHHS_i_L1"), shapeType=shapefile.POLYGON) as island:
        island.field("id", "N")
        steps = np.linspace(-1, 1, 21)  # vertices every 0.1-0.2 degree, as GSHHG's: pycoast joins them straight
        ring = ([(lon0 - 2, lat0 + 1 * step) for step in steps] + [(lon0 + 2 * step, lat0 + 1) for step in steps]
                + [(lon0 + 2, lat0 - 1 * step) for step in steps] + [(lon0 - 2 * step, lat0 - 1) for step in steps])
        island.poly([[(float(x), float(y)) for x, y in ring]])
        island.record(1)
    with_coasts = retrieve_file(agri_files["FY-4A"], tmp_path / "coasts", coasts=tmp_path / "gshhg")

    inside = (np.abs(lon - lon0) <= 2) & (np.abs(lat - lat0) <= 1)  # about 50 x 40 pixels
    pixels_from_outline = ndimage.distance_transform_edt(~(inside ^ ndimage.binary_erosion(inside)))
    for before, after in ((plain.image, with_coasts.image), (plain.quicklook, with_coasts.quicklook)):
        # (pycoast's path rounds the colours differently, by one level: not a change one could see)
        difference = np.asarray(Image.open(before).convert("RGB")) - np.asarray(Image.open(after).convert("RGB"), int)
        changed = np.abs(difference).max(axis=-1) > 8
        assert changed.sum() > 100, after.name
        # within a few pixels: the line is 1.5 pixels wide, smoothed, and straight between the vertices
        assert pixels_from_outline[changed].max() <= 5, f"{after.name}: drawn away from the coastline"


def test_coastlines_need_the_gshhg_folder(tmp_path):
    with pytest.raises(ValueError, match=f"{tmp_path}: no GSHHS_shp folder"):
        pictures.coastline_overlay(tmp_path)


def test_the_chain_worker_decorates_pictures_only_and_marks_the_demo_bundle_without_a_loaded_model(no_weights_env):
    """``decorate_pictures`` on a job whose product list lacks ``load_prenet_model``: the configured bundle (here the
    embedded demo) still decides the mark; a format with its own ``decorate`` and the NetCDF files are left alone."""
    from trollflow2_plugins.prenet import decorate_pictures

    picture = xr.DataArray(np.zeros((300, 500)), dims=("y", "x"), attrs={
        "platform_name": "FY-4A", "start_time": dt.datetime(2026, 7, 15, 6), "long_name": "PRE-Net precipitation rate"})
    own = {"writer": "simple_image", "decorate": {"decorate": []}}
    products = {"precipitation_rate_map": {"formats": [{"writer": PICTURE_WRITER}, own, {"writer": "simple_image"}]},
                "precipitation_rate": {"formats": [{"writer": "cf"}]}}
    job = {"product_list": {"product_list": {"areas": {"None": {"products": products}}}},
           "resampled_scenes": {"None": {"precipitation_rate_map": picture, "precipitation_rate": picture}}}
    decorate_pictures(job)
    decorated = job["product_list"]["product_list"]["areas"]["None"]["products"]
    texts = [item["text"]["txt"] for item in decorated["precipitation_rate_map"]["formats"][0]["decorate"]["decorate"]
             if "text" in item]
    assert texts == ["FY-4A AGRI  2026-07-15 06:00 UTC  PRE-Net precipitation rate", pictures.DEMO_MARK]
    assert decorated["precipitation_rate_map"]["formats"][1] == own
    satpys = decorated["precipitation_rate_map"]["formats"][2]  # satpy's own image writer is decorated too
    assert satpys["decorate"] == decorated["precipitation_rate_map"]["formats"][0]["decorate"]
    assert decorated["precipitation_rate"]["formats"] == [{"writer": "cf"}]
