"""Measured ablations behind the training decisions of docs/training.md, several seeds per variant.

Every run reuses the datasets (and, for Stage I, the teachers; for Stage II, one distilled student) of a finished
training work directory, trains one head of one stage with the variant's settings and scores it on the held-out
test split of that stage's store (classifier: CSI, POD, FAR at P(rain) >= 0.5; regressor: RMSE on raining pixels).
Each run's log is kept, with the per-epoch terms of the loss, the gradient norms and the keep fraction.

Studies:

* ``loss_balance`` (Stage I): the paper's text (lambda_kd 0.2, gamma_rec 50), the reference release's weights (50 on
  KD, 0.2 on the reconstruction), and no teacher at all (both 0: the same student fitted to the labels alone);
* ``masktune`` (Stage II): Self-MaskTune with the literal max rule, with the quantile rule (also with the batch-norm
  statistics of Stage I frozen), Rand- and Non-MaskTune;
* ``optimizer`` (Stage I): RMSprop at the paper's learning rate without and with the reference release's momentum,
  weight decay and clipping: does the training loss fall in a short run?

    python benchmarks/training_ablations.py --study loss_balance --base build/demo-bundle --seeds 0 1 2

Results (resumable: finished runs are kept) go to ``benchmarks/results/training_ablations.{json,md}``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import statistics
import time
from pathlib import Path
from typing import Any

import torch
from paper_tables import checkpoint_scores  # the scorer of the paper's tables (this folder)

from satpy_prenet.training.config import TrainingConfig, load_config
from satpy_prenet.training.report import summarise
from satpy_prenet.training.stages import run_stage

RESULTS = Path(__file__).parent / "results" / "training_ablations"
RUNS = Path(__file__).resolve().parents[1] / "build" / "ablations"

#: study -> (stage, {variant: overrides of that stage's section})
STUDIES: dict[str, tuple[str, dict[str, dict[str, Any]]]] = {
    "loss_balance": ("distill", {
        "paper text (kd 0.2, rec 50)": {"lambda_kd": 0.2, "gamma_rec": 50.0},
        "reference code (kd 50, rec 0.2)": {"lambda_kd": 50.0, "gamma_rec": 0.2},
        "no teacher (kd 0, rec 0)": {"lambda_kd": 0.0, "gamma_rec": 0.0},
    }),
    "masktune": ("adapt", {
        "self, max rule (rho 0.5)": {"masktune": "self", "masktune_rule": "max", "rho": 0.5},
        "self, quantile rule (rho 0.5)": {"masktune": "self", "masktune_rule": "quantile", "rho": 0.5},
        "self, quantile rule, batch norm frozen": {"masktune": "self", "masktune_rule": "quantile", "rho": 0.5,
                                                   "batchnorm_statistics": "frozen"},
        "rand (quantile rho 0.5)": {"masktune": "rand", "masktune_rule": "quantile", "rho": 0.5},
        "none": {"masktune": "none"},
    }),
    "optimizer": ("distill", {
        "rmsprop lr 1e-6": {"optimizer": "rmsprop", "lr": 1e-6, "momentum": 0.0, "weight_decay": 0.0,
                            "grad_clip": 0.0, "lr_halving_epochs": 30},
        "rmsprop lr 1e-6, momentum 0.999, wd 1e-4, clip 1": {"optimizer": "rmsprop", "lr": 1e-6, "momentum": 0.999,
                                                              "weight_decay": 1e-4, "grad_clip": 1.0,
                                                              "lr_halving_epochs": 30},
    }),
}
#: The stage each stage's runs start from, linked from the base work directory.
UPSTREAM = {"distill": "teacher", "adapt": "distill"}


def run_variant(config: TrainingConfig, base: Path, stage: str, head: str, overrides: dict[str, Any], seed: int,
                workdir: Path) -> dict[str, Any]:
    """Train one variant of ``stage`` for ``head`` and score it on the test split; returns the run's record."""
    section = dataclasses.replace(config.stage(stage), seed=seed, **overrides)
    config = dataclasses.replace(config, **{stage: section})
    (workdir / "checkpoints").mkdir(parents=True, exist_ok=True)
    for name in (f"{UPSTREAM[stage]}-{head}", "normalisation.json"):
        link = workdir / "checkpoints" / name
        if not link.exists():
            link.symlink_to((base / "checkpoints" / name).resolve())
    started = time.perf_counter()
    result = run_stage(stage, config, workdir, data=base / "datasets", heads=(head,), device="cpu", resume=True)[head]
    seconds = time.perf_counter() - started
    epochs = [json.loads(line) for line in (result.directory / "metrics.jsonl").read_text().splitlines()]
    return {"seed": seed, "seconds": round(seconds, 1), "best_epoch": result.best_epoch,
            "validation": result.best_value, "summary": summarise(head, epochs),
            "first_loss": epochs[0]["train"]["loss"], "last_loss": epochs[-1]["train"]["loss"],
            "terms_first_epoch": epochs[0].get("terms"), "keep_fraction": [
                record.get("masks", {}).get("keep_fraction") for record in epochs],
            "test": checkpoint_scores(config, base / "datasets", workdir, stage, head)}


def summary_rows(results: dict[str, dict[str, list[dict[str, Any]]]]) -> list[str]:
    """Markdown: per study a table of mean +- standard deviation over seeds."""
    lines = []
    for study, variants in results.items():
        stage, _ = STUDIES[study]
        lines += [f"## {study} ({stage})", "",
                  "| variant | seeds | test CSI | test POD | test FAR | test RMSE (rain) | best epoch "
                  "| peaked in epoch 1 | loss first -> last | share of the loss (epoch 1) "
                  "| keep fraction (last epoch) |",
                  "|---|---|---|---|---|---|---|---|---|---|---|"]
        for variant, runs in variants.items():
            def stat(values: list[float]) -> str:
                values = [value for value in values if value is not None and math.isfinite(value)]
                if not values:
                    return "-"
                spread = statistics.stdev(values) if len(values) > 1 else 0.0
                return f"{statistics.mean(values):.3f} ± {spread:.3f}"

            tests = [run["test"] for run in runs]
            shares = _shares(runs[0]["terms_first_epoch"])
            keep = [run["keep_fraction"][-1] for run in runs]
            lines.append(
                f"| {variant} | {len(runs)} | {stat([t.get('csi') for t in tests])} | "
                f"{stat([t.get('pod') for t in tests])} | {stat([t.get('far') for t in tests])} | "
                f"{stat([t.get('rmse_rain') for t in tests])} | {stat([run['best_epoch'] for run in runs])} | "
                f"{sum(bool(run['summary']['peaked_first']) for run in runs)}/{len(runs)} | "
                f"{stat([run['first_loss'] for run in runs])} -> {stat([run['last_loss'] for run in runs])} | "
                f"{shares} | {stat(keep)} |")
        lines.append("")
    return lines


def _shares(terms: dict[str, float] | None) -> str:
    if not terms:
        return "-"
    total = sum(terms.values())
    return ", ".join(f"{name} {100 * value / total:.1f} %" for name, value in terms.items()) if total else "-"


def main() -> None:
    """Run the requested study and rewrite the results files."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--study", choices=sorted(STUDIES), required=True)
    parser.add_argument("--base", type=Path, default=Path("build/demo-bundle"))
    parser.add_argument("--config", type=Path, default=Path("etc/training/small.yaml"))
    parser.add_argument("--head", default="classifier", choices=("classifier", "regressor"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, help="override the stage's epochs")
    args = parser.parse_args()
    torch.set_num_threads(2)
    config = load_config(args.config)
    stage, variants = STUDIES[args.study]
    if args.epochs:
        config = dataclasses.replace(config, **{stage: dataclasses.replace(config.stage(stage), epochs=args.epochs)})
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / "training_ablations.json"
    results = json.loads(path.read_text()) if path.is_file() else {}
    meta = results.setdefault("_runs", {})
    study = results.setdefault(args.study, {})
    for variant, overrides in variants.items():
        runs = study.setdefault(variant, [])
        for seed in args.seeds:
            if any(run["seed"] == seed for run in runs):
                continue
            slug = "".join(char if char.isalnum() else "-" for char in variant)
            workdir = RUNS / args.study / f"{slug}-{args.head}-seed{seed}"
            print(f"{args.study}: {variant}, seed {seed}", flush=True)
            runs.append(run_variant(config, args.base, stage, args.head, overrides, seed, workdir))
            meta[args.study] = {"base": str(args.base), "config": str(args.config), "head": args.head,
                                "epochs": config.stage(stage).epochs, "torch_threads": torch.get_num_threads()}
            path.write_text(json.dumps(results, indent=1, default=float))
    header = ["# Training ablations (simulated data)", "",
              "Every figure is on simulated data (docs/simulation.md); the runs and their settings are in "
              "`training_ablations.json` (`_runs`). Mean ± standard deviation over seeds; test = the held-out test "
              "split of the stage's store (Swath-MPR for Stage I, Full-IPR for Stage II), never seen in training "
              "or model selection.", ""]
    (RESULTS / "training_ablations.md").write_text(
        "\n".join(header + summary_rows({key: value for key, value in results.items() if key != "_runs"})) + "\n")


if __name__ == "__main__":
    main()
