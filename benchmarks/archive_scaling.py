"""Benchmark: wall time of simulating the archive and building the stores against simulated days and workers.

Each cell (days, workers) simulates ``days`` days of GPM passes over the CLDAS domain (seed 2026, FY-4A, from
2026-07-15, as etc/training/small.yaml does for one day) into a fresh folder and builds the stores with the
build settings of etc/training/small.yaml (split boundaries from the default fractions, so that any number of days
splits), both on one executor (:func:`satpy_prenet.parallel.executor`): ``workers`` single-threaded processes of a
local dask cluster (0: serially in the benchmark process, without dask). The cluster's start is timed apart.

    python benchmarks/archive_scaling.py [--days 1 3 10] [--workers 1 2] [--workdir DIR] [--keep]

With ``--keep`` each cell's archive and stores stay in ``WORKDIR/days<D>-workers<W>`` (for the learning curves
against archive size, benchmarks/learning_vs_size.py); without it they go to a temporary folder, removed afterwards.

Results go to benchmarks/results/archive_scaling.json and .md; cells already in the JSON are skipped (delete a
cell there to measure it again), so the benchmark can be run a subset at a time. Notes on the conditions of a run
can be added to the JSON's ``notes`` list; the table repeats them.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import importlib.metadata
import json
import logging
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

from satpy_prenet.parallel import executor
from satpy_prenet.synthetic.archive import simulate_archive
from satpy_prenet.training.builder import BuildConfig, build_datasets, discover_sources
from satpy_prenet.training.config import load_config
from satpy_prenet.training.pipeline import build_config as build_settings

LOG = logging.getLogger("archive_scaling")

RESULTS = Path(__file__).parent / "results"
SMALL = Path(__file__).parents[1] / "etc" / "training" / "small.yaml"
START = dt.datetime(2026, 7, 15)
SEED, PLATFORM = 2026, "FY-4A"
DAYS, WORKERS = (1, 3, 10), (1, 2)


def machine() -> dict:
    """CPU count and model, memory and the versions that matter."""
    model = "unknown"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"cpu": model, "cpus": os.cpu_count(), "memory_gib": round(memory, 1), "python": platform.python_version(),
            **{name: importlib.metadata.version(name) for name in ("dask", "distributed", "numpy", "satpy")}}


def build_config() -> BuildConfig:
    """The build section of etc/training/small.yaml with its model bands, split by the default fractions."""
    return dataclasses.replace(build_settings(load_config(SMALL)), validation_from=None, test_from=None)


def measure(days: int, workers: int, workdir: Path, keep: bool = False) -> dict:
    """Simulate and build one cell in a fresh folder under ``workdir`` (removed afterwards unless ``keep``)."""
    if keep:
        folder = workdir / f"days{days}-workers{workers}"
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    else:
        folder = Path(tempfile.mkdtemp(prefix=f"days{days}-workers{workers}-", dir=workdir))
    try:
        started = time.perf_counter()
        with executor(workers=workers) as tasks:
            ready = time.perf_counter()
            archive = simulate_archive(folder / "archive", seed=SEED, start=START, end=START + dt.timedelta(days=days),
                                       platform=PLATFORM, progress=False, executor=tasks)
            simulated = time.perf_counter()
            report = build_datasets(discover_sources(archive.root), folder / "datasets", build_config(),
                                    progress=False, executor=tasks)
            built = time.perf_counter()
        closed = time.perf_counter()
        return {"days": days, "workers": workers, "start_s": round(ready - started, 1),
                "simulate_s": round(simulated - ready, 1), "build_s": round(built - simulated, 1),
                "close_s": round(closed - built, 1), "total_s": round(closed - started, 1),
                "files": {kind: len(getattr(archive, kind)) for kind in ("agri", "gmi", "dpr", "cldas")},
                "tiles": report.tiles, "load_1min_at_end": round(os.getloadavg()[0], 2),
                "measured": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    finally:
        if not keep:
            shutil.rmtree(folder, ignore_errors=True)


def key(days: int, workers: int) -> str:
    return f"days={days},workers={workers}"


def write_markdown(results: dict, path: Path) -> None:
    """The results as a table, with the machine and the cells not measured."""
    cells = results["cells"]
    lines = ["# Archive scaling: simulate + build against simulated days and dask workers", "",
             f"Machine: {json.dumps(results['machine'])}", "",
             "Simulated archive of seed 2026, FY-4A, from 2026-07-15, GPM passes over 60-160 E, 0-65 N; stores built "
             "with the build settings of etc/training/small.yaml (splits by the default fractions). Workers: "
             "single-threaded processes of a `distributed.LocalCluster` on the loopback (start: starting it and "
             "connecting; close: closing it). The machine was shared with other work while measuring (load at end: "
             "the 1-minute load average when the cell ended, this benchmark's processes included), so the times are "
             "upper bounds.", "",
             "| days | workers | start s | simulate s | build s | close s | total s | AGRI | GMI | DPR | CLDAS | tiles "
             "| speed-up (simulate + build) | load at end |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for cell in sorted(cells.values(), key=lambda item: (item["days"], item["workers"])):
        one = cells.get(key(cell["days"], 1))
        work = cell["simulate_s"] + cell["build_s"]
        speedup = f"{(one['simulate_s'] + one['build_s']) / work:.2f}" if one and work else "-"
        files = cell["files"]
        lines.append(f"| {cell['days']} | {cell['workers']} | {cell['start_s']} | {cell['simulate_s']} | "
                     f"{cell['build_s']} | {cell['close_s']} | {cell['total_s']} | {files['agri']} | {files['gmi']} | "
                     f"{files['dpr']} | {files['cldas']} | {sum(cell['tiles'].values())} | {speedup} | "
                     f"{cell.get('load_1min_at_end', '-')} |")
    missing = [key(days, workers) for days in DAYS for workers in WORKERS if key(days, workers) not in cells]
    lines += ["", f"Not run: {', '.join(missing) if missing else 'none'}.", ""]
    lines += [f"- {note}" for note in results.get("notes", [])] + ([""] if results.get("notes") else [])
    path.write_text("\n".join(lines))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, nargs="+", default=list(DAYS))
    parser.add_argument("--workers", type=int, nargs="+", default=list(WORKERS))
    parser.add_argument("--workdir", type=Path, default=None, help="Folder for the archives (default: a temp dir).")
    parser.add_argument("--keep", action="store_true", help="Keep each cell's archive and stores under --workdir.")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s %(levelname)s %(name)s] %(message)s")
    RESULTS.mkdir(exist_ok=True)
    json_path = RESULTS / "archive_scaling.json"
    results = json.loads(json_path.read_text()) if json_path.is_file() else {"cells": {}}
    results["machine"] = machine()
    workdir = args.workdir or Path(tempfile.gettempdir())
    workdir.mkdir(parents=True, exist_ok=True)
    for days in args.days:
        for workers in args.workers:
            if key(days, workers) in results["cells"]:
                LOG.info("%s already measured", key(days, workers))
                continue
            LOG.info("measuring %s", key(days, workers))
            results["cells"][key(days, workers)] = cell = measure(days, workers, workdir, keep=args.keep)
            LOG.info("%s", cell)
            json_path.write_text(json.dumps(results, indent=1, sort_keys=True))
            write_markdown(results, RESULTS / "archive_scaling.md")
    json_path.write_text(json.dumps(results, indent=1, sort_keys=True))
    write_markdown(results, RESULTS / "archive_scaling.md")


if __name__ == "__main__":
    main()
