"""The tile grid and the dask adapter on their own, with numpy "models" whose right answer is known."""

from __future__ import annotations

import dask
import dask.array as da
import numpy as np
import pytest

from satpy_prenet.inference.lazy import retrieve_dask
from satpy_prenet.inference.tiling import TileGrid, blend_window, seam_contrast

TILE, OVERLAP = 32, 8


def pointwise(count, fill, *, channels=3):
    """A "model" whose outputs at a pixel depend on that pixel only: the channel mean and the channel maximum."""
    buffer = np.empty((channels, TILE, TILE), dtype=np.float32)
    for index in range(count):
        fill(buffer, index)
        yield range(index, index + 1), np.stack([buffer.mean(axis=0), buffer.max(axis=0)])[None]


def image(shape=(3, 90, 130), seed=0) -> np.ndarray:
    bt = np.random.default_rng(seed).normal(250.0, 15.0, shape).astype(np.float32)
    bt[:, :10, :17] = np.nan  # space in a corner
    bt[1, 50, 60] = np.nan  # one invalid pixel in one channel
    return bt


def test_blend_window_is_positive_everywhere():
    window = blend_window(TILE, OVERLAP)
    assert window.shape == (TILE, TILE) and window.dtype == np.float32
    assert window.min() > 0 and window[OVERLAP:-OVERLAP, OVERLAP:-OVERLAP].min() == 1
    np.testing.assert_allclose(window, window.T)
    np.testing.assert_allclose(window, window[::-1, ::-1])
    assert np.all(blend_window(TILE, 0) == 1)


def test_blending_a_pointwise_model_gives_it_back_exactly():
    bt = image()
    grid = TileGrid(TILE, OVERLAP)
    blended = grid.blend(bt, (0, 0), bt.shape[1:], (0, *bt.shape[1:2], 0, bt.shape[2]), pointwise, outputs=2)
    invalid = np.isnan(bt).any(axis=0)
    assert np.array_equal(np.isnan(blended[0]), invalid) and np.array_equal(np.isnan(blended[1]), invalid)
    np.testing.assert_allclose(blended[0][~invalid], bt.mean(axis=0)[~invalid], rtol=1e-5)
    np.testing.assert_allclose(blended[1][~invalid], bt.max(axis=0)[~invalid], rtol=1e-5)


def test_tile_interiors_keep_their_own_tile_and_overlaps_mix_both():
    """A "model" answering each tile's index: one tile's interior is that index, the overlap lies between two."""
    grid = TileGrid(TILE, OVERLAP)
    bt = np.full((1, TILE, 2 * TILE), 250.0, dtype=np.float32)

    def indexed(count, fill):
        buffer = np.empty((1, TILE, TILE), dtype=np.float32)
        for index in range(count):
            fill(buffer, index)
            yield range(index, index + 1), np.full((1, 1, TILE, TILE), float(index), dtype=np.float32)

    (blended,) = grid.blend(bt, (0, 0), bt.shape[1:], (0, TILE, 0, 2 * TILE), indexed, outputs=1)
    stride = grid.stride
    assert grid.starts((0, TILE, 0, 2 * TILE), bt.shape[1:]) == [(0, 0), (0, stride), (0, 2 * stride)]
    assert np.all(blended[:, :stride] == 0)  # the first tile alone
    mixed = blended[TILE // 2, stride:TILE]
    assert np.all((mixed > 0) & (mixed < 1)) and np.all(np.diff(mixed) > 0)  # a smooth hand-over


def test_a_block_with_its_halo_equals_the_whole_image():
    bt = image()
    grid = TileGrid(TILE, OVERLAP)
    whole = grid.blend(bt, (0, 0), bt.shape[1:], (0, 90, 0, 130), pointwise, outputs=2)
    origin = (40 - TILE, 50 - TILE)
    window = bt[:, 40 - TILE:70 + TILE, 50 - TILE:90 + TILE]
    block = grid.blend(window, origin, bt.shape[1:], (40, 70, 50, 90), pointwise, outputs=2)
    np.testing.assert_array_equal(block, whole[:, 40:70, 50:90])
    with pytest.raises(ValueError, match="halo is too narrow"):
        grid.blend(window[:, 20:, 20:], (origin[0] + 20, origin[1] + 20), bt.shape[1:], (40, 70, 50, 90), pointwise,
                   outputs=2)


def test_tiles_without_a_valid_pixel_are_not_run():
    grid = TileGrid(TILE, OVERLAP)
    bt = np.full((3, 64, 128), np.nan, dtype=np.float32)
    bt[:, :, 100:] = 260.0
    asked = []

    def counting(count, fill):
        asked.append(count)
        return pointwise(count, fill)

    blended = grid.blend(bt, (0, 0), bt.shape[1:], (0, 64, 0, 128), counting, outputs=2)
    starts = grid.starts((0, 64, 0, 128), bt.shape[1:])
    needed = [(top, left) for top, left in starts if left + TILE > 100]
    assert 0 < asked[0] == len(needed) < len(starts)
    assert np.isnan(blended[:, :, :100]).all() and np.isfinite(blended[:, :, 100:]).all()


def test_grid_sizes_are_checked():
    with pytest.raises(ValueError, match="tile_size must be positive"):
        TileGrid(0, 0)
    with pytest.raises(ValueError, match=r"overlap 32 must be in \[0, 32\)"):
        TileGrid(TILE, TILE)


class NumpyEngine:
    """The adapter's protocol on the pointwise "model": its correct chunked answer is known."""

    tile_size, overlap, token = TILE, OVERLAP, "pointwise"

    def __init__(self):
        self.grid = TileGrid(TILE, OVERLAP)

    def predict_block(self, bt_block, block_origin, image_shape, halo):
        _, rows, cols = bt_block.shape
        core = (block_origin[0], block_origin[0] + rows - 2 * halo[0], block_origin[1],
                block_origin[1] + cols - 2 * halo[1])
        origin = (block_origin[0] - halo[0], block_origin[1] - halo[1])
        return tuple(self.grid.blend(bt_block, origin, image_shape, core, pointwise, outputs=2))


@pytest.mark.parametrize("chunks", [(3, 90, 130), (3, 40, 50), (1, 90, 20)])
def test_dask_adapter_equals_the_whole_image_for_any_chunks(chunks):
    bt = image()
    engine = NumpyEngine()
    whole = engine.grid.blend(bt, (0, 0), bt.shape[1:], (0, 90, 0, 130), pointwise, outputs=2)
    lazy = retrieve_dask(engine, da.from_array(bt, chunks=chunks))
    assert all(array.dtype == np.float32 and array.shape == bt.shape[1:] for array in lazy)
    with dask.config.set(scheduler="threads", num_workers=2):
        computed = da.compute(*lazy)
    np.testing.assert_array_equal(np.stack(computed), whole)


def test_dask_task_names_follow_the_model_token():
    bt = da.from_array(image(), chunks=(3, 45, 65))
    first, second = retrieve_dask(NumpyEngine(), bt), retrieve_dask(NumpyEngine(), bt)
    other = retrieve_dask(NumpyEngine(), bt, name_token="another model")
    assert first[0].name == second[0].name and first[1].name == second[1].name
    assert first[0].name != other[0].name


def test_seam_contrast_sees_steps_at_tile_hand_overs_only():
    grid = TileGrid(TILE, OVERLAP)
    rng = np.random.default_rng(3)
    noise = rng.normal(0.0, 0.1, (200, 200))
    assert 0.9 < seam_contrast(noise, grid) < 1.1
    rows, cols = np.meshgrid(np.arange(200) // grid.stride, np.arange(200) // grid.stride, indexing="ij")
    stepped = noise + 0.5 * ((rows + cols) % 2)  # each tile its own level
    assert seam_contrast(stepped, grid) > 1.25
    assert seam_contrast(stepped, grid, origin=(grid.stride // 2, grid.stride // 2)) < 1  # the steps lie elsewhere
    with pytest.raises(ValueError, match="too few valid"):
        seam_contrast(np.full((50, 50), np.nan), grid)
