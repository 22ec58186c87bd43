"""Benchmark: PRE-Net inference over one AGRI full disc (2748 x 2748), wall time, peak memory and precision.

Each configuration runs in a fresh process so its peak memory is its own: the process loads the brightness
temperatures of a simulated FY-4A full disc (simulated once by the parent, so the simulation's memory does not
count) and runs both networks (classifier and regressor) over them, as in operations; tiles in space are
skipped. Weights are random (timing does not depend on them) unless ``--bundle`` gives a trained bundle, whose
preset is then the one timed.

Each precision (``--precisions``, `satpy_prenet.device.PRECISIONS`) and form of the model (``--forms``, `FORMS`)
is compared with the first one on the same disc: mean and largest |dP|, the share of rain flags that differ, and,
with a bundle, the skill of each against the disc's simulated rain (seed 1, a world no bundle of the project was
trained on). The forms add the inference levers one by one, from the straightforward path (the network as trained,
both networks on every tile) to the one the product runs (`satpy_prenet.model.inference_form` and the retriever's
own forward, which skips the regressor on tiles where the classifier sees no rain).

    python benchmarks/full_disc_inference.py [--configs small paper] [--device cpu|cuda] [--threads N]
        [--precisions float32 bfloat16] [--forms straightforward channels-last folded product]
        [--bundle satpy_prenet/weights/demo-small.safetensors] [--crop N] [--tag NAME]

Results go to benchmarks/results/full_disc_inference_<device>[_<bundle stem>][_crop<N>][_<tag>].json and .md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).parent / "results"
#: Forms of the model, each adding one lever to the one before.
FORM_TEXT = {
    "straightforward": "the networks as trained, both on every tile",
    "channels-last": "+ NHWC weights",
    "folded": "+ batch norms folded into the convolutions",
    "product": "+ the regressor skipped on tiles without rain (satpy_prenet.model.inference_form and the "
               "retriever's forward, what the product runs)",
}
FORMS = tuple(FORM_TEXT)


def machine(device: str) -> dict:
    """What the figures were measured on."""
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    info = {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)}
    if device.startswith("cuda"):
        info["gpu"] = torch.cuda.get_device_name(0)
    return info


def simulate_input(path: Path) -> None:
    """Brightness temperatures (8, 2748, 2748) of a simulated FY-4A full disc, as satpy's reader returns them, and
    beside them (``<path>.truth.npy``) the disc's true rain rate."""
    import numpy as np

    from satpy_prenet.channels import PAPER_BANDS
    from satpy_prenet.synthetic import World, quantise_bt

    scene = World(seed=1).scene(dt.datetime(2026, 7, 15, 6), "FY-4A")
    np.save(path, np.stack([quantise_bt(scene.bt[key], key, "FY-4A") for key in PAPER_BANDS]).astype(np.float32))
    np.save(_truth_path(path), scene.rain_rate)


def _truth_path(input_path: Path) -> Path:
    return input_path.with_suffix(".truth.npy")


def run_one(config: str, device: str, batch_size: int | None, input_path: Path, precision: str, form: str,
            bundle: Path | None, output: Path, crop: int | None = None) -> dict:
    """Time one full disc (or its central ``crop`` x ``crop`` pixels) with preset ``config`` at ``precision``, the
    model in ``form`` (runs in a child process); save the outputs."""
    import numpy as np

    from satpy_prenet.bundle import read_header
    from satpy_prenet.channels import PAPER_BANDS
    from satpy_prenet.device import on_device_thread, select_device
    from satpy_prenet.inference import TiledRetrieval

    bt = _cropped(np.load(input_path), crop)
    if bundle is not None:
        header = read_header(bundle)
        bt = bt[[PAPER_BANDS.index(band) for band in header.bands]]
    chosen = select_device(device)
    # Built on the device's thread, as `load_bundle` does: a second OpenMP team slows the forward passes.
    retriever = on_device_thread(chosen, _retriever, config, bundle, bt)
    engine = TiledRetrieval(on_device_thread(chosen, _in_form, retriever, form, chosen),
                            tile_size=retriever.student.tile_size, batch_size=batch_size, device=device,
                            precision=precision)
    rss_before = peak_rss_mib()
    started = time.perf_counter()
    probability, rate = engine.predict(bt)
    if engine.device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    np.save(output, np.stack([probability, rate]))
    result = {
        "config": config, "precision": precision, "form": form, "bundle": bundle.name if bundle else "random weights",
        "parameters_per_network": sum(p.numel() for p in retriever.classifier.parameters()),
        "tile_size": engine.tile_size, "overlap": engine.overlap, "batch_size": engine.batch_size,
        "device": str(engine.device), "wall_seconds": round(seconds, 2),
        "peak_rss_mib": round(peak_rss_mib(), 1),
        "rss_before_inference_mib": round(rss_before, 1),
        "disc_pixels_finite": int(np.isfinite(rate).sum()),
    }
    if engine.device.type == "cuda":
        result["peak_gpu_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    return result


def _retriever(config: str, bundle: Path | None, bt):
    """The retriever of ``bundle`` or, without one, preset ``config`` with random weights normalised on ``bt``."""
    import numpy as np

    from satpy_prenet.bundle import read_header, read_tensors
    from satpy_prenet.channels import PAPER_BANDS
    from satpy_prenet.model import PrecipitationRetriever
    from satpy_prenet.model.config import preset

    if bundle is not None:
        header = read_header(bundle)
        retriever = PrecipitationRetriever.from_config(header.model_config)
        retriever.load_state_dict(read_tensors(bundle, header))
        return retriever
    torch.manual_seed(0)
    return PrecipitationRetriever(student=preset(config, in_channels=len(PAPER_BANDS), out_channels=1),
                                  bands=PAPER_BANDS, mean=np.nanmean(bt[:, ::16, ::16], axis=(1, 2)).tolist(),
                                  std=np.nanstd(bt[:, ::16, ::16], axis=(1, 2)).tolist())


def peak_rss_mib() -> float:
    """Peak resident memory of this process since it started its program.

    Not ``getrusage``: Linux carries its ``ru_maxrss`` across ``execve``, so a child would report the peak of the
    parent that forked it (the world simulation's, when the input was simulated in the same run).
    """
    status = Path("/proc/self/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("VmHWM:"))) / 1024


def _in_form(retriever, form: str, device):
    """The retriever in ``form`` (`FORMS`) on ``device``."""
    from satpy_prenet.model import fold_batch_norms, inference_form

    if form == "product":
        return inference_form(retriever, device)
    retriever.eval().to(device)
    if form in ("channels-last", "folded"):
        retriever.to(memory_format=torch.channels_last)
    if form == "folded":
        fold_batch_norms(retriever)
    return BothNetworksOnEveryTile(retriever)


class BothNetworksOnEveryTile(torch.nn.Module):
    """The retriever's forward without its regressor skip: both networks run on every tile."""

    def __init__(self, retriever):
        """Wrap ``retriever``."""
        super().__init__()
        self.retriever = retriever
        self.size_multiple = retriever.size_multiple

    def forward(self, bt):
        """Probability and gated rate, as `PrecipitationRetriever.forward` gives them."""
        x = self.retriever.normalise(bt)
        probability = torch.softmax(self.retriever.classifier(x).out, dim=1)[:, 1]
        rate = self.retriever.regressor(x).out[:, 0].clamp_min(0.0)
        raining = probability >= self.retriever.probability_threshold
        return probability, torch.where(raining, rate, torch.zeros_like(rate))


def _cropped(image, crop: int | None):
    """The central ``crop`` x ``crop`` pixels of ``image`` (..., rows, cols); all of it without ``crop``."""
    if not crop:
        return image
    top, left = (image.shape[-2] - crop) // 2, (image.shape[-1] - crop) // 2
    return image[..., top:top + crop, left:left + crop]


def compare(result: dict, output: Path, baseline: Path, truth: Path, scored: bool, crop: int | None) -> None:
    """Add to ``result`` how its outputs differ from the baseline's and, if ``scored``, its skill on the truth."""
    import numpy as np

    from satpy_prenet.evaluation.metrics import scores

    (probability, rate), (base_probability, base_rate) = np.load(output), np.load(baseline)
    valid = np.isfinite(base_probability)
    difference = np.abs(probability[valid] - base_probability[valid])
    result.update(mean_abs_dp=float(difference.mean()), max_abs_dp=float(difference.max()),
                  rain_flags_differing=float(np.mean((rate[valid] > 0) != (base_rate[valid] > 0))))
    if scored:
        skill = scores(rate, _cropped(np.load(truth), crop))
        result.update(csi=round(skill.csi, 4), pod=round(skill.pod, 4), far=round(skill.far, 4),
                      rmse=round(skill.rmse, 4), cc=round(skill.cc, 4))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--configs", nargs="+", default=["small", "paper"])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--batch-size", type=int, default=None)
    parser.add_argument("--precisions", nargs="+", default=["auto"],
                        help="compared with the first: auto, float32, bfloat16")
    parser.add_argument("--forms", nargs="+", choices=FORMS, default=["product"],
                        help="forms of the model, compared with the first (see FORMS)")
    parser.add_argument("--bundle", type=Path, default=None, help="a trained bundle instead of random weights")
    parser.add_argument("--crop", type=int, default=None,
                        help="time the central N x N pixels only (a precision emulated in software is slow)")
    parser.add_argument("--tag", default=None,
                        help="added to the results' file name (say, the machine) so other runs are kept")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument("--precision", default="auto", help=argparse.SUPPRESS)
    parser.add_argument("--form", default="product", help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--input", type=Path, default=Path(tempfile.gettempdir()) / "prenet_full_disc_bt.npy",
                        help="cache of the simulated brightness temperatures")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.child:
        print(json.dumps(run_one(args.child, args.device, args.batch_size, args.input, args.precision, args.form,
                                 args.bundle, args.output, args.crop)))
        return
    if not args.input.exists() or not _truth_path(args.input).exists():
        simulate_input(args.input)
    configs = ["bundle"] if args.bundle else args.configs
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        for config in configs:
            outputs = []
            for precision, form in itertools.product(args.precisions, args.forms):
                output = Path(scratch) / f"{config}-{precision}-{form}.npy"
                command = [sys.executable, __file__, "--child", config, "--device", args.device, "--input",
                           str(args.input), "--precision", precision, "--form", form, "--output", str(output)]
                command += ["--threads", str(args.threads)] if args.threads else []
                command += ["--batch-size", str(args.batch_size)] if args.batch_size else []
                command += ["--bundle", str(args.bundle)] if args.bundle else []
                command += ["--crop", str(args.crop)] if args.crop else []
                stdout = subprocess.run(command, check=True, capture_output=True, text=True).stdout
                results.append(json.loads(stdout.strip().splitlines()[-1]))
                outputs.append(output)
                compare(results[-1], output, outputs[0], _truth_path(args.input), scored=args.bundle is not None,
                        crop=args.crop)
                results[-1]["speed-up"] = round(results[-len(outputs)]["wall_seconds"] / results[-1]["wall_seconds"],
                                                2)
                print(json.dumps(results[-1]))
    size = f"{args.crop} x {args.crop} (centre of the disc)" if args.crop else "2748 x 2748"
    report = {"benchmark": f"full-disc inference, {size}, both networks", "date": dt.date.today().isoformat(),
              "machine": machine(args.device), "results": results}
    RESULTS.mkdir(exist_ok=True)
    suffixes = ([args.device.split(":")[0]] + ([args.bundle.stem] if args.bundle else [])
                + ([f"crop{args.crop}"] if args.crop else []) + ([args.tag] if args.tag else []))
    stem = RESULTS / "_".join(["full_disc_inference", *suffixes])
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    lines = [f"# Full-disc inference, {size} ({report['date']})", "", f"Machine: {json.dumps(report['machine'])}", "",
             f"Weights: {results[0]['bundle']}. Speed-up, |dP| and differing rain flags: against the first row of "
             "the same configuration. Forms: " + "; ".join(f"{name}: {text}" for name, text in FORM_TEXT.items()), "",
             "| config | precision | form | params/network | tile | batch | device | wall s | speed-up | peak RSS MiB "
             "| mean abs dP | max abs dP | rain flags differing | CSI | POD | FAR | RMSE | CC |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    lines += [f"| {r['config']} | {r['precision']} | {r['form']} | {r['parameters_per_network'] / 1e6:.2f} M "
              f"| {r['tile_size']} | {r['batch_size']} | {r['device']} | {r['wall_seconds']} | {r['speed-up']} "
              f"| {r['peak_rss_mib']} "
              f"| {r['mean_abs_dp']:.2g} | {r['max_abs_dp']:.2g} | {r['rain_flags_differing']:.3%} | "
              + " | ".join(str(r.get(key, "-")) for key in ("csi", "pod", "far", "rmse", "cc")) + " |"
              for r in results]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")

if __name__ == "__main__":
    main()
