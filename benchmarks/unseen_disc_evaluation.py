"""`satpy-prenet evaluate` on one simulated full disc that no training saw: PRE-Net beside the baselines.

Simulates a full disc (a seed and a time no training configuration uses), cuts it into 256 x 256 tiles of a Full-IPR
test store (brightness temperatures as satpy reads them from an AGRI file; label = the simulated instantaneous
surface rain at each 4 km pixel, or with ``--label hourly`` the CLDAS-like hourly label that the Full-IPR training
tiles carry), and runs ``satpy-prenet evaluate`` on it with the PRE-Net bundle, the baselines fitted by
``satpy-prenet-train baseline`` (trees, tuned threshold), GPI and the auto-estimator. The report goes to
``benchmarks/results/unseen_disc/`` (report.md, CSV, JSON, figures).

    python benchmarks/unseen_disc_evaluation.py --baselines build/demo-bundle [--bundle FILE] [--seed 41] \
        [--label hourly]
"""

from __future__ import annotations

import argparse
import datetime as dt
import tempfile
from pathlib import Path

import numpy as np
import xarray as xr
from click.testing import CliRunner

from satpy_prenet.channels import IR_BANDS, PAPER_BANDS
from satpy_prenet.cli import main
from satpy_prenet.data.collocation import label_at
from satpy_prenet.data.stores import FULL_IPR, append_tiles, store_path
from satpy_prenet.evaluation.baselines import THRESHOLD_FILE, TREES_FILE
from satpy_prenet.synthetic import World
from satpy_prenet.synthetic.calibration import quantise_bt
from satpy_prenet.synthetic.cldas_file import hourly_truth
from satpy_prenet.synthetic.geometry import DISC_SIZE
from satpy_prenet.synthetic.world import SCAN_INTERVAL, SimulatedScene

TILE = 256
RESULTS = Path(__file__).parent / "results" / "unseen_disc"
#: The labels a disc store can carry, with their description in the store's attributes.
LABELS = {"instantaneous": "instantaneous surface rain",
          "hourly": "CLDAS-like hourly rain (simulated gauge-merging error) of the hour holding the scan"}


def hourly_label(world: World, scene: SimulatedScene) -> np.ndarray:
    """The CLDAS-like hourly rain of the hour holding the scene's start, at each of its pixels (NaN off the grid).

    As the training archive labels Full-IPR tiles: the four 15-minute scenes of the hour (over the scene's window)
    averaged on the 0.0625-degree grid with the simulator's gauge-merging error (`hourly_truth`), then read back at
    each pixel's centre (`label_at`).
    """
    hour = scene.start_time.replace(minute=0, second=0, microsecond=0)
    slots = [hour + k * SCAN_INTERVAL for k in range(4)]
    scenes = (scene if slot == scene.start_time else world.scene(slot, scene.platform, scene.window)
              for slot in slots)
    return label_at(hourly_truth(scenes, seed=world.seed), scene.lon, scene.lat)


def disc_store(root: Path, seed: int, platform: str, time: dt.datetime, label: str = "instantaneous") -> Path:
    """A Full-IPR test store of the simulated disc's tiles that hold any labelled pixel.

    ``label``: ``instantaneous`` (the simulated surface rain at each pixel at the scan time) or ``hourly`` (the
    CLDAS-like hourly label the Full-IPR training tiles carry, :func:`hourly_label`; only the CLDAS domain).
    """
    world = World(seed)
    scene = world.scene(time, platform)
    truth = {"instantaneous": lambda: scene.rain_rate, "hourly": lambda: hourly_label(world, scene)}[label]()
    bt = np.stack([quantise_bt(scene.bt[key], key, platform) for key in PAPER_BANDS])
    starts = sorted({*range(0, DISC_SIZE - TILE + 1, TILE), DISC_SIZE - TILE})
    tiles = [(line, col) for line in starts for col in starts
             if np.isfinite(truth[line:line + TILE, col:col + TILE]).any()]
    dataset = xr.Dataset(
        {"ir": (("tile", "ir_band", "y", "x"), np.stack([bt[:, i:i + TILE, j:j + TILE] for i, j in tiles])),
         "label": (("tile", "y", "x"), np.stack([truth[i:i + TILE, j:j + TILE] for i, j in tiles]))},
        coords={"ir_band": list(PAPER_BANDS),
                "sample_id": ("tile", [f"{platform}-{time:%Y%m%d%H%M}-seed{seed}-{i}-{j}" for i, j in tiles]),
                "line": ("tile", [i for i, _ in tiles]), "column": ("tile", [j for _, j in tiles])})
    attrs = {"split": "test", "simulated": True, "ir_wavelengths_um": [band.wavelength for band in IR_BANDS],
             "world_seed": seed, "world_config": scene.config.describe(), "label": LABELS[label]}
    append_tiles(store_path(root, FULL_IPR, "test"), dataset.astype(np.float32), kind=FULL_IPR, attrs=attrs)
    return root


def main_(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baselines", type=Path, required=True, help="workdir of `satpy-prenet-train baseline`")
    parser.add_argument("--bundle", type=Path, default=None, help="default: the embedded demo bundle")
    parser.add_argument("--seed", type=int, default=41)
    parser.add_argument("--platform", default="FY-4A")
    parser.add_argument("--time", default="2026-08-20T05:00")
    parser.add_argument("--label", choices=list(LABELS), default="instantaneous")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args(argv)
    from satpy_prenet.bundle import embedded_bundle_path

    bundle = args.bundle or embedded_bundle_path()
    with tempfile.TemporaryDirectory() as tmp:
        root = disc_store(Path(tmp), args.seed, args.platform, dt.datetime.fromisoformat(args.time), args.label)
        methods = [bundle, args.baselines / TREES_FILE, args.baselines / THRESHOLD_FILE, "gpi", "autoestimator"]
        command = ["evaluate", "--store", str(root), "--out", str(args.out)]
        for method in methods:
            command += ["--method", str(method)]
        result = CliRunner().invoke(main, command)
    print(result.output)
    if result.exit_code:
        raise SystemExit(result.exit_code)
    note = (f"\nOne simulated {args.platform} full disc, seed {args.seed}, {args.time} UTC (no training uses this seed "
            f"or time), {TILE} x {TILE} tiles, label = the simulated {LABELS[args.label]} at each pixel. "
            f"Made by `python benchmarks/unseen_disc_evaluation.py --baselines {args.baselines} --label {args.label}`."
            "\n")
    with open(args.out / "report.md", "a") as stream:
        stream.write(note)


if __name__ == "__main__":
    main_()
