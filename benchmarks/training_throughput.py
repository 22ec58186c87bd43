"""Benchmark: training throughput (tiles per second) of the PRE-Net stages teacher, distill and adapt, per head.

The stages run as ``satpy-prenet-train`` runs them (`satpy_prenet.training.stages.run_stage`), each stage and head
in a fresh process of its own (so that its peak memory is its own), in pipeline order: distill needs the teacher's
``best.pt`` and adapt the distilled student's. The configuration is the YAML file given, with every stage cut to
one epoch of ``warm-up + steps`` batches (``max_steps_per_epoch``) and optionally another batch size or number of
DataLoader workers; everything else (preset, optimizer, AMP, loss weights, LoRA, MaskTune) is the file's.

Data: synthetic Swath-MPR and Full-IPR stores in the layout of docs/training-data.md, with the tile sizes of the
configuration's ``build`` section (swath tiles ``swath_tile_scans`` x 49 footprints, padded to the model's size
multiple by the data loader; disc tiles ``disc_tile_size`` squared), 8 IR bands (the configuration's), 13 PMW
channels, 176 PR bins and 3 geographic channels, filled with random values in physical ranges (throughput does not
depend on the values). The train stores hold ``--tiles`` tiles (default: just enough for the epoch), the
validation stores ``--validation-tiles``.

What is timed: each training step (`Trainer._step`: forward, loss, backward, optimizer step, MaskTune bookkeeping;
on CUDA between two ``torch.cuda.synchronize``), the batch already on the device; the first ``--warmup`` steps of
every stage and head are excluded. Alongside: the loop time per step (from the end of one step to the end of the
next, so it adds data loading and the host-to-device copy) and the epoch time the trainer logs in
``metrics.jsonl`` (loading, warm-up steps and validation included).

    python benchmarks/training_throughput.py --config etc/training/small.yaml [--device auto|cpu|cuda]
        [--head classifier|regressor] [--steps S] [--warmup W] [--tiles N] [--batch-size B] [--num-workers W]
        [--threads T] [--workdir DIR] [--out DIR]

Results go to benchmarks/results/training_throughput_<device>_<config>.json and .md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import yaml

LOG = logging.getLogger("training_throughput")

RESULTS = Path(__file__).parent / "results"
STAGES = ("teacher", "distill", "adapt")
HEADS = ("classifier", "regressor")
#: GMI 1C channels of a Swath-MPR store: S1 (9) then S2 (4), as the builder labels them.
PMW_CHANNELS = ("10.65V", "10.65H", "18.7V", "18.7H", "23.8V", "36.64V", "36.64H", "89.0V", "89.0H",
                "166.0V", "166.0H", "183.31+-3V", "183.31+-7V")
PR_BINS = 176
GEO_CHANNELS = ("elevation", "latitude", "longitude")
SWATH_FOOTPRINTS = 49
#: Tiles appended to a store at a time while it is written.
WRITE_BLOCK = 8


def machine(device: str) -> dict:
    """What the figures were measured on."""
    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    info = {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(), "omp_num_threads": os.environ.get("OMP_NUM_THREADS"),
            "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)}
    if device == "cuda":
        info["gpu"] = torch.cuda.get_device_name(0)
        info["cuda"] = torch.version.cuda
    return info


def resolve_device(device: str) -> str:
    """``cpu`` or ``cuda`` for ``auto``, ``cpu`` or ``cuda``."""
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: this torch sees no CUDA device")
    return device


# --- configuration ------------------------------------------------------------------------------------------------


def benchmark_config(path: Path, *, steps_per_epoch: int, batch_size: int | None,
                     num_workers: int | None) -> dict:
    """The YAML configuration at ``path`` as a mapping, every stage cut to one epoch of ``steps_per_epoch`` batches."""
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    for stage in STAGES:
        section = dict(data.get(stage) or {})
        section.update(epochs=1, max_steps_per_epoch=steps_per_epoch)
        if batch_size is not None:
            section["batch_size"] = batch_size
        if num_workers is not None:
            section["num_workers"] = num_workers
        data[stage] = section
    return data


def tile_sizes(config) -> tuple[int, int]:
    """Scans per swath tile and side of a disc tile, from the configuration's build section."""
    from satpy_prenet.training.pipeline import build_config

    build = build_config(config)
    return build.swath_tile_scans, build.disc_tile_size


# --- synthetic stores ---------------------------------------------------------------------------------------------


def rain_labels(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """Rain rates (mm/h): about 60 % dry, 30 % raining (exponential, mean 3 mm/h), 10 % without a label."""
    draw = rng.random(shape)
    rate = np.maximum(0.1, rng.exponential(3.0, shape))
    return np.where(draw < 0.6, 0.0, np.where(draw < 0.9, rate, np.nan)).astype(np.float32)


def swath_block(rng: np.random.Generator, bands: list[str], scans: int, first: int, count: int,
                split: str):
    """``count`` Swath-MPR tiles of ``scans`` x 49 footprints with random values in physical ranges."""
    import xarray as xr

    shape = (count, scans, SWATH_FOOTPRINTS)
    dims = ("tile", "along", "across")
    echo = rng.random((count, PR_BINS, scans, SWATH_FOOTPRINTS)) < 0.2
    pr = np.where(echo, rng.uniform(12.0, 55.0, echo.shape), 0.0)  # 0 dBZ: the builder's "no echo" floor
    geo = np.stack([rng.uniform(0.0, 4000.0, shape), rng.uniform(0.0, 65.0, shape),
                    rng.uniform(60.0, 160.0, shape)], axis=1)
    return xr.Dataset(
        {"ir": (("tile", "ir_band", "along", "across"), rng.uniform(190.0, 310.0, (count, len(bands), *shape[1:]))
                .astype(np.float32)),
         "pmw": (("tile", "pmw_channel", "along", "across"),
                 rng.uniform(100.0, 290.0, (count, len(PMW_CHANNELS), *shape[1:])).astype(np.float32)),
         "pr": (("tile", "range_bin", "along", "across"), pr.astype(np.float32)),
         "geo": (("tile", "geo_channel", "along", "across"), geo.astype(np.float32)),
         "label": (dims, rain_labels(rng, shape))},
        coords={"ir_band": bands, "pmw_channel": list(PMW_CHANNELS), "range_bin": np.arange(1, PR_BINS + 1),
                "geo_channel": list(GEO_CHANNELS),
                "sample_id": ("tile", [f"swath:{split}:{first + i:06d}" for i in range(count)]),
                "time": ("tile", [np.datetime64("2026-07-15T00:00") + np.timedelta64(first + i, "m")
                                  for i in range(count)])})


def disc_block(rng: np.random.Generator, bands: list[str], size: int, first: int, count: int, split: str):
    """``count`` Full-IPR tiles of ``size`` x ``size`` pixels with random values in physical ranges."""
    import xarray as xr

    return xr.Dataset(
        {"ir": (("tile", "ir_band", "y", "x"),
                rng.uniform(190.0, 310.0, (count, len(bands), size, size)).astype(np.float32)),
         "label": (("tile", "y", "x"), rain_labels(rng, (count, size, size)))},
        coords={"ir_band": bands,
                "sample_id": ("tile", [f"disc:{split}:{first + i:06d}" for i in range(count)]),
                "line": ("tile", (np.arange(first, first + count) * size) % 2748),
                "column": ("tile", np.zeros(count, int))})


def write_stores(root: Path, bands: list[str], scans: int, disc: int, counts: dict[str, int], seed: int) -> None:
    """Swath-MPR and Full-IPR stores of ``counts[split]`` tiles each under ``root`` (docs/training-data.md)."""
    from satpy_prenet.data.stores import FULL_IPR, SWATH_MPR, append_tiles, store_path

    rng = np.random.default_rng(seed)
    attrs = {"simulated": True, "simulation": "random values of benchmarks/training_throughput.py"}
    for split, count in counts.items():
        for kind, block, size in ((SWATH_MPR, swath_block, scans), (FULL_IPR, disc_block, disc)):
            for first in range(0, count, WRITE_BLOCK):
                tiles = block(rng, bands, size, first, min(WRITE_BLOCK, count - first), split)
                append_tiles(store_path(root, kind, split), tiles, kind=kind, attrs={**attrs, "split": split})
    LOG.info("Wrote synthetic stores under %s: %s", root, counts)


# --- one stage and head (child process) ---------------------------------------------------------------------------


def synchronize(device) -> None:
    """Wait for the device's queued work (CUDA); nothing on the CPU."""
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def count(module, trainable: bool = False) -> int:
    """Parameters of ``module`` (only those that require gradients with ``trainable``)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable)


def own_cpu_seconds() -> float:
    """CPU seconds of this process, of its children waited for, and of its live children (DataLoader workers)."""
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    seconds = sum(item.ru_utime + item.ru_stime for item in usage)
    me, tick = os.getpid(), os.sysconf("SC_CLK_TCK")
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:  # the process ended meanwhile
            continue
        if int(fields[1]) == me:  # fields[1]: ppid; [11], [12]: utime, stime in ticks
            seconds += (int(fields[11]) + int(fields[12])) / tick
    return seconds


def machine_busy_seconds() -> float:
    """Busy CPU seconds of the machine since boot: every process, and the time a hypervisor stole."""
    ticks = [int(value) for value in Path("/proc/stat").read_text().split()[1:9]]  # user ... steal, all CPUs
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # less idle and iowait


@contextmanager
def timed_steps(record: dict):
    """Time every `Trainer._step` while the context is open; durations and end times go into ``record``.

    The first step also describes the run into ``record``: the batch's input shapes, AMP, the parameter counts.
    """
    from satpy_prenet.training.trainer import Trainer

    original = Trainer._step
    record.update(step_s=[], step_end=[], step_other_cpu=[])

    def step(trainer, batch, epoch):
        device = trainer.context.device
        if "inputs" not in record:
            task = trainer.task
            record["inputs"] = {name: list(value.shape) for name, value in batch.items()
                                if name in ("ir", "pmw", "pr", "geo", "label")}
            record["amp"] = bool(trainer.amp)
            record["amp_dtype"] = str(trainer.amp_dtype).replace("torch.", "") if trainer.amp else None
            record["parameters"] = count(task.model)
            record["trainable_parameters"] = count(task.model, trainable=True)
            if hasattr(task, "teacher"):
                record["frozen_teacher_parameters"] = count(task.teacher)
        synchronize(device)
        busy, own, started = machine_busy_seconds(), own_cpu_seconds(), time.perf_counter()
        parts = original(trainer, batch, epoch)
        synchronize(device)
        ended = time.perf_counter()
        other = (machine_busy_seconds() - busy) - (own_cpu_seconds() - own)
        record["step_s"].append(ended - started)
        record["step_end"].append(ended)
        record["step_other_cpu"].append(100 * other / ((ended - started) * os.cpu_count()))
        LOG.info("step %d: %.3f s, other work %.0f %% CPU", len(record["step_s"]), ended - started,
                 record["step_other_cpu"][-1])
        return parts

    Trainer._step = step
    try:
        yield record
    finally:
        Trainer._step = original


def run_case(stage: str, head: str, workdir: Path, device: str, warmup: int) -> dict:
    """Run ``stage`` for ``head`` with the configuration in ``workdir``; its step times and memory."""
    import torch

    from satpy_prenet.training.config import TrainingConfig
    from satpy_prenet.training.stages import run_stage

    config = TrainingConfig.from_dict(json.loads((workdir / "config.json").read_text()))
    load_before = os.getloadavg()
    record: dict = {"stage": stage, "head": head}
    with timed_steps(record):
        run_stage(stage, config, workdir, data=workdir / "datasets", heads=[head], device=device)
    steps, ends, other = record.pop("step_s"), record.pop("step_end"), record.pop("step_other_cpu")
    if len(steps) <= warmup:
        raise RuntimeError(f"{stage}-{head}: {len(steps)} steps ran, not more than the {warmup} warm-up step(s)")
    measured = steps[warmup:]
    loop = [end - before for before, end in zip(ends[warmup - 1:-1], ends[warmup:], strict=True)]
    batch = config.stage(stage).batch_size
    epoch = json.loads((workdir / "checkpoints" / f"{stage}-{head}" / "metrics.jsonl").read_text().splitlines()[-1])
    record.update(
        batch_size=batch, num_workers=config.stage(stage).num_workers, warmup_steps=warmup,
        measured_steps=len(measured), warmup_step_s=[round(value, 4) for value in steps[:warmup]],
        step_s=[round(value, 4) for value in measured],
        step_other_cpu_percent=[round(value, 1) for value in other[warmup:]],
        other_cpu_percent_max=round(max(other[warmup:]), 1),
        s_per_step_median=round(statistics.median(measured), 4), s_per_step_mean=round(statistics.mean(measured), 4),
        s_per_step_min=round(min(measured), 4), s_per_step_max=round(max(measured), 4),
        tiles_per_s=round(batch * len(measured) / sum(measured), 3),
        loop_s_per_step_mean=round(statistics.mean(loop), 4),
        loop_tiles_per_s=round(batch * len(loop) / sum(loop), 3),
        epoch_steps=epoch["steps"], epoch_s=epoch["seconds"],
        peak_rss_mib=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        peak_rss_workers_mib=round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
        load_average_before=[round(value, 2) for value in load_before],
        load_average_after=[round(value, 2) for value in os.getloadavg()])
    if device == "cuda":
        record["peak_cuda_allocated_mib"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        record["peak_cuda_reserved_mib"] = round(torch.cuda.max_memory_reserved() / 2**20, 1)
    return record


# --- orchestration (parent process) -------------------------------------------------------------------------------


def cpu_seconds() -> tuple[float, float]:
    """Busy CPU seconds of the machine, and of this process and its children."""
    return machine_busy_seconds(), own_cpu_seconds()


def run_cases(args: argparse.Namespace, device: str, workdir: Path) -> list[dict]:
    """Each stage (in pipeline order) and head in a child process; their records, with the CPU used by others."""
    cases = []
    for stage in STAGES:
        for head in args.heads:
            command = [sys.executable, __file__, "--child", stage, head, "--workdir", str(workdir), "--device",
                       device, "--warmup", str(args.warmup)]
            command += ["--threads", str(args.threads)] if args.threads else []
            log = workdir / f"{stage}-{head}.log"
            LOG.info("%s-%s: running (log: %s)", stage, head, log)
            before, started = cpu_seconds(), time.monotonic()
            with log.open("w") as stderr:
                done = subprocess.run(command, stdout=subprocess.PIPE, stderr=stderr, text=True)
            after, wall = cpu_seconds(), time.monotonic() - started
            if done.returncode:
                sys.stderr.write(log.read_text()[-5000:])
                raise SystemExit(f"{stage}-{head} failed (exit status {done.returncode}); log above")
            output = done.stdout
            case = json.loads(output.strip().splitlines()[-1])
            other = (after[0] - before[0]) - (after[1] - before[1])
            case["process_wall_s"] = round(wall, 1)
            case["other_cpu_percent"] = round(100 * other / (wall * os.cpu_count()), 1)
            cases.append(case)
            LOG.info("%s-%s: %.3f s/step, %.2f tiles/s", stage, head, case["s_per_step_median"], case["tiles_per_s"])
    return cases


def child_info(device: str, threads: int | None) -> dict:
    """The machine as a child process sees it (torch threads as the training ran)."""
    command = [sys.executable, __file__, "--machine", "--device", device]
    command += ["--threads", str(threads)] if threads else []
    return json.loads(subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True).stdout)


def write_report(report: dict, out: Path) -> Path:
    """``training_throughput_<device>_<config>.json`` and ``.md`` in ``out``; returns the Markdown path."""
    out.mkdir(parents=True, exist_ok=True)
    stem = out / f"training_throughput_{report['device']}_{report['config_name']}"
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    cuda = report["device"] == "cuda"
    data = report["data"]
    overrides = ", ".join(f"{key} {value}" for key, value in report["overrides"].items()) or "none"
    other = ", ".join(f"{case['stage']}-{case['head']} {case['other_cpu_percent']} %" for case in report["cases"])
    lines = [
        f"# Training throughput: `{report['config']}` on {report['device']} ({report['date']})", "",
        f"Machine: {json.dumps(report['machine'])}", "",
        f"Configuration `{report['config']}`, every stage cut to 1 epoch of {report['warmup']} warm-up + "
        f"{report['steps']} measured steps; overrides of the file's values: {overrides}. Synthetic stores of random "
        f"values in physical ranges (throughput does not depend on them): Swath-MPR tiles {data['swath_tile']} "
        f"(8 IR + 13 PMW + 176 PR + 3 geo channels; padded to {data['swath_input']} for the networks), Full-IPR "
        f"tiles {data['disc_tile']} (8 IR), {data['train_tiles']} train and {data['validation_tiles']} validation "
        "tiles per store.", "",
        "Timed: each training step (forward, loss, backward, optimizer step, MaskTune bookkeeping"
        + ("; between two `torch.cuda.synchronize`" if cuda else "") + "), batch already on the device, warm-up "
        "steps excluded; tiles/s = batch x measured steps / their total time. Loop: from the end of one step to "
        "the end of the next (adds data loading and the copy to the device). Epoch: the trainer's `seconds` in "
        "`metrics.jsonl` (all steps, warm-up included, and validation). Each stage and head runs in its own "
        "process: peak RSS is the training process's (DataLoader workers apart). Adapt runs in its MaskTune "
        "warm-up epoch (masks of ones, losses recorded).", "",
        f"Load average at the start: {report['load_average_start']}, at the end: {report['load_average_end']}. "
        "CPU used by other work (machine busy time, hypervisor steal included, less the benchmark's own, as a "
        "share of all cores): during each whole case (process start to end) "
        f"{other}; per measured step, the largest in the column `other CPU`.", "",
        "| stage | head | parameters (trainable) | input | batch | AMP | s/step median | min - max | tiles/s | "
        "loop tiles/s | epoch s | peak RSS MiB |" + (" peak CUDA MiB |" if cuda else "") + " other CPU |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|" + ("---|" if cuda else ""),
    ]
    for case in report["cases"]:
        params = f"{case['parameters'] / 1e6:.2f} M ({case['trainable_parameters'] / 1e6:.2f} M)"
        if "frozen_teacher_parameters" in case:
            params += f" + frozen teacher {case['frozen_teacher_parameters'] / 1e6:.2f} M"
        inputs = " + ".join(f"{name} {shape[1]}" for name, shape in case["inputs"].items() if name != "label")
        inputs += " x " + " x ".join(map(str, case["inputs"]["ir"][2:]))
        amp = case["amp_dtype"] if case["amp"] else "off"
        row = (f"| {case['stage']} | {case['head']} | {params} | {inputs} | {case['batch_size']} | {amp} | "
               f"{case['s_per_step_median']:.3f} | {case['s_per_step_min']:.3f} - {case['s_per_step_max']:.3f} | "
               f"{case['tiles_per_s']:.2f} | {case['loop_tiles_per_s']:.2f} | {case['epoch_s']:.1f} | "
               f"{case['peak_rss_mib']:.0f} |")
        if cuda:
            row += f" {case['peak_cuda_allocated_mib']:.0f} |"
        lines.append(row + f" {case['other_cpu_percent_max']:.0f} % |")
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")
    return stem.with_suffix(".md")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", type=Path, default=Path("etc/training/small.yaml"), help="training YAML")
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--head", choices=HEADS, help="only this head (default: both)")
    parser.add_argument("--steps", type=int, default=10, help="measured steps per stage and head")
    parser.add_argument("--warmup", type=int, default=2, help="warm-up steps before them, not measured (>= 1)")
    parser.add_argument("--tiles", type=int, help="tiles of each train store (default: batch x (warmup + steps))")
    parser.add_argument("--validation-tiles", type=int, default=2, help="tiles of each validation store")
    parser.add_argument("--batch-size", type=int, help="instead of the configuration's (recorded as an override)")
    parser.add_argument("--num-workers", type=int, help="DataLoader workers instead of the configuration's")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice, OMP_NUM_THREADS)")
    parser.add_argument("--workdir", type=Path, help="stores and checkpoints (default: a temporary folder)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder of the result files")
    parser.add_argument("--seed", type=int, default=0, help="of the random store values")
    parser.add_argument("--child", nargs=2, metavar=("STAGE", "HEAD"), help=argparse.SUPPRESS)
    parser.add_argument("--machine", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s %(levelname)s %(name)s] %(message)s")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    if args.machine:
        print(json.dumps(machine(args.device)))
        return
    if args.child:
        print(json.dumps(run_case(*args.child, args.workdir, args.device, args.warmup)))
        return
    if args.warmup < 1 or args.steps < 1:
        parser.error("--warmup and --steps must be at least 1")
    args.heads = [args.head] if args.head else list(HEADS)
    device = resolve_device(args.device)

    from satpy_prenet.training.common import size_multiple
    from satpy_prenet.training.config import TrainingConfig
    from satpy_prenet.training.datasets import padded

    steps_per_epoch = args.warmup + args.steps
    data = benchmark_config(args.config, steps_per_epoch=steps_per_epoch, batch_size=args.batch_size,
                            num_workers=args.num_workers)
    config = TrainingConfig.from_dict(data, source=args.config)
    largest_batch = max(config.stage(stage).batch_size for stage in STAGES)
    tiles = args.tiles or largest_batch * steps_per_epoch
    if tiles < largest_batch * steps_per_epoch:
        parser.error(f"--tiles {tiles}: {steps_per_epoch} steps of batch {largest_batch} need at least "
                     f"{largest_batch * steps_per_epoch} tiles")
    scans, disc = tile_sizes(config)
    multiple = size_multiple(config.model)
    overrides = {key: value for key, value in (("batch_size", args.batch_size), ("num_workers", args.num_workers),
                                                ("threads", args.threads)) if value is not None}
    report = {
        "benchmark": "training throughput per stage and head", "date": dt.date.today().isoformat(),
        "config": str(args.config), "config_name": args.config.stem, "device": device,
        "warmup": args.warmup, "steps": args.steps, "overrides": overrides,
        "load_average_start": [round(value, 2) for value in os.getloadavg()],
        "data": {"swath_tile": f"{scans} x {SWATH_FOOTPRINTS}",
                 "swath_input": f"{padded(scans, multiple)} x {padded(SWATH_FOOTPRINTS, multiple)}",
                 "disc_tile": f"{disc} x {disc}", "train_tiles": tiles, "validation_tiles": args.validation_tiles,
                 "values": "random, in physical ranges (IR 190-310 K, PMW 100-290 K, PR 0 dBZ or 12-55 dBZ, "
                           "elevation 0-4000 m, latitude 0-65, longitude 60-160, rain 60 % 0, 30 % exponential "
                           "with mean 3 mm/h, 10 % missing)"},
        "stage_configs": {stage: config.stage(stage).to_dict() for stage in STAGES},
    }
    with tempfile.TemporaryDirectory(prefix="training-throughput-") as temporary:
        workdir = (args.workdir or Path(temporary)).absolute()
        workdir.mkdir(parents=True, exist_ok=True)
        if (workdir / "checkpoints").exists():
            raise SystemExit(f"{workdir}/checkpoints exists: give an empty --workdir")
        (workdir / "config.json").write_text(json.dumps(data, default=str))
        write_stores(workdir / "datasets", list(config.model.bands), scans, disc,
                     {"train": tiles, "validation": args.validation_tiles}, args.seed)
        report["machine"] = child_info(device, args.threads)
        report["cases"] = run_cases(args, device, workdir)
    report["load_average_end"] = [round(value, 2) for value in os.getloadavg()]
    path = write_report(report, args.out)
    print(path.read_text())


if __name__ == "__main__":
    main()
