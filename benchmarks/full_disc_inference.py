"""Benchmark: PRE-Net inference over one AGRI full disc (2748 x 2748), wall time and peak memory.

Each configuration runs in a fresh process so its peak memory is its own: the process loads the brightness
temperatures of a simulated FY-4A full disc (simulated once by the parent, so the simulation's memory does not
count) and runs both networks (classifier and regressor) over them, as in operations; tiles in space are
skipped. Weights are random: timing does not depend on them.

    python benchmarks/full_disc_inference.py [--configs small paper] [--device cpu|cuda] [--threads N]

Results go to benchmarks/results/full_disc_inference_<device>.json and .md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


def machine(device: str) -> dict:
    """What the figures were measured on."""
    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    info = {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)}
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def simulate_input(path: Path) -> None:
    """Brightness temperatures (8, 2748, 2748) of a simulated FY-4A full disc, as satpy's reader returns them."""
    import numpy as np

    from satpy_prenet.channels import PAPER_BANDS
    from satpy_prenet.synthetic import World, quantise_bt

    scene = World(seed=1).scene(dt.datetime(2026, 7, 15, 6), "FY-4A")
    np.save(path, np.stack([quantise_bt(scene.bt[key], key, "FY-4A") for key in PAPER_BANDS]).astype(np.float32))


def run_one(config: str, device: str, batch_size: int | None, input_path: Path) -> dict:
    """Time one full disc with a random-weight retriever of preset ``config`` (runs in a child process)."""
    import numpy as np
    import torch

    from satpy_prenet.channels import PAPER_BANDS
    from satpy_prenet.inference import TiledRetrieval
    from satpy_prenet.model import PrecipitationRetriever
    from satpy_prenet.model.config import preset

    bt = np.load(input_path)
    student = preset(config, in_channels=len(PAPER_BANDS), out_channels=1)
    torch.manual_seed(0)
    retriever = PrecipitationRetriever(student=student, bands=PAPER_BANDS,
                                       mean=np.nanmean(bt[:, ::16, ::16], axis=(1, 2)).tolist(),
                                       std=np.nanstd(bt[:, ::16, ::16], axis=(1, 2)).tolist())
    engine = TiledRetrieval(retriever, tile_size=student.tile_size, batch_size=batch_size, device=device)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    started = time.perf_counter()
    probability, rate = engine.predict(bt)
    if engine.device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    result = {
        "config": config,
        "parameters_per_network": sum(p.numel() for p in retriever.classifier.parameters()),
        "tile_size": engine.tile_size, "overlap": engine.overlap, "batch_size": engine.batch_size,
        "device": str(engine.device), "wall_seconds": round(seconds, 2),
        "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "rss_before_inference_mib": round(rss_before, 1),
        "disc_pixels_finite": int(np.isfinite(rate).sum()),
    }
    if engine.device.type == "cuda":
        result["peak_gpu_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=["small", "paper"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--input", type=Path, default=Path(tempfile.gettempdir()) / "prenet_full_disc_bt.npy",
                        help="cache of the simulated brightness temperatures")
    args = parser.parse_args()
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.child:
        print(json.dumps(run_one(args.child, args.device, args.batch_size, args.input)))
        return
    if not args.input.exists():
        simulate_input(args.input)
    results = []
    for config in args.configs:
        command = [sys.executable, __file__, "--child", config, "--device", args.device, "--input", str(args.input)]
        command += ["--threads", str(args.threads)] if args.threads else []
        command += ["--batch-size", str(args.batch_size)] if args.batch_size else []
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        results.append(json.loads(output.strip().splitlines()[-1]))
        print(json.dumps(results[-1]))
    report = {"benchmark": "full-disc inference, 2748 x 2748, both networks", "date": dt.date.today().isoformat(),
              "machine": machine(args.device), "results": results}
    RESULTS.mkdir(exist_ok=True)
    stem = RESULTS / f"full_disc_inference_{args.device.split(':')[0]}"
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [f"# Full-disc inference ({report['date']})", "", f"Machine: {json.dumps(report['machine'])}", "",
             "| config | params/network | tile | batch | device | wall s | peak RSS MiB |",
             "|---|---|---|---|---|---|---|"]
    lines += [f"| {r['config']} | {r['parameters_per_network'] / 1e6:.2f} M | {r['tile_size']} | {r['batch_size']} "
              f"| {r['device']} | {r['wall_seconds']} | {r['peak_rss_mib']} |" for r in results]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
