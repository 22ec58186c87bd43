"""Benchmark: how much the tiling shows in the product, against the tile overlap, on discs no training saw.

For windows of a simulated full disc of a seed and time no training configuration uses (the CLDAS domain the Full-IPR
tiles come from, and three regions outside it: the southern hemisphere and both limbs), and one window not made by
the simulator at all (`independent_bt`), runs a bundle tiled with each overlap and reports:

- the seam contrast of the probability and of the rate (`satpy_prenet.inference.tiling.seam_contrast`: change
  between neighbouring pixels where tiles hand over, against elsewhere; 1 when the tiling leaves no trace);
- the grid dependence: the tiled result against the same window run with the tile grid shifted by half a stride
  (mean |dP| and the share of rain flags that flip), i.e. how much a pixel's answer depends on where tiles start;
- the tiles run per window (the cost: inference time is proportional to it).

    python benchmarks/tile_seams.py [--bundle FILE] [--overlaps 16 32 48] [--threads 1]

Writes ``benchmarks/results/tile_seams.{json,md}``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path

import numpy as np
import torch

from satpy_prenet.bundle import embedded_bundle_path, load_bundle
from satpy_prenet.inference import TiledRetrieval, gate_rate
from satpy_prenet.inference.tiling import seam_contrast
from satpy_prenet.synthetic import World, quantise_bt
from satpy_prenet.synthetic.geometry import DISC_SIZE, Window

RESULTS = Path(__file__).parent / "results"
SEED, TIME, PLATFORM = 41, dt.datetime(2026, 8, 3, 6, 0), "FY-4A"
SIZE = 640
DISC_SHAPE = (DISC_SIZE, DISC_SIZE)
#: Window origins (line, column) on the 2748-pixel disc: inside the CLDAS domain, then outside it.
WINDOWS = {"cldas-domain": (640, 1280), "south": (1800, 1152), "limb-east": (1152, 2048), "limb-west": (1152, 64)}


def window_bt(bands, origin) -> np.ndarray:
    """Brightness temperatures (C, SIZE, SIZE) of one window of the unseen disc, quantised as AGRI's L1 counts."""
    line, col = origin
    scene = World(SEED).scene(TIME, PLATFORM, Window(line, line + SIZE, col, col + SIZE))
    return np.stack([quantise_bt(scene.bt[key], key, PLATFORM) for key in bands]).astype(np.float32)


def independent_bt(bands, seed: int = 7) -> np.ndarray:
    """A window not made by the simulator: smooth random cloud tops (295 K clear, 200 K deepest) and band offsets.

    Crude on purpose: its textures and band relations are unlike anything the model was trained on, which is where
    the tiling shows most (a model answers such inputs from the context its tile happens to hold).
    """
    from scipy.ndimage import gaussian_filter

    field = gaussian_filter(np.random.default_rng(seed).normal(size=(SIZE, SIZE)), 12)
    cloud = (np.argsort(np.argsort(field, axis=None)).reshape(field.shape) / field.size) ** 3  # 0 clear .. 1 deep
    top = 295.0 - 95.0 * cloud
    offsets = {"IR3.72H": 4.0, "IR3.72L": 4.0, "IR8.50": -2.0, "IR10.8": 0.0, "IR12.0": -1.5}
    ceilings = {"WV6.25": 238.0, "WV7.10": 252.0, "IR13.5": 262.0}
    return np.stack([np.minimum(top, ceilings[key]) if key in ceilings else top + offsets[key]
                     for key in bands]).astype(np.float32)


def measure(bundle, bt: np.ndarray, origin: tuple[int, int], overlap: int) -> dict:
    """Seam contrast, grid dependence and tiles run for one window and overlap."""
    header = bundle.header
    engine = TiledRetrieval.from_bundle(bundle, overlap=overlap, device="cpu")
    grid, size = engine.grid, engine.tile_size
    # The window keeps its place on the disc (the grid is anchored at the disc's pixel (0, 0)); NaN beyond it.
    block = np.pad(bt, ((0, 0), (size, size), (size, size)), constant_values=np.nan)
    probability, rate = engine.predict_block(block, origin, DISC_SHAPE, size)
    rate = gate_rate(probability, rate, header.probability_threshold, header.rain_threshold)
    shift = grid.stride // 2  # the same pixels placed half a stride earlier on the grid
    shifted, _ = engine.predict_block(block[:, shift:, shift:], origin, DISC_SHAPE, size)
    reference, shifted = probability[shift:, shift:], shifted[:SIZE - shift, :SIZE - shift]
    valid = np.isfinite(reference) & np.isfinite(shifted)
    flips = (reference >= header.probability_threshold) != (shifted >= header.probability_threshold)
    core = (origin[0], origin[0] + SIZE, origin[1], origin[1] + SIZE)
    finite = np.isfinite(bt).all(axis=0)
    tiles = sum(finite[grid.placement(*start, core)[:2]].any() for start in grid.starts(core, DISC_SHAPE))
    return {"overlap": overlap, "tiles": int(tiles),
            "seam_contrast_probability": round(seam_contrast(probability, grid, origin), 3),
            "seam_contrast_rate": round(seam_contrast(rate, grid, origin), 3),
            "rain_fraction": round(float(np.nanmean(rate > 0)), 4),
            "grid_shift_mean_abs_dp": round(float(np.abs(reference - shifted)[valid].mean()), 4),
            "grid_shift_flag_flips": round(float(flips[valid].mean()), 5)}


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=None, help="weights bundle (default: the embedded demo one)")
    parser.add_argument("--overlaps", type=int, nargs="+", default=[16, 32, 48])
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    path = args.bundle or embedded_bundle_path()
    bundle = load_bundle(path, "cpu")
    rows = []
    windows = {name: (origin, window_bt(bundle.header.bands, origin)) for name, origin in WINDOWS.items()}
    windows["not-simulated"] = (WINDOWS["cldas-domain"], independent_bt(bundle.header.bands))
    for name, (origin, bt) in windows.items():
        for overlap in args.overlaps:
            row = {"window": name, "origin": list(origin), **measure(bundle, bt, origin, overlap)}
            print(json.dumps(row), flush=True)
            rows.append(row)
    RESULTS.mkdir(exist_ok=True)
    record = {"bundle": path.name, "bundle_sha256": bundle.header.sha256, "seed": SEED, "time": TIME.isoformat(),
              "platform": PLATFORM, "window_size": SIZE, "tile_size": bundle.header.tile_size, "rows": rows}
    (RESULTS / "tile_seams.json").write_text(json.dumps(record, indent=1))
    lines = [f"# Tile seams against the overlap ({path.name}, simulated data)", "",
             f"Unseen simulated disc (seed {SEED}, {TIME:%Y-%m-%d %H:%M} UTC, {PLATFORM}), {SIZE} x {SIZE} windows, "
             f"tiles of {bundle.header.tile_size}. Seam contrast: 1 = no trace of the tiling. Grid shift: the same "
             "window with the tile grid moved by half a stride.", "",
             "| window | overlap | tiles | seam contrast P | seam contrast rate | rain fraction | grid shift mean dP "
             "| grid shift flag flips |", "|---|---|---|---|---|---|---|---|"]
    lines += [f"| {row['window']} | {row['overlap']} | {row['tiles']} | {row['seam_contrast_probability']} | "
              f"{row['seam_contrast_rate']} | {row['rain_fraction']} | {row['grid_shift_mean_abs_dp']} | "
              f"{row['grid_shift_flag_flips']:.3%} |" for row in rows]
    (RESULTS / "tile_seams.md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
