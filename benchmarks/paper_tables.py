"""The paper's Tables 2, 3, 4, 5 and 7 reproduced on the simulated world, several seeds per row, resumable.

Every figure this script writes is on SIMULATED data (docs/simulation.md), with models trained on that data; the
paper's figures, printed beside them, are on the authors' real data. Same-named rows are the same experiment, not
the same numbers.

Base: ``--base WORKDIR`` holds ``datasets/`` (the Swath-MPR and Full-IPR stores, e.g. ``build/demo-bundle`` made
by ``make bundle``). Settings: ``--config`` (default ``etc/training/tables.yaml``). Runs go to
``<runs>/seed<N>/<run>/`` (default ``build/paper-tables``); results to ``<results>.json`` and ``<results>.md``
(default ``benchmarks/results/paper_tables_simulated``). The seed goes into every stage's ``seed``.

Per seed:

* ``teacher``: the teacher classifier, and the regressor when Table 5 or 7 is asked for (``seed<N>/teacher``).
* Stage I variants (classifier head; scored on the Swath-MPR ``test`` split: CSI / POD / FAR of P(rain) >= 0.5 with
  `ValidationScores`): ``unet`` (rmkd and dawe off, lambda_kd = gamma_rec = 0: the IR-only UNet), ``kd`` (rmkd and
  dawe off, feature KD on), ``mkd`` (rmkd on with n_splits = 1, dawe off), ``rmkd`` (rmkd on, dawe off), ``dawe``
  (rmkd off, dawe on, KD on) and ``prenet`` (both on; both heads when Table 5 or 7 is asked for).
  Table 2 = (RMKD, DAWE) rows xx: unet, vx: rmkd, xv: dawe, vv: prenet. Table 3 = unet, kd, mkd, rmkd.
* Stage II / Table 4 (classifier; scored on the Full-IPR ``test`` split, same scores): ``scratch`` = the ``direct``
  stage (the student fitted on Full-IPR alone); ``kd+none`` = adapt with masktune none from the ``kd`` student;
  ``prenet+none``, ``prenet+rand``, ``prenet+self`` = adapt from the ``prenet`` student. Each is also scored on
  the unseen disc of Table 5, against both of its labels (``--stage2`` picks the rows to run).
* Table 5: the bundles of ``prenet+self`` and of ``direct`` (both heads, ``run_stage("export", ...)``) scored with
  `evaluate_store` on an unseen simulated full disc (world seed 41, 2026-08-10 06:00 UTC, FY-4A: a seed and time
  no training uses; built once under ``<runs>/unseen``), beside GPI, the auto-estimator, and the tuned threshold
  and per-pixel trees of `fit_baselines` on the base's Full-IPR train split (fitted once, ``<runs>/baselines``;
  these do not depend on the seed and are scored once); the teacher (classifier) on the Swath-MPR test split is
  the upper reference. Table 5 is scored twice: against the instantaneous rain at each pixel, and against the
  CLDAS-like hourly label that the Full-IPR training tiles carry (``<runs>/unseen-hourly``, the CLDAS domain).
  The paper's products (IMERG, PDIR, PERSIANN-CCS) are not available here.
* Table 7: the ``prenet+self`` bundle and the trees on the unseen disc with Gaussian noise on the brightness
  temperatures: additive (sigma 0.5, 1, 2 K) and multiplicative (sigma 1 %, 2 %), written as noisy copies of the
  unseen store with a fixed noise seed; CSI and RMSE.

Ablated students are distilled from the seed's teacher (a teacher does not depend on the student's architecture).

Resumable: a run whose training is recorded in the JSON is not trained again, a scored row is not scored again, and
an interrupted stage continues from its ``last.pt`` (``resume=True``).

    python benchmarks/paper_tables.py --base build/demo-bundle --seeds 0 1 2
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import math
import shutil
import statistics
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from unseen_disc_evaluation import LABELS, disc_store  # this folder

from satpy_prenet.data.stores import FULL_IPR, SWATH_MPR, append_tiles, open_tiles, store_path
from satpy_prenet.evaluation.baselines import THRESHOLD_FILE, TREES_FILE, fit_baselines
from satpy_prenet.evaluation.evaluate import evaluate_store
from satpy_prenet.evaluation.methods import load_method
from satpy_prenet.evaluation.metrics import RAIN_THRESHOLD
from satpy_prenet.training.adapt import adapted_network
from satpy_prenet.training.checkpoints import load_checkpoint
from satpy_prenet.training.common import restore_weights, size_multiple, student_network, teacher_network
from satpy_prenet.training.config import CONFIG_STAGES, HEADS, TrainingConfig, load_config
from satpy_prenet.training.datasets import Normalisation, open_split
from satpy_prenet.training.export import bundle_path
from satpy_prenet.training.losses import RAIN_CLASS
from satpy_prenet.training.stages import run_stage
from satpy_prenet.training.teacher import NORMALISATION_CACHE, teacher_inputs
from satpy_prenet.training.trainer import data_loader
from satpy_prenet.training.validation import ValidationScores, threshold_contingency

REPO = Path(__file__).resolve().parents[1]
RUNS = REPO / "build" / "paper-tables"
RESULTS = Path(__file__).parent / "results" / "paper_tables_simulated"
TABLES = ("2", "3", "4", "5", "7")

#: Stage I variants: (changes to the model's architecture, changes to the distill section).
STAGE_I: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {
    "unet": ({"rmkd": False, "dawe": False}, {"lambda_kd": 0.0, "gamma_rec": 0.0}),
    "kd": ({"rmkd": False, "dawe": False}, {}),
    "mkd": ({"rmkd": True, "n_splits": 1, "dawe": False}, {}),
    "rmkd": ({"rmkd": True, "dawe": False}, {}),
    "dawe": ({"rmkd": False, "dawe": True}, {}),
    "prenet": ({}, {}),
    # Response distillation (not in the paper; docs/training.md): on the IR-only UNet alone, and added to PRE-Net's.
    "unet+response": ({"rmkd": False, "dawe": False}, {"lambda_kd": 0.0, "gamma_rec": 0.0, "lambda_response": 2.0}),
    "prenet+response": ({}, {"lambda_response": 2.0}),
    # best.pt chosen by the validation loss instead of the validation CSI (learning_vs_size.py).
    "unet@loss": ({"rmkd": False, "dawe": False}, {"lambda_kd": 0.0, "gamma_rec": 0.0, "validation_metric": "loss"}),
    "prenet@loss": ({}, {"validation_metric": "loss"}),
}
#: Stage II variants: (the Stage I student adapted, changes to the adapt section); ``scratch`` is the direct stage.
STAGE_II: dict[str, tuple[str, dict[str, Any]]] = {
    "kd+none": ("kd", {"masktune": "none"}),
    "prenet+none": ("prenet", {"masktune": "none"}),
    "prenet+rand": ("prenet", {"masktune": "rand"}),
    "prenet+self": ("prenet", {"masktune": "self"}),
}
#: The rows of Table 4.
STAGE_II_ROWS = ("scratch", *STAGE_II)
#: The rows of each table: (label, row key, the paper's CSI).
TABLE_ROWS: dict[str, list[tuple[str, str, float | None]]] = {
    "2": [("RMKD × DAWE × (IR-only UNet)", "stage1/unet", 0.1831), ("RMKD ✓ DAWE ×", "stage1/rmkd", 0.3106),
          ("RMKD × DAWE ✓", "stage1/dawe", 0.2138), ("RMKD ✓ DAWE ✓ (PRE-Net Stage I)", "stage1/prenet", 0.3322)],
    "3": [("UNet (IR only)", "stage1/unet", 0.1831), ("KD", "stage1/kd", 0.2393), ("MKD (n = 1)", "stage1/mkd", 0.2831),
          ("RMKD", "stage1/rmkd", 0.3106)],
    "4": [("train from scratch (direct)", "stage2/scratch", 0.2869), ("KD + Non-MaskTune", "stage2/kd+none", 0.3081),
          ("PRE-Net + Non-MaskTune", "stage2/prenet+none", 0.2791),
          ("PRE-Net + Rand-MaskTune", "stage2/prenet+rand", 0.3274),
          ("PRE-Net + Self-MaskTune", "stage2/prenet+self", 0.3912)],
}
TABLE_TITLES = {
    "2": "Table 2: RMKD and DAWE (Stage I, Swath-MPR test split)",
    "3": "Table 3: distillation schemes (Stage I, Swath-MPR test split)",
    "4": "Table 4: Stage II and MaskTune (Full-IPR test split)",
    "5": "Table 5: products on an unseen simulated full disc",
    "7": "Table 7: robustness to noise on the brightness temperatures (unseen disc)",
}
#: The unseen disc of Tables 4, 5 and 7: world seed, platform and time no training configuration uses.
UNSEEN = {"seed": 41, "platform": "FY-4A", "time": "2026-08-10T06:00"}
#: The labels the unseen disc is scored against.
UNSEEN_LABELS = tuple(LABELS)
#: Table 7's perturbations: name -> (kind, sigma); additive in K, multiplicative as a fraction.
NOISE: dict[str, tuple[str, float]] = {"clean": ("none", 0.0), "additive 0.5 K": ("additive", 0.5),
                                       "additive 1 K": ("additive", 1.0), "additive 2 K": ("additive", 2.0),
                                       "multiplicative 1 %": ("multiplicative", 0.01),
                                       "multiplicative 2 %": ("multiplicative", 0.02)}
NOISE_SEED = 7
#: Table 5 methods: (name, row key in the products), with the paper's CSI where the paper has that product.
PRODUCT_COLUMNS = ("rmse", "cc", "pod", "far", "csi", "csi4", "csi8")
PAPER_TABLE5 = {"PRE-Net (prenet+self)": {"rmse": 0.8714, "cc": 0.5028, "pod": 0.5597, "far": 0.4349, "csi": 0.3912,
                                          "csi4": 0.4405, "csi8": 0.4815}}
PAPER_PRODUCTS = "IMERG CSI 0.3482, PDIR 0.2781, PERSIANN-CCS 0.2172 (products not available here)"
PAPER_TABLE7 = {"clean": (0.3912, 0.8714), "additive": (0.3753, 0.8751), "multiplicative": (0.3895, 0.8731)}
PAPER_TEACHER_CSI = 0.4710  # the paper's Table 9, its teacher on the swaths
#: Settings a resumed invocation must share with the one that made the results.
FIXED_SETTINGS = ("base", "config_content", "max_steps", "unseen", "unseen_store", "noise", "noise_seed")
DEFINITIONS = __doc__.split("\n\n", 1)[1].rsplit("\n\n    python", 1)[0]


# --- run folders and training ------------------------------------------------------------------------------------


@dataclasses.dataclass
class Context:
    """What every step of one invocation shares.

    Attributes:
        config: The training configuration (seeds and step caps not yet applied).
        base: Work directory holding ``datasets/``.
        runs: Folder of the runs.
        device: Torch device of training and scoring.
        results: The results document, written after every step.
        path: The JSON file of the results.
        trained: Number of stage runs (heads) and exports trained in this invocation.
    """

    config: TrainingConfig
    base: Path
    runs: Path
    device: str
    results: dict[str, Any]
    path: Path
    trained: int = 0

    @property
    def data(self) -> Path:
        """The dataset root."""
        return self.base / "datasets"

    def save(self) -> None:
        """Write the results JSON (through a temporary file)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.results, indent=1, default=_json_default))
        tmp.replace(self.path)


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def seeded_config(config: TrainingConfig, seed: int, max_steps: int | None) -> TrainingConfig:
    """The configuration with ``seed`` in every stage (and the step cap of smoke runs)."""
    changes = {"seed": seed}
    if max_steps:
        changes["max_steps_per_epoch"] = max_steps
    return dataclasses.replace(config, **{stage: dataclasses.replace(config.stage(stage), **changes)
                                          for stage in CONFIG_STAGES})


def variant_config(config: TrainingConfig, architecture: dict[str, Any], stage: str | None = None,
                   changes: dict[str, Any] | None = None) -> TrainingConfig:
    """The configuration with the architecture changes and the changes of one stage section."""
    model = dataclasses.replace(config.model, architecture={**config.model.architecture, **architecture})
    config = dataclasses.replace(config, model=model)
    if stage and changes:
        config = dataclasses.replace(config, **{stage: dataclasses.replace(config.stage(stage), **changes)})
    return config


def _link(link: Path, target: Path) -> None:
    """A symbolic link ``link`` -> ``target`` unless ``link`` exists."""
    if not link.exists() and not link.is_symlink():
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(target.resolve())


def train(context: Context, key: str, stage: str, config: TrainingConfig, workdir: Path,
          heads: Sequence[str]) -> None:
    """Train the heads of ``stage`` in ``workdir`` that the results do not record yet; record each."""
    runs = context.results.setdefault("runs", {})
    for head in heads:
        record = f"{key}/{head}"
        if record in runs:
            continue
        print(f"train {record}", flush=True)
        started = time.perf_counter()
        result = run_stage(stage, config, workdir, data=context.data, heads=(head,), device=context.device,
                           resume=True)[head]
        runs[record] = {"seconds": round(time.perf_counter() - started, 1), "epochs": result.epochs,
                        "best_epoch": result.best_epoch, "validation": {result.metric: result.best_value},
                        "epoch_seconds": _epoch_seconds(result.directory)}
        context.trained += 1
        context.save()


def _epoch_seconds(directory: Path) -> list[float]:
    path = directory / "metrics.jsonl"
    return [json.loads(line)["seconds"] for line in path.read_text().splitlines()] if path.is_file() else []


def export(context: Context, key: str, config: TrainingConfig, workdir: Path, source: str) -> Path:
    """The bundle of ``source`` in ``workdir``, exported unless the results record it."""
    runs = context.results.setdefault("runs", {})
    path = bundle_path(workdir, config.model.preset, source)
    if key not in runs or not path.is_file():
        print(f"export {key}", flush=True)
        started = time.perf_counter()
        run_stage("export", config, workdir, data=context.data, device=context.device, source=source)
        runs[key] = {"seconds": round(time.perf_counter() - started, 1), "bundle": str(path)}
        context.trained += 1
        context.save()
    return path


class SeedRuns:
    """The runs of one seed: folders, configurations, and training on demand.

    Args:
        context: The invocation's context.
        seed: The seed.
        max_steps: Cap on the steps per epoch (smoke runs).
        both_heads: Train the regressors that Tables 5 and 7 need.
    """

    def __init__(self, context: Context, seed: int, max_steps: int | None, both_heads: bool) -> None:
        self.context = context
        self.seed = seed
        self.folder = context.runs / f"seed{seed}"
        self.config = seeded_config(context.config, seed, max_steps)
        self.both_heads = both_heads

    def key(self, name: str) -> str:
        """The results key of a run of this seed."""
        return f"seed{self.seed}/{name}"

    def teacher(self) -> Path:
        """The teachers of this seed: the classifier, and the regressor where the bundles need one."""
        workdir = self.folder / "teacher"
        train(self.context, self.key("teacher"), "teacher", self.config, workdir, self.heads)
        return workdir

    @property
    def heads(self) -> tuple[str, ...]:
        """The heads of the runs that feed bundles: both when Tables 5 or 7 are asked for, else the classifier."""
        return HEADS if self.both_heads else ("classifier",)

    def stage_one(self, variant: str) -> tuple[Path, TrainingConfig]:
        """The Stage I student of ``variant``: its folder and configuration."""
        architecture, changes = STAGE_I[variant]
        config = variant_config(self.config, architecture, "distill", changes)
        workdir = self.folder / f"distill-{variant}"
        heads = self.heads if variant == "prenet" else ("classifier",)
        teacher = self.teacher()
        for head in heads:
            _link(workdir / "checkpoints" / f"teacher-{head}", teacher / "checkpoints" / f"teacher-{head}")
        _link(workdir / "checkpoints" / NORMALISATION_CACHE, teacher / "checkpoints" / NORMALISATION_CACHE)
        train(self.context, self.key(f"distill-{variant}"), "distill", config, workdir, heads)
        return workdir, config

    def stage_two(self, variant: str) -> tuple[Path, TrainingConfig]:
        """The Stage II student of ``variant`` (``scratch``: the direct stage): its folder and configuration."""
        if variant == "scratch":
            return self.direct()
        student, changes = STAGE_II[variant]
        upstream, config = self.stage_one(student)
        config = dataclasses.replace(config, adapt=dataclasses.replace(config.adapt, **changes))
        workdir = self.folder / f"adapt-{variant.replace('+', '-')}"
        heads = self.heads if variant == "prenet+self" else ("classifier",)
        for name in [f"{stage}-{head}" for stage in ("teacher", "distill") for head in heads] + [NORMALISATION_CACHE]:
            _link(workdir / "checkpoints" / name, upstream / "checkpoints" / name)
        train(self.context, self.key(f"adapt-{variant}"), "adapt", config, workdir, heads)
        return workdir, config

    def direct(self) -> tuple[Path, TrainingConfig]:
        """The direct fit (train from scratch on Full-IPR): its folder and configuration."""
        teacher = self.teacher()
        workdir = self.folder / "direct"
        _link(workdir / "checkpoints" / NORMALISATION_CACHE, teacher / "checkpoints" / NORMALISATION_CACHE)
        heads = self.heads
        train(self.context, self.key("direct"), "direct", self.config, workdir, heads)
        return workdir, self.config

    def bundles(self) -> dict[str, Path]:
        """The exported bundles of ``prenet+self`` and of the direct fit."""
        adapted, config = self.stage_two("prenet+self")
        direct, _ = self.direct()
        return {"PRE-Net (prenet+self)": export(self.context, self.key("export-prenet+self"), config, adapted, "adapt"),
                "direct fit (scratch)": export(self.context, self.key("export-direct"), self.config, direct,
                                               "direct")}


# --- scores --------------------------------------------------------------------------------------------------------


@torch.no_grad()
def checkpoint_scores(config: TrainingConfig, data: Path, workdir: Path, stage: str, head: str = "classifier",
                      device: str = "cpu", tuning_data: Path | None = None) -> dict[str, float]:
    """Scores of ``<workdir>/checkpoints/<stage>-<head>/best.pt`` on the test split of its stage's store.

    Teacher and distill on Swath-MPR, adapt and direct on Full-IPR; classifier: CSI, POD, FAR of P(rain) >= 0.5
    (`ValidationScores`), and under ``tuned`` the same at the threshold of the model's ``threshold_grid`` with the
    best CSI on the validation split of ``tuning_data`` (default ``data``; the training data's, where ``data`` is
    an unseen disc), as export tunes a bundle's (`tuned_scores`); regressor: RMSE on raining pixels.
    """
    directory = workdir / "checkpoints"
    state = load_checkpoint(directory / f"{stage}-{head}" / "best.pt", stage=stage, head=head)
    network = _network(config, directory, stage, head)
    restore_weights(network, state, directory / f"{stage}-{head}" / "best.pt")
    network.to(device).eval()
    kind = SWATH_MPR if stage in ("teacher", "distill") else FULL_IPR
    normalisation = Normalisation.from_dict(state["normalisation"])

    def split(name: str, root: Path = data):
        return open_split(root, kind, name, bands=config.model.bands, normalisation=normalisation,
                          size_multiple=size_multiple(config.model))

    forward: Callable[[dict[str, Any]], torch.Tensor] = (
        (lambda batch: network(*teacher_inputs(batch)).out) if stage == "teacher" else
        (lambda batch: network(batch["ir"]).out))
    scores = ValidationScores(head, config.model.regressor_pixels)
    for batch in _batches(split("test"), device):
        scores.update(forward(batch).float(), batch["label"])
    result = scores.result()
    if head == "classifier":
        result["tuned"] = tuned_scores(forward, split("validation", tuning_data or data), split("test"),
                                       config.model.threshold_grid, device)
    return result


def _batches(dataset, device: str):
    """Batches of ``dataset`` on ``device``."""
    for batch in data_loader(dataset, 8, num_workers=0, device=torch.device(device)):
        yield {name: value.to(device) if isinstance(value, torch.Tensor) else value for name, value in batch.items()}


def tuned_scores(forward: Callable[[dict[str, Any]], torch.Tensor], validation, test, grid: Sequence[float],
                 device: str) -> dict[str, float]:
    """CSI, POD and FAR on ``test`` at the threshold of ``grid`` with the best CSI on ``validation``.

    A classifier scored at P(rain) >= 0.5 is scored on its calibration as much as on how it ranks pixels; trained
    differently (e.g. on masked inputs) two students can rank alike and still differ there. The product uses the
    tuned threshold, so this is the score that carries over.
    """
    thresholds = torch.tensor(grid, dtype=torch.float64)

    def counts(dataset) -> torch.Tensor:  # hits, misses, false alarms per threshold
        total = torch.zeros(3, len(thresholds), dtype=torch.float64)
        for batch in _batches(dataset, device):
            label = batch["label"]
            valid = torch.isfinite(label)
            probability = torch.softmax(forward(batch).float(), dim=1)[:, RAIN_CLASS]
            total += threshold_contingency(probability[valid], label[valid] >= RAIN_THRESHOLD, thresholds)
        return total

    validation_counts = counts(validation)
    chosen = int(torch.argmax(torch.nan_to_num(validation_counts[0] / validation_counts.sum(0), nan=-1.0)))
    hits, misses, false_alarms = counts(test)[:, chosen].tolist()
    return {"threshold": float(thresholds[chosen]), "csi": _ratio(hits, hits + misses + false_alarms),
            "pod": _ratio(hits, hits + misses), "far": _ratio(false_alarms, hits + false_alarms)}


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else math.nan


def _network(config: TrainingConfig, directory: Path, stage: str, head: str) -> torch.nn.Module:
    if stage == "teacher":
        return teacher_network(config.model, head)
    if stage == "adapt":
        distilled = load_checkpoint(directory / f"distill-{head}" / "best.pt", stage="distill", head=head)
        return adapted_network(config.model, config.adapt, head, distilled, str(directory / f"distill-{head}"))
    return student_network(config.model, head)


def product_scores(store_root: Path, methods: dict[str, str | Path], device: str = "cpu") -> dict[str, dict]:
    """`evaluate_store` rows (RMSE, CC, POD, FAR, CSI, CSI-4, CSI-8, ...) of named methods on a Full-IPR test store.

    Args:
        store_root: Dataset root holding ``full_ipr/test.zarr``.
        methods: Name in the tables -> spec of `load_method` (bundle, baseline file, ``gpi``, ``autoestimator``).
        device: Torch device of the bundles, which run in float32 on any machine (``auto`` would pick bfloat16 on
            CPUs that have it, and the tables compare runs of several machines).
    """
    loaded = [dataclasses.replace(load_method(str(spec), device=device, precision="float32"), name=name)
              for name, spec in methods.items()]
    comparison = evaluate_store(store_root, loaded, split="test", progress=False, fss=False)
    return {row["method"]: {key: value for key, value in row.items() if key != "method"}
            for row in comparison.table()}


def noisy_store(source_root: Path, target_root: Path, kind: str, sigma: float, seed: int) -> Path:
    """A copy of the Full-IPR test store under ``source_root`` with Gaussian noise on the brightness temperatures.

    ``additive``: T + N(0, sigma) K; ``multiplicative``: T (1 + N(0, sigma)). The noise of tile i comes from
    ``default_rng([seed, i])``, so the copy is the same whatever the chunking. A finished copy (marked by
    ``complete.json``) is kept; an unfinished one is written again.
    """
    marker = target_root / "complete.json"
    settings = {"source": str(source_root), "kind": kind, "sigma": sigma, "seed": seed}
    if marker.is_file() and json.loads(marker.read_text()) == settings:
        return target_root
    shutil.rmtree(target_root, ignore_errors=True)
    source = store_path(source_root, FULL_IPR, "test")
    tiles = open_tiles(source, FULL_IPR)
    attrs = {key: value for key, value in tiles.attrs.items() if key not in ("kind", "layout_version")}
    attrs["noise"] = settings
    for start in range(0, tiles.sizes["tile"], 8):
        chunk = tiles.isel(tile=slice(start, start + 8)).load()
        ir = chunk["ir"].values.astype(np.float64)
        noise = np.stack([np.random.default_rng([seed, start + i]).normal(0.0, sigma, ir.shape[1:])
                          for i in range(len(ir))])
        chunk["ir"].values = (ir + noise if kind == "additive" else ir * (1.0 + noise)).astype(np.float32)
        chunk.attrs = {}
        append_tiles(store_path(target_root, FULL_IPR, "test"), chunk, kind=FULL_IPR, attrs=attrs)
    marker.write_text(json.dumps(settings))
    return target_root


def unseen_store(runs: Path, label: str = "instantaneous") -> Path:
    """The Full-IPR test store of the unseen simulated disc (:data:`UNSEEN`) with ``label`` (``instantaneous`` or
    ``hourly``, see `disc_store`), built once under ``<runs>/unseen`` (``<runs>/unseen-hourly``)."""
    root = runs / ("unseen" if label == "instantaneous" else f"unseen-{label}")
    marker = root / "complete.json"
    settings = {**UNSEEN, "label": label}
    if marker.is_file() and json.loads(marker.read_text()) == settings:
        return root
    shutil.rmtree(root, ignore_errors=True)
    print(f"simulate the unseen disc {settings}", flush=True)
    disc_store(root, UNSEEN["seed"], UNSEEN["platform"], dt.datetime.fromisoformat(UNSEEN["time"]), label)
    marker.write_text(json.dumps(settings))
    return root


def baselines(context: Context) -> dict[str, Path]:
    """The tuned threshold and the trees fitted on the base's Full-IPR train split (once), with GPI and AE."""
    workdir = context.runs / "baselines"
    runs = context.results.setdefault("runs", {})
    if "baselines" not in runs or not (workdir / TREES_FILE).is_file():
        print("fit the baselines", flush=True)
        started = time.perf_counter()
        fit_baselines(context.data, workdir, context.config.model.bands, seed=0)
        runs["baselines"] = {"seconds": round(time.perf_counter() - started, 1), "workdir": str(workdir)}
        context.save()
    return {"GPI": "gpi", "auto-estimator": "autoestimator", "threshold (tuned)": workdir / THRESHOLD_FILE,
            "trees (IR)": workdir / TREES_FILE}


def table5_rows(bundles: dict[str, Path], store_root: Path, device: str = "cpu") -> dict[str, dict]:
    """Table 5 rows of the seed's bundles on the unseen store."""
    return product_scores(store_root, {name: path for name, path in bundles.items()}, device)


def table7_rows(methods: dict[str, str | Path], store_root: Path, noise_root: Path,
                device: str = "cpu") -> dict[str, dict[str, dict[str, float]]]:
    """Per noise level of :data:`NOISE`: CSI and RMSE of each method on a noisy copy of the store."""
    rows = {}
    for level, (kind, sigma) in NOISE.items():
        root = store_root if kind == "none" else noisy_store(
            store_root, noise_root / level.replace(" ", "-").replace("%", "pct"), kind, sigma,
            NOISE_SEED + list(NOISE).index(level))
        scores = product_scores(root, methods, device)
        rows[level] = {name: {"csi": row["csi"], "rmse": row["rmse"], "n_pixels": row["n_pixels"]}
                       for name, row in scores.items()}
    return rows


def score(context: Context, key: str, compute: Callable[[], Any]) -> Any:
    """``results['scores'][key]``, computed (and saved) unless present."""
    scores = context.results.setdefault("scores", {})
    if key not in scores:
        print(f"score {key}", flush=True)
        scores[key] = compute()
        context.save()
    return scores[key]


# --- one seed ----------------------------------------------------------------------------------------------------


def run_seed(context: Context, runs: SeedRuns, tables: Sequence[str], discs: dict[str, Path],
             stage2: Sequence[str] = STAGE_II_ROWS) -> None:
    """Train and score every row of ``tables`` for one seed (of Table 4, the ``stage2`` rows).

    ``discs``: the unseen disc's stores by label (``instantaneous``, ``hourly``); Table 4's classifiers are scored on
    each as well as on the Full-IPR test split, Table 5's bundles on each, Table 7 on the instantaneous one.
    """
    unseen, hourly = discs.get("instantaneous"), discs.get("hourly")
    if set(tables) & {"2", "3", "5", "7"}:  # the upper reference of the orderings and of Table 5
        teacher = runs.teacher()
        score(context, runs.key("teacher/swath"),
              lambda: checkpoint_scores(runs.config, context.data, teacher, "teacher", device=context.device))
    stage_one = sorted({key.split("/")[1] for table in ("2", "3") if table in tables
                        for _, key, _ in TABLE_ROWS[table]}, key=list(STAGE_I).index)
    for variant in stage_one:
        workdir, config = runs.stage_one(variant)
        score(context, runs.key(f"stage1/{variant}"),
              lambda config=config, workdir=workdir: checkpoint_scores(config, context.data, workdir, "distill",
                                                                       device=context.device))
    if "4" in tables:
        for variant in stage2:
            workdir, config = runs.stage_two(variant)
            stage = "direct" if variant == "scratch" else "adapt"
            for suffix, root in [("", context.data)] + [(f"/disc-{label}", disc) for label, disc in discs.items()]:
                score(context, runs.key(f"stage2/{variant}{suffix}"),
                      lambda config=config, workdir=workdir, stage=stage, root=root: checkpoint_scores(
                          config, root, workdir, stage, device=context.device, tuning_data=context.data))
    if "5" in tables or "7" in tables:
        bundles = runs.bundles()
        if "5" in tables:
            score(context, runs.key("table5"), lambda: table5_rows(bundles, unseen, context.device))
            if hourly is not None:
                score(context, runs.key("table5-hourly"), lambda: table5_rows(bundles, hourly, context.device))
        if "7" in tables:
            prenet = {"PRE-Net (prenet+self)": bundles["PRE-Net (prenet+self)"]}
            score(context, runs.key("table7"),
                  lambda: table7_rows(prenet, unseen, context.runs / "unseen-noise", context.device))


def reference_rows(context: Context, tables: Sequence[str], unseen: Path, hourly: Path | None = None) -> None:
    """The seed-independent rows: the baselines on the unseen disc (Table 5, also on the ``hourly`` label's store)
    and the trees under noise (Table 7)."""
    methods = baselines(context)
    if "5" in tables:
        score(context, "baselines/table5", lambda: product_scores(unseen, methods, context.device))
        if hourly is not None:
            score(context, "baselines/table5-hourly", lambda: product_scores(hourly, methods, context.device))
    if "7" in tables:
        trees = {"trees (IR)": methods["trees (IR)"]}
        score(context, "baselines/table7", lambda: table7_rows(trees, unseen, context.runs / "unseen-noise",
                                                                context.device))


# --- report ------------------------------------------------------------------------------------------------------


def _values(scores: dict[str, Any], seeds: Sequence[int], key: str, path: Sequence[str]) -> list[float]:
    values = []
    for seed in seeds:
        value: Any = scores.get(f"seed{seed}/{key}")
        for part in path:
            value = value.get(part) if isinstance(value, dict) else None
        if isinstance(value, (int, float)) and math.isfinite(value):
            values.append(float(value))
    return values


def mean_sd(values: Sequence[float]) -> str:
    """``mean ± sd (n)`` of the values, ``-`` if there are none."""
    if not values:
        return "-"
    spread = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4f} ± {spread:.4f} (n={len(values)})"


def _mean(values: Sequence[float]) -> float:
    return statistics.mean(values) if values else float("nan")


def classifier_table(table: str, scores: dict[str, Any], seeds: Sequence[int]) -> list[str]:
    """Markdown of Table 2, 3 or 4: CSI, POD, FAR and the CSI at the validation-tuned threshold as mean ± sd over
    seeds beside the paper's CSI (Table 4: also the CSI on the unseen disc against each label, where scored)."""
    discs = [label for label in UNSEEN_LABELS
             if any(key.endswith(f"/disc-{label}") for key in scores)] if table == "4" else []
    header = ("| row | CSI (ours) | POD | FAR | CSI, threshold tuned on validation | "
              + "".join(f"unseen disc CSI ({label}) | " for label in discs))
    lines = [f"## {TABLE_TITLES[table]}", "", header + "paper CSI |", "|---" * (6 + len(discs)) + "|"]
    for label, key, paper in TABLE_ROWS[table]:
        cells = [mean_sd(_values(scores, seeds, key, [name])) for name in ("csi", "pod", "far")]
        cells.append(mean_sd(_values(scores, seeds, key, ["tuned", "csi"])))
        cells += [mean_sd(_values(scores, seeds, f"{key}/disc-{disc}", ["csi"])) for disc in discs]
        lines.append(f"| {label} | {' | '.join(cells)} | {paper:.4f} |")
    return [*lines, ""]


def table5_markdown(scores: dict[str, Any], seeds: Sequence[int]) -> list[str]:
    """Markdown of Table 5: the seed's bundles and the baselines on the unseen disc, the teacher on the swaths."""
    lines = [f"## {TABLE_TITLES['5']}", "",
             f"Unseen disc: world seed {UNSEEN['seed']}, {UNSEEN['platform']}, {UNSEEN['time']} UTC, 256 x 256 tiles. "
             f"Baselines do not depend on the seed: scored once (sd 0). Paper: {PAPER_PRODUCTS}.", ""]
    lines += _table5_rows(scores, seeds, "table5", "Label: the simulated instantaneous surface rain at each pixel.")
    if any(f"seed{seed}/table5-hourly" in scores for seed in seeds):
        lines += _table5_rows(scores, seeds, "table5-hourly",
                              "Label: the CLDAS-like hourly rain of the hour (what the Full-IPR training tiles carry; "
                              "simulated gauge-merging error), on the CLDAS domain only.")
    teacher = [mean_sd(_values(scores, seeds, "teacher/swath", [name])) for name in ("pod", "far", "csi")]
    lines += ["Upper reference, on the Swath-MPR test split (not the disc): the multimodal teacher (classifier), "
              f"POD {teacher[0]}, FAR {teacher[1]}, CSI {teacher[2]}; paper (Table 9) teacher CSI "
              f"{PAPER_TEACHER_CSI}.", ""]
    return lines


def _table5_rows(scores: dict[str, Any], seeds: Sequence[int], key: str, label: str) -> list[str]:
    """One Table 5 table: the seeds' bundles and the baselines scored under ``key``."""
    header = "| method | " + " | ".join(name.upper() for name in PRODUCT_COLUMNS) + " | pixels | paper CSI |"
    lines = [label, "", header, "|---" * (len(PRODUCT_COLUMNS) + 3) + "|"]
    names = [*{name for seed in seeds for name in (scores.get(f"seed{seed}/{key}") or {})}]
    for name in sorted(names):
        cells = [mean_sd(_values(scores, seeds, key, [name, column])) for column in PRODUCT_COLUMNS]
        pixels = _values(scores, seeds, key, [name, "n_pixels"])
        paper = PAPER_TABLE5.get(name, {}).get("csi")
        lines.append(f"| {name} | {' | '.join(cells)} | {int(_mean(pixels)) if pixels else '-'} | "
                     f"{paper if paper is not None else '-'} |")
    for name, row in (scores.get(f"baselines/{key}") or {}).items():
        cells = [f"{row[column]:.4f}" if row.get(column) is not None else "-" for column in PRODUCT_COLUMNS]
        lines.append(f"| {name} | {' | '.join(cells)} | {row.get('n_pixels', '-')} | - |")
    return [*lines, ""]


def table7_markdown(scores: dict[str, Any], seeds: Sequence[int]) -> list[str]:
    """Markdown of Table 7: CSI and RMSE per noise level, PRE-Net (over seeds) and the trees (once)."""
    lines = [f"## {TABLE_TITLES['7']}", "",
             f"Noise seed {NOISE_SEED} (+ the level's index); additive sigma in K, multiplicative sigma as a fraction "
             "of the temperature. The paper does not give its sigmas.", "",
             "| noise | PRE-Net CSI | PRE-Net RMSE | trees CSI | trees RMSE | paper PRE-Net CSI | paper RMSE |",
             "|---|---|---|---|---|---|---|"]
    trees = scores.get("baselines/table7") or {}
    for level, (kind, _) in NOISE.items():
        prenet = [mean_sd(_values(scores, seeds, "table7", [level, "PRE-Net (prenet+self)", name]))
                  for name in ("csi", "rmse")]
        tree = trees.get(level, {}).get("trees (IR)", {})
        paper = PAPER_TABLE7.get("clean" if kind == "none" else kind)
        lines.append(f"| {level} | {prenet[0]} | {prenet[1]} | {_fmt(tree.get('csi'))} | {_fmt(tree.get('rmse'))} | "
                     f"{paper[0]} | {paper[1]} |")
    return [*lines, ""]


def _fmt(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:.4f}"


def _check(label: str, values: Sequence[tuple[str, float]], strict: bool) -> str:
    """``held`` / ``did not hold`` for a chain of values that should fall from left to right."""
    if any(not math.isfinite(value) for _, value in values):
        return f"{label}: not measured ({', '.join(f'{name} {value:.4f}' for name, value in values)})"
    holds = all(left > right if strict else left >= right
                for (_, left), (_, right) in zip(values, values[1:], strict=False))
    sign = " > " if strict else " >= "
    return (f"{label}: {'held' if holds else 'did not hold'} "
            f"(expected {sign.join(name for name, _ in values)}; measured "
            f"{', '.join(f'{name} {value:.4f}' for name, value in values)})")


def _orderings_of(scores: dict[str, Any], seeds: Sequence[int], baselines_row: dict[str, Any]) -> list[str]:
    """One line per ordering on the CSI of the given seeds (their mean when several)."""
    def csi(key: str, path: Sequence[str] = ("csi",)) -> float:
        return _mean(_values(scores, seeds, key, path))

    lines = [_check("teacher > PRE-Net > KD > IR-only UNet (Stage I, Swath-MPR test)",
                    [("teacher", csi("teacher/swath")), ("PRE-Net", csi("stage1/prenet")), ("KD", csi("stage1/kd")),
                     ("UNet", csi("stage1/unet"))], strict=True),
             _check("Self- >= Rand- >= Non-MaskTune (Stage II, Full-IPR test)",
                    [("self", csi("stage2/prenet+self")), ("rand", csi("stage2/prenet+rand")),
                     ("none", csi("stage2/prenet+none"))], strict=False)]
    prenet = csi("table5", ("PRE-Net (prenet+self)", "csi"))
    lines.append(_check("PRE-Net above the direct fit (unseen disc)",
                        [("PRE-Net", prenet), ("direct", csi("table5", ("direct fit (scratch)", "csi")))], strict=True))
    for name in ("GPI", "auto-estimator", "trees (IR)"):
        other = baselines_row.get(name, {}).get("csi")
        lines.append(_check(f"PRE-Net above {name} (unseen disc)",
                            [("PRE-Net", prenet), (name, other if other is not None else float("nan"))], strict=True))
    return lines


def orderings_markdown(scores: dict[str, Any], seeds: Sequence[int]) -> list[str]:
    """The "Orderings" section: each expected ordering per seed and on the mean, stated, never forced."""
    baselines_row = scores.get("baselines/table5") or {}
    lines = ["## Orderings", "", "What the paper's tables imply, checked on the CSI; \"held\" or \"did not hold\" as "
             "measured.", ""]
    for seed in seeds:
        lines += [f"Seed {seed}:", ""] + [f"- {line}" for line in _orderings_of(scores, [seed], baselines_row)] + [""]
    lines += [f"Mean over seeds {', '.join(map(str, seeds))}:", ""]
    lines += [f"- {line}" for line in _orderings_of(scores, seeds, baselines_row)]
    return [*lines, ""]


def write_markdown(context: Context, path: Path, seeds: Sequence[int], tables: Sequence[str]) -> None:
    """Write the Markdown report of the results for ``seeds`` and ``tables``."""
    scores = context.results.get("scores", {})
    settings = context.results.get("settings", {})
    lines = ["# The paper's tables on the simulated world", "",
             "**All figures here are on simulated data (docs/simulation.md), from models trained on simulated data.** "
             "The paper's figures beside them are on the authors' real data: compare orderings, not values.", "",
             f"Base `{settings.get('base')}`, config `{settings.get('config')}`, seeds {', '.join(map(str, seeds))}, "
             f"device {settings.get('device')}, max steps per epoch {settings.get('max_steps')}. Epochs per stage: "
             + ", ".join(f"{stage} {context.config.stage(stage).epochs}"
                         for stage in ("teacher", "distill", "adapt", "direct"))
             + ". Mean ± standard deviation over seeds (n = number of seeds). Runs and settings: the JSON file "
             "beside this one.", ""]
    lines += [f"- {note}" for note in settings.get("notes", [])] + ([""] if settings.get("notes") else [])
    lines += ["## Definitions", "", DEFINITIONS, ""]
    for table in tables:
        if table in TABLE_ROWS:
            lines += classifier_table(table, scores, seeds)
        elif table == "5":
            lines += table5_markdown(scores, seeds)
        else:
            lines += table7_markdown(scores, seeds)
    lines += orderings_markdown(scores, seeds)
    path.write_text("\n".join(lines) + "\n")


# --- command line ------------------------------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base", type=Path, default=REPO / "build" / "demo-bundle")
    parser.add_argument("--config", type=Path, default=REPO / "etc" / "training" / "tables.yaml")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--tables", nargs="+", choices=TABLES, default=list(TABLES))
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2,
                        help="torch threads (on a CPU shared with other jobs, 1 can be several times faster)")
    parser.add_argument("--max-steps", type=int, default=None, help="cap on steps per epoch (smoke runs)")
    parser.add_argument("--stage2", nargs="+", choices=STAGE_II_ROWS, default=list(STAGE_II_ROWS),
                        help="the rows of Table 4 to train and score (default: all)")
    parser.add_argument("--runs", type=Path, default=RUNS, help="folder of the runs")
    parser.add_argument("--results", type=Path, default=RESULTS, help="results path without suffix (.json, .md)")
    parser.add_argument("--unseen", type=Path, default=None,
                        help="dataset root of a Full-IPR test store to use as the unseen disc (default: simulate it)")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> dict[str, int]:
    """Train and score what is missing, rewrite the results; returns the number of trained runs and seeds."""
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    config = load_config(args.config)
    json_path = args.results.with_suffix(".json")
    results = json.loads(json_path.read_text()) if json_path.is_file() else {}
    settings = {"base": str(args.base), "config": str(args.config), "config_content": config.to_dict(),
                "device": args.device, "max_steps": args.max_steps, "unseen": UNSEEN,
                "unseen_store": str(args.unseen) if args.unseen else None, "noise": NOISE, "noise_seed": NOISE_SEED,
                "torch_threads": torch.get_num_threads()}
    kept = {key: value for key, value in results.get("settings", {}).items() if key in FIXED_SETTINGS}
    changed = sorted(key for key, value in kept.items() if json.loads(json.dumps(settings[key])) != value)
    if changed:
        raise SystemExit(f"{json_path}: made with other settings ({', '.join(changed)}); give another --results "
                         "(and --runs) or remove them")
    results["about"] = {"simulated": True, "definitions": DEFINITIONS}
    results["settings"] = {**settings, "notes": results.get("settings", {}).get("notes", [])}  # notes added by hand
    context = Context(config=config, base=args.base, runs=args.runs, device=args.device, results=results,
                      path=json_path)
    tables = [table for table in TABLES if table in args.tables]
    products = "5" in tables or "7" in tables
    discs: dict[str, Path] = {}
    if products or "4" in tables:
        discs = ({"instantaneous": args.unseen} if args.unseen else
                 {label: unseen_store(args.runs, label) for label in UNSEEN_LABELS})
    if products:
        reference_rows(context, tables, discs["instantaneous"], discs.get("hourly"))
    for seed in args.seeds:
        print(f"seed {seed}: tables {', '.join(tables)}", flush=True)
        run_seed(context, SeedRuns(context, seed, args.max_steps, products), tables, discs, args.stage2)
    context.save()
    write_markdown(context, args.results.with_suffix(".md"), args.seeds, tables)
    print(f"wrote {json_path} and {args.results.with_suffix('.md')} ({context.trained} new runs)", flush=True)
    return {"trained": context.trained, "seeds": len(args.seeds)}


if __name__ == "__main__":
    main()
