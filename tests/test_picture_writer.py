"""The ``prenet_picture`` writer: satpy's ``simple_image`` files, with the decorations drawn only when written."""

from __future__ import annotations

import datetime as dt

import dask.array as da
import numpy as np
import pytest
import xarray as xr
from PIL import Image
from satpy.writers.core.config import available_writers, load_writer

from satpy_prenet import pictures
from satpy_prenet.picture_writer import PICTURE_WRITER, PICTURE_WRITER_CONFIG, PictureWriter


def _ours():
    """The writer as ``retrieve`` and the product list's pictures load it (``config_files``)."""
    return load_writer(PICTURE_WRITER, config_files=[str(PICTURE_WRITER_CONFIG)], enhance=False)[0]


def test_satpy_lists_the_writer_through_its_entry_point():
    assert PICTURE_WRITER in available_writers()


def _picture(computed: list, bands=("R", "G", "B", "A")) -> xr.DataArray:
    """A float32 picture in [0, 1] with transparent and NaN pixels; ``computed`` counts the computations."""
    height, width = 240, 700
    rng = np.random.default_rng(3)
    values = rng.random((len(bands), height, width), dtype=np.float32)
    values[:, :20, :30] = np.nan
    if "A" in bands:
        values[-1, 100:140] = 0

    def counted(block):
        computed.append(block.size)
        return block

    data = da.from_array(values, chunks=(len(bands), 120, 350)).map_blocks(counted, meta=values[:0, :0, :0])
    return xr.DataArray(data, dims=("bands", "y", "x"), coords={"bands": list(bands)},
                        attrs={"name": "picture", "start_time": dt.datetime(2026, 7, 1, 6)})


@pytest.mark.parametrize("bands", [("R", "G", "B", "A"), ("R", "G", "B")])
def test_the_files_equal_satpys_and_nothing_is_computed_before_writing(tmp_path, bands):
    decorate = pictures.decoration("FY-4A AGRI title", demo=True, width=700)
    computed: list = []
    satpys = load_writer("simple_image", enhance=False)[0]
    satpys.save_dataset(_picture([], bands), filename=str(tmp_path / "satpy.png"), decorate=decorate,
                        fill_value=0 if len(bands) == 3 else None)

    writer = _ours()
    assert isinstance(writer, PictureWriter)
    delayed = writer.save_dataset(_picture(computed, bands), filename=str(tmp_path / "ours.png"), decorate=decorate,
                                  fill_value=0 if len(bands) == 3 else None, compute=False)
    assert not computed and not (tmp_path / "ours.png").exists()
    da.compute(*delayed)
    assert computed

    writer.save_dataset(_picture([], bands), filename=str(tmp_path / "plain.png"),
                        fill_value=0 if len(bands) == 3 else None)
    ours, theirs, plain = (np.asarray(Image.open(tmp_path / name)).astype(int)
                           for name in ("ours.png", "satpy.png", "plain.png"))
    assert ours.shape == theirs.shape == (240, 700, len(bands))
    assert (ours != plain).any(axis=-1).mean() > 0.05  # the title, the mark and the legend are drawn
    if "A" in bands:
        np.testing.assert_array_equal(ours, theirs)
    else:
        # With a fill value, 8 bits hold the picture in 1-255. satpy draws on the 8-bit picture, turns it back into
        # floats and scales it to 1-255 again: one count off the picture in places. Ours is scaled once.
        assert np.abs(ours - theirs).max() <= 1
        undrawn = (np.abs(theirs - plain) <= 1).all(axis=-1)
        assert undrawn.mean() > 0.5
        np.testing.assert_array_equal(ours[undrawn], plain[undrawn])


def test_the_options_trollflow2_passes_are_taken(tmp_path):
    """trollflow2 passes a format's entries on: ``format`` names the file format, the rest go to PIL."""
    decorate = pictures.decoration("FY-4A AGRI title", demo=True, width=700)
    for level in (0, 9):
        _ours().save_dataset(_picture([]), filename=str(tmp_path / f"ours{level}"), decorate=decorate, format="png",
                             compress_level=level)
    fast, small = (tmp_path / f"ours{level}" for level in (0, 9))
    assert Image.open(fast).format == Image.open(small).format == "PNG"
    np.testing.assert_array_equal(np.asarray(Image.open(fast)), np.asarray(Image.open(small)))
    assert small.stat().st_size < fast.stat().st_size  # level 0 stores the pixels uncompressed


def test_without_decorate_it_is_simple_image(tmp_path):
    _ours().save_dataset(_picture([]), filename=str(tmp_path / "ours.png"))
    load_writer("simple_image", enhance=False)[0].save_dataset(_picture([]), filename=str(tmp_path / "satpy.png"))
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "ours.png")),
                                  np.asarray(Image.open(tmp_path / "satpy.png")))


@pytest.mark.parametrize("decorate", [{"decoration": []}, {"decorate": [{"line": {}}]},
                                      {"decorate": [{"text": {}, "logo": {}}]}])
def test_a_decorate_pydecorate_cannot_draw_is_refused_before_anything_is_computed(tmp_path, decorate):
    computed: list = []
    with pytest.raises(ValueError, match="decorate"):
        _ours().save_dataset(_picture(computed), filename=str(tmp_path / "ours.png"), decorate=decorate,
                            compute=False)
    assert not computed
