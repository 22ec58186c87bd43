"""The embedded bundle's product shows no seams at tile hand-overs, on a disc region no training saw."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pytest

from satpy_prenet.bundle import embedded_bundle_path, load_bundle
from satpy_prenet.inference import TiledRetrieval
from satpy_prenet.inference.tiling import seam_contrast
from satpy_prenet.synthetic import World, quantise_bt
from satpy_prenet.synthetic.geometry import DISC_SIZE, Window

#: A southern-hemisphere window (outside the CLDAS domain of the training tiles) of a seed and time no training uses.
ORIGIN, SIZE = (1800, 1152), 640
#: Seam contrast of the probability with blended tiles stayed within 0.85-1.21 over the windows and overlaps of
#: benchmarks/tile_seams.py, and rose to 1.41-3.24 with abutting tiles (no overlap): the bound lies between.
BOUND = 1.3


@pytest.fixture(scope="module")
def unseen():
    """The bundle and the brightness temperatures of the window, padded with a NaN halo of one tile."""
    bundle = load_bundle(embedded_bundle_path(), "cpu")
    scene = World(41).scene(dt.datetime(2026, 8, 3, 6), "FY-4A",
                            Window(ORIGIN[0], ORIGIN[0] + SIZE, ORIGIN[1], ORIGIN[1] + SIZE))
    bt = np.stack([quantise_bt(scene.bt[key], key, "FY-4A") for key in bundle.header.bands]).astype(np.float32)
    size = bundle.header.tile_size
    return bundle, np.pad(bt, ((0, 0), (size, size), (size, size)), constant_values=np.nan)


def probability(bundle, block, overlap=None):
    engine = TiledRetrieval.from_bundle(bundle, overlap=overlap, device="cpu")
    result, _ = engine.predict_block(block, ORIGIN, (DISC_SIZE, DISC_SIZE), engine.tile_size)
    return result, engine.grid


def test_default_tiling_leaves_no_seam(unseen):
    bundle, block = unseen
    result, grid = probability(bundle, block)
    assert np.isfinite(result).mean() > 0.99
    assert seam_contrast(result, grid, ORIGIN) < BOUND


def test_abutting_tiles_show_their_seams(unseen):
    """The statistic sees seams where there are some: tiles without overlap, hence without blending."""
    bundle, block = unseen
    result, grid = probability(bundle, block, overlap=0)
    assert seam_contrast(result, grid, ORIGIN) > BOUND
