"""Benchmark: where the memory of a chain job goes, step by step, for one simulated FY-4A full disc.

One process does what a job of the shipped product list does (etc/trollflow2/agri_precipitation.yaml): it loads the
six products of the list (the four products and the two pictures) from the disc with satpy's ``agri_fy4a_l1``
reader and the embedded bundle, computes them once (``compute_products``: ``dask.persist``), resamples them to
``prenet_east_asia_0p04``, builds the graphs of the 14 files (CF NetCDF, the rate's GeoTIFF, the decorated PNGs
through the list's picture writer) and computes them together. After each step it records the resident memory and
the peak during the step (the kernel's ``VmRSS``, and ``VmHWM`` started again after each step).

Cases: dask's ``array.chunk-size`` (the pieces satpy reads each band in; 128MiB, dask's default, reads a whole
band) x the writer of the pictures (satpy's ``simple_image``, which draws ``decorate`` while the graphs are built,
or the project's ``prenet_picture``, which draws it while the files are written). Each case runs in a fresh process,
twice: the first run fills satpy's angle cache for that chunking, the second (reported) reads it, as every job after
a grid's first. The environment is passed on (the report records ``MALLOC_*`` variables, which change glibc's
allocator).

    python benchmarks/job_memory.py [--chunk-sizes 128MiB 2MiB] [--writers simple_image prenet_picture]

Results go to benchmarks/results/job_memory_cpu.json and .md (``--out``).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
PRODUCTS = ("precipitation_rate", "precipitation_probability", "precipitation_flag", "precipitation_quality")
AREA = "prenet_east_asia_0p04"


def memory_mib() -> tuple[float, float]:
    """Resident memory now and its peak since the process started or `reset_peak` (``VmRSS``, ``VmHWM``), MiB."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return tuple(int(fields[key].split()[0]) / 1024 for key in ("VmRSS", "VmHWM"))


def reset_peak() -> None:
    """Start the kernel's peak (``VmHWM``) again from the resident memory now (Linux ``clear_refs``, value 5)."""
    Path("/proc/self/clear_refs").write_text("5")


def run_job(path: Path, out_dir: Path, cache_dir: Path, chunk_size: str, writer: str) -> list[dict]:
    """The job's steps on ``path`` with their memory (in this process)."""
    steps = []

    def step(name: str) -> None:
        rss, peak = memory_mib()
        steps.append({"step": name, "rss_mib": round(rss), "peak_mib": round(peak)})
        reset_peak()

    step("start")
    import dask
    import satpy
    from satpy import Scene
    from satpy.writers.core.compute import compute_writer_results

    from satpy_prenet.chain import config_dir
    from satpy_prenet.picture_writer import PICTURE_WRITER, PICTURE_WRITER_CONFIG
    from satpy_prenet.pictures import PICTURES, PNG_COMPRESS_LEVEL, decoration, picture_title
    from trollflow2_plugins.prenet import compute_products
    step("imports (satpy, the plugin)")

    dask.config.set({"array.chunk-size": chunk_size})
    satpy.config.set(config_path=[str(config_dir())], cache_lonlats=True, cache_sensor_angles=True,
                     cache_dir=str(cache_dir / "satpy"))
    scene = Scene([str(path)], reader="agri_fy4a_l1")
    names = [*PRODUCTS, *PICTURES]
    scene.load(names)
    step("scene loaded (lazy)")
    compute_products({"scene": scene, "input_filenames": [str(path)], "product_list": {"product_list": {}}})
    step("products computed and kept (compute_products)")
    resampled = scene.resample(AREA, resampler="nearest", radius_of_influence=30000, cache_dir=str(cache_dir))
    step("resampling set up")
    results = []
    for area, source in (("native", scene), ("east_asia", resampled)):
        for name in PRODUCTS:
            results.append(source.save_dataset(name, filename=str(out_dir / f"{area}_{name}.nc"), writer="cf",
                                               include_lonlats=False, compute=False))
        results.append(source.save_dataset(PRODUCTS[0], filename=str(out_dir / f"{area}.tif"), writer="geotiff",
                                           compute=False))
        for name, fill_value in zip(PICTURES, (None, 0), strict=True):
            decorate = decoration(picture_title(source[name].attrs), demo=True, width=source[name].shape[-1])
            found = {"config_files": [str(PICTURE_WRITER_CONFIG)]} if writer == PICTURE_WRITER else {}
            results.append(source.save_dataset(name, filename=str(out_dir / f"{area}_{name}.png"),
                                               writer=writer, decorate=decorate, fill_value=fill_value,
                                               compress_level=PNG_COMPRESS_LEVEL, compute=False, **found))
    step("the writers' graphs built")
    compute_writer_results(results)
    step("the files written")
    return steps


def run_case(path: Path, workdir: Path, chunk_size: str, writer: str) -> list[dict]:
    """The steps of the second of two runs of the job, each in a fresh process."""
    command = [sys.executable, __file__, "--child", str(path), "--workdir", str(workdir), "--chunk-sizes", chunk_size,
               "--writers", writer]
    for _ in range(2):
        done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def write_report(report: dict, out: Path) -> None:
    """The JSON and a Markdown table, one row per step and one column pair per case."""
    out.with_suffix(".json").write_text(json.dumps(report, indent=1))
    cases = report["cases"]
    heads = [f"chunks {case['chunk_size']}, {case['writer']}" for case in cases]
    lines = ["# Memory of a chain job, step by step (`benchmarks/job_memory.py`)", "",
             "**Simulated** FY-4A full disc, embedded `small` bundle, CPU. Resident memory after each step / peak "
             f"during the step, MiB. Machine: {report['machine']}. Allocator settings: "
             f"{report['malloc'] or 'glibc defaults'}.",
             "",
             "| step | " + " | ".join(heads) + " |", "|---" * (len(cases) + 1) + "|"]
    for index, step in enumerate(cases[0]["steps"]):
        values = [f"{case['steps'][index]['rss_mib']} / {case['steps'][index]['peak_mib']}" for case in cases]
        lines.append(f"| {step['step']} | " + " | ".join(values) + " |")
    peaks = [str(max(step["peak_mib"] for step in case["steps"])) for case in cases]
    lines.append("| **peak of the job** | " + " | ".join(peaks) + " |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chunk-sizes", nargs="+", default=["128MiB", "2MiB"])
    parser.add_argument("--writers", nargs="+", default=["simple_image", "prenet_picture"])
    parser.add_argument("--workdir", type=Path, default=None, help="folder of the input and the caches")
    parser.add_argument("--out", type=Path, default=RESULTS / "job_memory_cpu", help="results path without suffix")
    parser.add_argument("--child", type=Path, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        with tempfile.TemporaryDirectory() as out_dir:
            steps = run_job(args.child, Path(out_dir), args.workdir, args.chunk_sizes[0], args.writers[0])
        print(json.dumps(steps))
        return
    from chain_latency import machine, simulate_inputs  # this folder

    with tempfile.TemporaryDirectory() as scratch:
        workdir = args.workdir or Path(scratch)
        inputs = sorted(workdir.glob("FY4A-*.HDF")) or simulate_inputs(workdir, 1, seed=1)
        cases = [{"chunk_size": chunk_size, "writer": writer,
                  "steps": run_case(inputs[-1], workdir, chunk_size, writer)}
                 for chunk_size in args.chunk_sizes for writer in args.writers]
    malloc = {key: value for key, value in os.environ.items() if key.startswith("MALLOC_")}
    write_report({"simulated": True, "machine": machine(), "malloc": malloc, "cases": cases}, args.out)


if __name__ == "__main__":
    main()
