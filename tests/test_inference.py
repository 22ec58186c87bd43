"""The retrieval engine with a real small PRE-Net: tiling, blending, dask, batches and GPU memory put together."""

from __future__ import annotations

import logging
from dataclasses import replace

import dask
import dask.array as da
import numpy as np
import pytest
import torch

from satpy_prenet import channels
from satpy_prenet.inference import TiledRetrieval
from satpy_prenet.model import PrecipitationRetriever, preset

BANDS = channels.DAY_NIGHT_BANDS
TILE = 64
OVERLAP = 16


@pytest.fixture(scope="module")
def model() -> PrecipitationRetriever:
    """Untrained small retriever; threshold 0 so that the rate is the regressor's output everywhere."""
    torch.manual_seed(0)
    student = replace(preset("small", in_channels=len(BANDS), out_channels=1), tile_size=TILE)
    retriever = PrecipitationRetriever(student=student, bands=BANDS, probability_threshold=0.0,
                                       mean=[250.0] * len(BANDS), std=[20.0] * len(BANDS)).eval()
    with torch.no_grad():  # untrained, the rate would be clipped to 0 everywhere: make it vary around 0.3 mm/h
        retriever.regressor.head.weight.mul_(50.0)
        retriever.regressor.head.bias.add_(0.5)
    return retriever


@pytest.fixture(scope="module")
def image() -> np.ndarray:
    """A 300 x 400 "disc": NaN outside an ellipse (the corners), plus a few invalid pixels in one channel."""
    rng = np.random.default_rng(1)
    bt = rng.normal(250.0, 15.0, (len(BANDS), 300, 400)).astype(np.float32)
    rows, cols = np.mgrid[:300, :400]
    bt[:, ((rows - 150) / 150) ** 2 + ((cols - 200) / 200) ** 2 > 1] = np.nan
    bt[2, 140:143, 60:70] = np.nan
    return bt


@pytest.fixture(scope="module")
def reference(model, image):
    return TiledRetrieval(model, tile_size=TILE, overlap=OVERLAP, batch_size=4, device="cpu").predict(image)


class _Counting(torch.nn.Module):
    """Passes through to the real model and records the batch sizes it is given."""

    def __init__(self, model):
        super().__init__()
        self.model = model
        self.size_multiple = model.size_multiple
        self.batches = []

    def forward(self, bt):
        self.batches.append(len(bt))
        return self.model(bt)


class _OutOfMemoryAbove(_Counting):
    """Behaves like a GPU too small for more than ``limit`` tiles at once (this cannot be provoked on a CPU)."""

    def __init__(self, model, limit):
        super().__init__(model)
        self.limit = limit

    def forward(self, bt):
        if len(bt) > self.limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return super().forward(bt)


def test_products_are_nan_off_disc_and_physical_on_it(reference, image):
    probability, rate = reference
    invalid = np.isnan(image).any(axis=0)
    assert probability.shape == rate.shape == image.shape[1:]
    assert probability.dtype == rate.dtype == np.float32
    assert np.array_equal(np.isnan(probability), invalid) and np.array_equal(np.isnan(rate), invalid)
    assert invalid[140:143, 60:70].all() and not invalid[150, 200]
    assert np.all((probability[~invalid] >= 0) & (probability[~invalid] <= 1))
    assert np.all(rate[~invalid] >= 0) and rate[~invalid].max() > 0


def test_bfloat16_on_the_cpu_stays_close_to_float32(model, image):
    """``precision="bfloat16"`` on the CPU: not bit-equal, so it really ran in bfloat16, but close. (Two tiles:
    CPUs without bfloat16 instructions emulate it, about 30 times slower.)"""
    crop = image[:, 118:182, 150:262]
    fast, exact = (TiledRetrieval(model, tile_size=TILE, overlap=OVERLAP, device="cpu", precision=precision)
                   .predict(crop) for precision in ("bfloat16", "float32"))
    for got, want in zip(fast, exact, strict=True):
        valid = np.isfinite(want)
        np.testing.assert_array_equal(np.isfinite(got), valid)
        difference = np.abs(got[valid] - want[valid])
        assert 0 < difference.max() and difference.mean() < 0.02 * np.abs(want[valid]).mean()


def test_an_unknown_precision_is_refused(model):
    with pytest.raises(ValueError, match="unknown precision 'half'"):
        TiledRetrieval(model, tile_size=TILE, device="cpu", precision="half")


def test_results_do_not_depend_on_batch_size(model, image):
    crop = np.ascontiguousarray(image[:, :160, :200])  # a corner: space and disc
    results = [TiledRetrieval(model, tile_size=TILE, overlap=OVERLAP, batch_size=batch_size, device="cpu").predict(crop)
               for batch_size in (1, 3, 16)]
    assert np.isnan(results[0][0]).any() and np.isfinite(results[0][0]).any()
    for probability, rate in results[1:]:
        np.testing.assert_allclose(probability, results[0][0], atol=1e-5, rtol=0)
        np.testing.assert_allclose(rate, results[0][1], atol=1e-5, rtol=0)


def test_chunked_dask_equals_whole_image(model, image, reference):
    engine = TiledRetrieval(model, tile_size=TILE, overlap=OVERLAP, batch_size=4, device="cpu")
    for chunks in ((len(BANDS), 128, 128), (2, 100, 150), (len(BANDS), 300, 70)):
        probability, rate = engine.retrieve_dask(da.from_array(image, chunks=chunks), min_block=TILE)
        assert probability.dtype == np.float32 and isinstance(probability._meta, np.ndarray)
        assert probability.shape == rate.shape == image.shape[1:]
        with dask.config.set(scheduler="threads", num_workers=2):
            probability, rate = da.compute(probability, rate)
        np.testing.assert_allclose(probability, reference[0], atol=1e-5, rtol=0)
        np.testing.assert_allclose(rate, reference[1], atol=1e-5, rtol=0)
        assert np.array_equal(np.isnan(probability), np.isnan(reference[0]))


def test_small_chunks_are_merged_into_blocks_of_min_block(model, image):
    engine = TiledRetrieval(model, tile_size=TILE, overlap=OVERLAP, device="cpu")
    bt = da.from_array(image, chunks=(len(BANDS), 70, 90))
    probability, _ = engine.retrieve_dask(bt, min_block=2 * TILE)
    assert min(probability.chunks[0][:-1] + probability.chunks[1][:-1]) >= 2 * TILE
    whole, _ = engine.retrieve_dask(bt)  # the default, 8 tiles, is larger than this image
    assert whole.numblocks == (1, 1)


def test_dask_graph_names_are_stable_for_one_model(model, image):
    bt = da.from_array(image, chunks=(len(BANDS), 150, 200))
    first = TiledRetrieval(model, tile_size=TILE, overlap=OVERLAP, device="cpu").retrieve_dask(bt, name_token="abc")
    second = TiledRetrieval(model, tile_size=TILE, overlap=OVERLAP, device="cpu").retrieve_dask(bt, name_token="abc")
    other = TiledRetrieval(model, tile_size=TILE, overlap=OVERLAP, device="cpu").retrieve_dask(bt, name_token="xyz")
    assert first[0].name == second[0].name and first[1].name == second[1].name
    assert first[0].name != other[0].name


def test_block_with_halo_equals_whole_image(model, image, reference):
    engine = TiledRetrieval(model, tile_size=TILE, overlap=OVERLAP, device="cpu")
    padded = np.pad(image, ((0, 0), (TILE, TILE), (TILE, TILE)), constant_values=np.nan)
    rows, cols = slice(100, 220), slice(130, 270)
    block = padded[:, rows.start:rows.stop + 2 * TILE, cols.start:cols.stop + 2 * TILE]
    probability, rate = engine.predict_block(block, (rows.start, cols.start), image.shape[1:], TILE)
    np.testing.assert_allclose(probability, reference[0][rows, cols], atol=1e-5, rtol=0)
    np.testing.assert_allclose(rate, reference[1][rows, cols], atol=1e-5, rtol=0)
    with pytest.raises(ValueError, match="halo is too narrow"):
        engine.predict_block(block[:, 40:-40, 40:-40], (rows.start, cols.start), image.shape[1:], TILE - 40)


def test_space_tiles_are_skipped(model):
    bt = np.full((len(BANDS), 128, 256), np.nan, dtype=np.float32)
    bt[:, :, 200:] = 260.0
    counting = _Counting(model)
    engine = TiledRetrieval(counting, tile_size=TILE, overlap=OVERLAP, batch_size=16, device="cpu")
    probability, rate = engine.predict(bt)
    stride = TILE - OVERLAP
    starts = [(top, left) for top in range(0, 128 - OVERLAP, stride) for left in range(0, 256 - OVERLAP, stride)]
    needed = [start for start in starts if np.isfinite(bt[0, start[0]:start[0] + TILE, start[1]:start[1] + TILE]).any()]
    assert 0 < len(needed) < len(starts)
    assert sum(counting.batches) == len(needed)
    assert np.isnan(probability[:, :200]).all() and np.isfinite(probability[:, 200:]).all()
    counting.batches.clear()
    probability, rate = engine.predict(np.full((len(BANDS), 100, 100), np.nan, dtype=np.float32))
    assert counting.batches == [] and np.isnan(probability).all() and np.isnan(rate).all()


def test_tiling_options_are_checked(model):
    assert TiledRetrieval(model, tile_size=128, device="cpu").overlap == 16
    assert TiledRetrieval(model, tile_size=256, device="cpu").overlap == 32
    with pytest.raises(ValueError, match="multiple of the model's size multiple 16"):
        TiledRetrieval(model, tile_size=100, device="cpu")
    with pytest.raises(ValueError, match="overlap 8"):
        TiledRetrieval(model, tile_size=TILE, overlap=8, device="cpu")
    with pytest.raises(ValueError, match="batch_size"):
        TiledRetrieval(model, tile_size=TILE, batch_size=0, device="cpu")


def test_out_of_memory_halves_the_batch(model, image, reference, caplog):
    flaky = _OutOfMemoryAbove(model, limit=2)
    engine = TiledRetrieval(flaky, tile_size=TILE, overlap=OVERLAP, batch_size=8, device="cpu")
    with caplog.at_level(logging.WARNING, logger="satpy_prenet.inference"):
        probability, rate = engine.predict(image)
    assert engine.batch_size == 2 and max(flaky.batches) == 2
    assert "out of memory" in caplog.text and "retrying with 4" in caplog.text
    np.testing.assert_allclose(probability, reference[0], atol=1e-5, rtol=0)
    np.testing.assert_allclose(rate, reference[1], atol=1e-5, rtol=0)


def test_progress_bar_only_when_asked(model, capsys):
    bt = np.full((len(BANDS), 64, 64), 250.0, dtype=np.float32)
    TiledRetrieval(model, tile_size=TILE, device="cpu").predict(bt)
    assert capsys.readouterr().err == ""
    TiledRetrieval(model, tile_size=TILE, device="cpu", progress=True).predict(bt)
    assert "tile" in capsys.readouterr().err


def test_engine_pickles_for_distributed_workers(model, image, reference):
    import pickle

    engine = pickle.loads(pickle.dumps(TiledRetrieval(model, tile_size=TILE, overlap=OVERLAP, device="cpu")))
    probability, rate = engine.predict(image)
    np.testing.assert_allclose(rate, reference[1], atol=1e-5, equal_nan=True)
