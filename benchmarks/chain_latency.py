"""Benchmark: latency of the operational chain, from a posttroll message to all product files of one FY-4A full disc.

The real chain runs: trollflow2's ``satpy_launcher.py`` with the shipped product list (only its publishing address
changed to a free loopback port), subscribed to an `Announcer`; a `ProductWatcher` collects the completion messages.
Simulated FY-4A full discs, one per message (the current 15-minute slot and the ones before it), are simulated once
and announced one after another, each once the previous job has finished. Latency is the time from sending a message
to receiving the last completion message of its job.

Cases: bundle ``small`` (the embedded demo bundle) or ``paper`` (the paper preset with untrained, seeded random
weights: timing does not depend on them) x mode ``fresh`` (one job process per message) or ``threaded``
(``-t``: jobs in threads of the launcher, the model stays loaded). Each case runs in a process of its own, so that
its peak memory (the largest of the launcher and its job processes) is its own.

Each message's latency is split with the launcher log's timestamps (millisecond resolution); the read and the
model, and the resampling and the writing, are told apart by timing reading and resampling in this process.

    python benchmarks/chain_latency.py [--bundles small paper] [--modes fresh threaded] [--messages N] [--slot T]
        [--workdir DIR] [--seed N]

Results go to benchmarks/results/chain_latency_cpu.json and .md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import importlib.metadata
import json
import logging
import os
import platform
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from satpy_prenet.bundle import ENV_VAR, embedded_bundle_path, read_header
from satpy_prenet.chain import (
    Announcer,
    Launcher,
    ProductWatcher,
    config_dir,
    copy_product_list,
    file_message,
    free_address,
    product_list_publisher,
    read_product_list,
)
from satpy_prenet.demo import current_slot

LOG = logging.getLogger("chain_latency")

RESULTS = Path(__file__).parent / "results"
PRODUCTS = ("precipitation_rate", "precipitation_probability", "precipitation_flag", "precipitation_quality")
AREA = "prenet_east_asia_0p04"
#: Longest wait for one job (a paper-size full disc takes about 10 minutes on a 2-core CPU).
JOB_TIMEOUT_S = {"small": 900, "paper": 1800}
#: Parts of a message's latency, in order, each ending at the milestone of the chain's log named in the report.
STEPS = ("transport", "start + imports", "model load", "check + scene", "read + model", "pictures",
         "resample + write", "publish")

_LOG_LINE = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}) \S+\s+(\S+)\] (.*)$", re.MULTILINE)
_COMPUTED = re.compile(r"Read the input and ran PRE-Net for .* in ([\d.]+) s")
_PICTURES = re.compile(r"Made .* in [\d.]+ s")  # compute_products, once the pictures are made


def machine() -> dict:
    """What the figures were measured on."""
    import torch

    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "torch": torch.__version__,
            "torch_threads": torch.get_num_threads(),
            "memory_gib": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1),
            "satpy": importlib.metadata.version("satpy"), "trollflow2": importlib.metadata.version("trollflow2"),
            "posttroll": importlib.metadata.version("posttroll")}


def simulate_inputs(out_dir: Path, count: int, seed: int, slot: dt.datetime | None = None) -> list[Path]:
    """FY-4A full-disc L1 files of ``slot`` (default: the current one) and the ``count - 1`` slots before it, oldest
    first."""
    from satpy_prenet.synthetic import World, write_agri_l1

    world = World(seed)
    slot = slot or current_slot()
    paths = []
    for back in range(count - 1, -1, -1):
        started = time.perf_counter()
        paths.append(write_agri_l1(world.scene(slot - dt.timedelta(minutes=15 * back), "FY-4A"), out_dir))
        LOG.info("Simulated %s in %.0f s", paths[-1].name, time.perf_counter() - started)
    return paths


def bundle_path(bundle: str, workdir: Path) -> Path:
    """The weights bundle of case ``bundle``."""
    return embedded_bundle_path() if bundle == "small" else workdir / "paper-untrained.safetensors"


def build_paper_bundle(path: Path, seed: int) -> Path:
    """A ``paper`` preset retriever with untrained (random, seeded) weights, for timing only.

    Built as the demo bundle's retriever is, with the demo bundle's bands and normalisation.
    """
    import torch

    from satpy_prenet.bundle import save_bundle
    from satpy_prenet.model import PrecipitationRetriever
    from satpy_prenet.model.config import preset

    demo = read_header(embedded_bundle_path())
    torch.manual_seed(seed)
    student = preset("paper", in_channels=len(demo.bands), out_channels=1)
    retriever = PrecipitationRetriever(student=student, bands=demo.bands, mean=demo.mean, std=demo.std)
    provenance = {
        "dataset": f"none: the weights are UNTRAINED (random initialisation, torch seed {seed})",
        "stage": "untrained; made by benchmarks/chain_latency.py to time the chain only, its products mean nothing",
        "metrics": {},
    }
    return save_bundle(path, retriever, purpose="research", provenance=provenance, half_precision=True)


def run_case(bundle: str, mode: str, inputs: list[Path], workdir: Path, slot: dt.datetime | None = None) -> dict:
    """Announce ``inputs`` one by one to a launcher of this case; latency and its split per message. With ``slot``
    (the newest input's), the input check measures the data's age from that time instead of the clock."""
    case_dir = workdir / f"{bundle}-{mode}"
    case_dir.mkdir(parents=True, exist_ok=True)
    product_list = copy_product_list(config_dir() / "trollflow2" / "agri_precipitation.yaml", case_dir,
                                     free_address(), now=slot)
    listen = free_address()
    log_file = case_dir / "launcher.log"
    launcher = Launcher(product_list, listen, log_file, threaded=mode == "threaded", cwd=case_dir,
                        env={ENV_VAR: str(bundle_path(bundle, workdir))})
    cpu_before, started = cpu_seconds(), time.monotonic()
    with Announcer(listen) as announcer, ProductWatcher(product_list_publisher(product_list)) as watcher:
        try:
            launcher.start()
            timings = [announce(announcer, launcher, watcher, path, job, JOB_TIMEOUT_S[bundle])
                       for job, path in enumerate(inputs, start=1)]
        finally:
            launcher.stop()
    cpu_after, wall = cpu_seconds(), time.monotonic() - started
    other_cpu = (cpu_after[0] - cpu_before[0]) - (cpu_after[1] - cpu_before[1])
    jobs = job_milestones(launcher.log())
    messages = [{"input": timing["input"], "files": timing["files"], "latency_s": round(timing["latency_s"], 3),
                 "split_s": split(job, timing["sent_at"], timing["sent_at"] + timing["latency_s"], log_file)}
                for job, timing in zip(jobs, timings, strict=True)]
    return {"bundle": bundle, "mode": mode, "messages": messages,
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024, 1),
            "other_cpu_percent": round(100 * other_cpu / (wall * os.cpu_count()), 1)}


def announce(announcer: Announcer, launcher: Launcher, watcher: ProductWatcher, path: Path, job: int,
             timeout: float) -> dict:
    """Announce ``path``, the case's ``job``-th message, and wait for its job and completion messages."""
    before = len(watcher.received)
    sent_at = time.time()
    sent = announcer.send(file_message(path))
    produced = launcher.wait_for_jobs(job, timeout)[-1]
    if not produced:
        raise RuntimeError(f"the job of {path.name} made no products; see {launcher.log_file}")
    received = watcher.wait(before + produced, timeout=60)[before:]
    if len(received) < produced:
        raise RuntimeError(f"{produced} products of {path.name} but {len(received)} completion messages")
    latency = max(item.at for item in received) - sent
    LOG.info("%s: %d files, %.1f s after the message", path.name, produced, latency)
    return {"input": path.name, "files": produced, "sent_at": sent_at, "latency_s": latency}


def cpu_seconds() -> tuple[float, float]:
    """Busy CPU seconds of the machine, and CPU seconds of this process and of its children that were waited for.

    The machine's count (``/proc/stat``) covers every process, and the time a hypervisor stole.
    """
    ticks = [int(value) for value in Path("/proc/stat").read_text().split()[1:9]]  # user ... steal, all CPUs
    busy = (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # less idle and iowait
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    return busy, sum(item.ru_utime + item.ru_stime for item in usage)


def job_milestones(log: str) -> list[dict[str, float]]:
    """Per job, in order: the log times (epoch seconds) of its milestones, and the duration compute_products logs."""
    jobs = []
    for stamp, logger, message in _LOG_LINE.findall(log):
        at = dt.datetime.strptime(stamp, "%Y-%m-%d %H:%M:%S,%f").timestamp()
        if message == "New message received.":
            jobs.append({"received": at})
            continue
        if not jobs:
            continue
        job = jobs[-1]
        job.setdefault("started", at)
        computed = _COMPUTED.match(message)
        if logger == "trollflow2_plugins.prenet" and message.startswith("PRE-Net on "):
            job["model loaded"] = at
        elif computed:
            job["computed"], job["read + model"] = at, float(computed[1])
        elif logger == "trollflow2_plugins.prenet" and _PICTURES.match(message):
            job["pictures made"] = at
        elif logger == "trollflow2.plugins" and message.startswith("Publishing"):
            job.setdefault("publishing", at)
    return jobs


def split(job: dict[str, float], sent: float, done: float, log_file: Path) -> dict[str, float]:
    """The parts `STEPS` of one message's latency, from sending it (``sent``) to its last completion (``done``)."""
    missing = {"received", "started", "model loaded", "computed", "publishing"} - set(job)
    if missing:
        raise RuntimeError(f"{log_file}: a job without the log line(s) of {', '.join(sorted(missing))}")
    pictures = job.get("pictures made", job["computed"])  # before the pictures were made apart: with the products
    marks = [sent, job["received"], job["started"], job["model loaded"], job["computed"] - job["read + model"],
             job["computed"], pictures, job["publishing"], done]
    return {step: round(end - start, 3) for step, start, end in zip(STEPS, marks[:-1], marks[1:], strict=True)}


def time_read(path: Path, bands: tuple[str, ...]) -> float:
    """Seconds to open ``path`` with satpy and read (compute) the channels of ``bands``."""
    import dask
    from satpy import Scene

    from satpy_prenet.channels import channel_name

    started = time.perf_counter()
    scene = Scene(filenames=[str(path)], reader="agri_fy4a_l1")
    names = [channel_name(key, "FY-4A") for key in bands]
    scene.load(names)
    dask.compute(*(scene[name] for name in names))
    return time.perf_counter() - started


def time_resample(path: Path, cache_dir: Path) -> dict[str, float]:
    """Seconds to resample the products of ``path``, made and kept in memory first, as the product list does.

    The first resampling finds the neighbours and caches them in ``cache_dir`` (as a case's first job does), the
    second reads them from there (as the later jobs do). The products are made with the embedded bundle:
    resampling does not depend on the model.
    """
    import dask
    import satpy
    from satpy import Scene

    settings = read_product_list(config_dir() / "trollflow2" / "agri_precipitation.yaml")["product_list"]
    with satpy.config.set(config_path=[str(config_dir())], prenet_weights=str(embedded_bundle_path())):
        scene = Scene(filenames=[str(path)], reader="agri_fy4a_l1")
        scene.load(list(PRODUCTS))
        for name, array in zip(PRODUCTS, dask.persist(*(scene[name] for name in PRODUCTS)), strict=True):
            scene[name] = array
        seconds = {}
        for cache in ("no cache", "cache on disk"):
            started = time.perf_counter()
            local = scene.resample(AREA, resampler=settings["resampler"],
                                   radius_of_influence=settings["radius_of_influence"], cache_dir=str(cache_dir))
            dask.compute(*(local[name] for name in PRODUCTS))
            seconds[cache] = round(time.perf_counter() - started, 3)
            del local
            gc.collect()  # drops satpy's resampler held in memory, as a job's end does; the cache on disk stays
    return seconds


def in_process(bundles: list[str], inputs: list[Path], workdir: Path) -> dict:
    """Reading (median over the input files, per bundle) and resampling, timed in this process."""
    reads = {}
    for bundle in bundles:
        bands = read_header(bundle_path(bundle, workdir)).bands
        reads[bundle] = round(statistics.median(time_read(path, bands) for path in inputs), 3)
        LOG.info("Read of the %d channels of the %s bundle: %.1f s", len(bands), bundle, reads[bundle])
    with tempfile.TemporaryDirectory(prefix="resample-cache-", dir=workdir) as cache_dir:
        resample = time_resample(inputs[0], Path(cache_dir))
    LOG.info("Resampling of the products to %s: %s", AREA, resample)
    return {"read_s": reads, "resample_s": resample}


def derive(case: dict, measured: dict) -> None:
    """Add each message's model and write seconds: the chain's figures less the in-process read and resampling."""
    for index, message in enumerate(case["messages"]):
        resample = measured["resample_s"]["no cache" if index == 0 else "cache on disk"]
        message["derived_s"] = {
            "read (in-process)": measured["read_s"][case["bundle"]],
            "model": round(message["split_s"]["read + model"] - measured["read_s"][case["bundle"]], 3),
            "resample (in-process)": resample,
            "write": round(message["split_s"]["resample + write"] - resample, 3),
        }


def run_cases_in_children(args: argparse.Namespace, inputs: list[Path], workdir: Path) -> list[dict]:
    """Run each case in a process of its own (its peak memory then covers that case only)."""
    cases = []
    for bundle in args.bundles:
        for mode in args.modes:
            command = [sys.executable, __file__, "--case", bundle, mode, "--workdir", str(workdir),
                       "--inputs", *map(str, inputs)]
            command += ["--slot", f"{args.slot:%Y-%m-%dT%H:%M}"] if args.slot else []
            timeout = len(inputs) * (JOB_TIMEOUT_S[bundle] + 120) + 300
            output = subprocess.run(command, check=True, stdout=subprocess.PIPE, text=True, timeout=timeout).stdout
            cases.append(json.loads(output.strip().splitlines()[-1]))
            print(json.dumps(cases[-1]))
    return cases


DERIVED = ("read (in-process)", "model", "resample (in-process)", "write")


def write_report(report: dict, out: Path) -> None:
    """``chain_latency_cpu.json`` and a markdown summary ``chain_latency_cpu.md`` in ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    stem = out / "chain_latency_cpu"
    stem.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    other = ", ".join(f"{case['bundle']} {case['mode']} {case['other_cpu_percent']} %" for case in report["cases"])
    files = report["cases"][0]["messages"][0]["files"]
    lines = [
        f"# Chain latency: posttroll message to all product files of one FY-4A full disc ({report['date']})", "",
        f"Machine: {json.dumps(report['machine'])}", "",
        "trollflow2 `satpy_launcher.py` with `etc/trollflow2/agri_precipitation.yaml` (publisher moved to a free "
        f"loopback port), {files} product files per message, one simulated full disc (2748 x 2748) per message, "
        "messages one after another. `small`: the embedded demo bundle; `paper`: the paper preset with untrained "
        "random weights. `fresh`: one job process per message; `threaded`: `-t`, the model stays loaded. Peak RSS: the "
        "largest of the launcher and its job processes (`RUSAGE_CHILDREN`), so in threaded mode everything, in fresh "
        f"mode the largest job. CPU used by other work (other processes, hypervisor steal) during each case: {other} "
        "(machine busy time less the case's own; about +-1 % of accounting noise).",
        "",
        "## Latency per message, split with the timestamps of the launcher log (chain)", "",
        *table(report["cases"], ["latency s", *STEPS, "peak RSS MiB"],
               lambda case, message: [message["latency_s"], *(message["split_s"][step] for step in STEPS),
                                      case["peak_rss_mib"]]),
        "", "Ends of the parts: transport: `New message received.`; start + imports: the job's first log line "
        "(posttroll's `Publisher for ... started`, when the product list is read); model load: `PRE-Net on ... with "
        "... bundle`; check + scene (input check, scene creation, loading the composites): start of "
        "`compute_products`; read + model: the duration `compute_products` logs for the products; pictures: its "
        "`Made ...` line (0 for a version that made them with the products); resample + write: the first "
        "`Publishing` line; publish: the last completion message received. Log times are truncated to the millisecond, "
        "so a part can read -0.00.", "",
        "## Read and model, resample and write (in-process measurement)", "",
        "Read: satpy `Scene` of the file, loading and computing the bundle's channels (median over the input files); "
        "resample: the products, made and kept in memory, resampled to `prenet_east_asia_0p04` as the product list "
        "says and computed, with no neighbour cache (a case's first message) or with the one on disk (later "
        "messages); both timed in the benchmark process. Model = chain read + model - read; write = chain resample "
        "+ write - resample.", "",
        *table(report["cases"], DERIVED, lambda case, message: [message["derived_s"][part] for part in DERIVED]),
    ]
    stem.with_suffix(".md").write_text("\n".join(lines) + "\n")


def table(cases: list[dict], columns, values) -> list[str]:
    """Markdown rows, one per message of each case: bundle, mode, message number, then ``values(case, message)``."""
    rows = [f"| bundle | mode | msg | {' | '.join(columns)} |", "|---|---|---|" + "---|" * len(columns)]
    for case in cases:
        for number, message in enumerate(case["messages"], start=1):
            cells = " | ".join(f"{value:.2f}" for value in values(case, message))
            rows.append(f"| {case['bundle']} | {case['mode']} | {number} | {cells} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundles", nargs="+", choices=["small", "paper"], default=["small", "paper"])
    parser.add_argument("--modes", nargs="+", choices=["fresh", "threaded"], default=["fresh", "threaded"])
    parser.add_argument("--messages", type=int, default=3,
                        help="messages (full discs, 15 minutes apart) per case; all must be processed within the "
                             "product list's limit of 180 minutes after their slot")
    parser.add_argument("--workdir", type=Path, help="inputs, bundles, products and logs (default: a temp dir)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder of the result files")
    parser.add_argument("--seed", type=int, default=7, help="of the simulated world and the untrained weights")
    parser.add_argument("--slot", type=lambda text: dt.datetime.strptime(text, "%Y-%m-%dT%H:%M"), default=None,
                        help="UTC slot of the newest disc, e.g. 2026-07-15T06:00, so that runs compare the same "
                             "discs (default: the current slot)")
    parser.add_argument("--case", nargs=2, metavar=("BUNDLE", "MODE"), help=argparse.SUPPRESS)
    parser.add_argument("--inputs", nargs="+", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s %(levelname)s %(name)s] %(message)s")
    if args.case:
        print(json.dumps(run_case(*args.case, args.inputs, args.workdir, args.slot)))
        return
    with tempfile.TemporaryDirectory(prefix="chain-latency-") as temporary:
        workdir = (args.workdir or Path(temporary)).absolute()
        inputs = simulate_inputs(workdir / "input", args.messages, args.seed, args.slot)
        if "paper" in args.bundles:
            build_paper_bundle(bundle_path("paper", workdir), args.seed)
        measured = in_process(args.bundles, inputs, workdir)
        cases = run_cases_in_children(args, inputs, workdir)
    for case in cases:
        derive(case, measured)
    report = {"benchmark": "chain latency, posttroll message to all product files of one FY-4A full disc",
              "date": dt.date.today().isoformat(), "machine": machine(), "in_process": measured, "cases": cases}
    write_report(report, args.out)


if __name__ == "__main__":
    main()
