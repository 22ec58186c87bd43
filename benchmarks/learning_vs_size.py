"""Learning against archive size: Stage I trained on archives of 1, 3 and 10 simulated days, scored on one test split.

Every figure this script writes is on SIMULATED data (docs/simulation.md).

Bases (``--bases``): work folders holding ``datasets/`` built from archives that differ only in length, e.g. the
cells that ``benchmarks/archive_scaling.py --keep`` leaves (seed 2026, FY-4A, from 2026-07-15, split in time by the
default fractions: the last 20 % for the test, the 10 % before it for validation). Per base and seed, with the
epochs of ``--config`` (default etc/training/tables.yaml, the settings of the paper's tables):

* the teacher classifier;
* ``prenet``: PRE-Net's Stage I student (classifier), distilled from that teacher;
* ``unet``: the same student without RMKD, DAWE and teacher (the IR-only UNet of Table 2), fitted to the labels;
* with ``--variants``, any other Stage I variant of ``paper_tables.STAGE_I`` (e.g. ``unet+response``,
  ``prenet+response``: the response distillation of docs/training.md).

Recorded per run: the training tiles, optimiser steps per epoch, the validation CSI of every epoch, the best epoch
and whether it was the first. Scored: each run's best checkpoint on the Swath-MPR test split of ``--test`` (default:
the last base, the longest archive, whose test days come after every shorter archive's days), so that every size is
scored on the same unseen swaths.

    python benchmarks/learning_vs_size.py --bases build/scaling/days1 build/scaling/days3 build/scaling/days10

As measured: ``days3`` and ``days10`` are the kept 2-worker cells of archive_scaling.py; ``days1`` links the files
of the 3-day archive's first day (AGRI slots to 2026-07-16 00:00, GPM passes starting on 2026-07-15, CLDAS hours to
2026-07-16 01:00: the same file names as the 1-day archive of ``make bundle``) and is built with the same settings
(``archive_scaling.build_config()``).

Resumable (finished runs and scores are kept): results in ``benchmarks/results/learning_vs_size/<base name>.json``
and ``learning_vs_size.md`` beside them, runs under ``build/learning-vs-size/<base name>/seed<N>/``.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from paper_tables import STAGE_I, Context, SeedRuns, checkpoint_scores, mean_sd, score  # this folder

from satpy_prenet.data.stores import SWATH_MPR, open_tiles, store_path
from satpy_prenet.training.config import load_config
from satpy_prenet.training.report import read_log, summarise

REPO = Path(__file__).resolve().parents[1]
RUNS = REPO / "build" / "learning-vs-size"
RESULTS = Path(__file__).parent / "results" / "learning_vs_size"
#: Stage I variants run by default (any of paper_tables.STAGE_I can be given with ``--variants``).
VARIANTS = ("unet", "prenet")


def store_tiles(base: Path) -> dict[str, int]:
    """Swath-MPR tiles per split of a base."""
    return {split: open_tiles(store_path(base / "datasets", SWATH_MPR, split), SWATH_MPR).sizes["tile"]
            for split in ("train", "validation", "test")}


def curve(directory: Path) -> dict[str, Any]:
    """Validation CSI per epoch, steps per epoch and the summary (best epoch, first-epoch peak) of one run."""
    epochs = read_log(directory / "metrics.jsonl")
    return {"validation_csi": [record["validation"].get("csi") for record in epochs],
            "train_loss": [record["train"].get("loss") for record in epochs],
            "steps": epochs[0].get("steps") if epochs else None, **summarise("classifier", epochs)}


def run_base(context: Context, seed: int, test_root: Path, variants: Sequence[str] = VARIANTS) -> None:
    """The teacher and the Stage I variants of one base and seed, their curves and their scores on the test split."""
    runs = SeedRuns(context, seed, None, both_heads=False)
    teacher = runs.teacher()
    score(context, runs.key("teacher"), lambda: {
        **checkpoint_scores(runs.config, test_root, teacher, "teacher", device=context.device,
                            tuning_data=context.data),
        "curve": curve(teacher / "checkpoints" / "teacher-classifier")})
    for variant in variants:
        workdir, config = runs.stage_one(variant)
        score(context, runs.key(variant), lambda workdir=workdir, config=config: {
            **checkpoint_scores(config, test_root, workdir, "distill", device=context.device,
                                tuning_data=context.data),
            "curve": curve(workdir / "checkpoints" / "distill-classifier")})


def _row(name: str, tiles: dict[str, int], runs: list[dict[str, Any]]) -> str:
    """One table row: a run kind of one base over its seeds."""
    if not runs:
        return f"| {name} | {tiles['train']} | - | - | - | - | - |"
    best = ", ".join(str(run["curve"]["best_epoch"]) for run in runs)
    peaked = sum(bool(run["curve"]["peaked_first"]) for run in runs)
    return (f"| {name} | {tiles['train']} | {runs[0]['curve']['steps']} | {best} | {peaked} of {len(runs)} | "
            f"{mean_sd([run['csi'] for run in runs])} | {mean_sd([run['pod'] for run in runs])} |")


def write_markdown(documents: dict[str, dict[str, Any]], path: Path, seeds: Sequence[int],
                   variants: Sequence[str] = VARIANTS) -> None:
    """The results of every base as one table, then the validation curves."""
    first = next(iter(documents.values()))
    lines = ["# Learning against archive size (Stage I, simulated data)", "",
             "**Simulated data, models trained on simulated data.**", "", *__doc__.split("\n\n")[2:4], "",
             f"Config `{first['config']}`; test split of `{first['test']}` ({first['test_tiles']} Swath-MPR "
             f"tiles); seeds {', '.join(map(str, seeds))}; CSI and POD of P(rain) >= 0.5 on that test split, mean ± "
             "sd over seeds.", "",
             "| base: run | training tiles | steps per epoch | best epoch per seed | peaked in epoch 1 | test CSI "
             "| test POD |", "|---|---|---|---|---|---|---|"]
    curves = []
    for name, document in documents.items():
        scores = document.get("scores", {})
        for kind in ("teacher", *variants):
            runs = [scores[f"seed{seed}/{kind}"] for seed in seeds if f"seed{seed}/{kind}" in scores]
            lines.append(_row(f"{name}: {kind}", document["tiles"], runs))
            for seed, run in zip(seeds, runs, strict=False):
                values = ", ".join("-" if value is None else f"{value:.3f}" for value in run["curve"]["validation_csi"])
                curves.append(f"- {name}, {kind}, seed {seed}: {values}")
    lines += ["", "## Validation CSI per epoch", "", *curves, ""]
    path.write_text("\n".join(lines))


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bases", type=Path, nargs="+", required=True)
    parser.add_argument("--test", type=Path, default=None, help="base whose test split scores every run")
    parser.add_argument("--config", type=Path, default=REPO / "etc" / "training" / "tables.yaml")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0])
    parser.add_argument("--variants", nargs="+", choices=list(STAGE_I), default=list(VARIANTS),
                        help="Stage I variants of paper_tables.STAGE_I")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=int, default=2, help="torch threads (1 where other jobs share the CPU)")
    parser.add_argument("--runs", type=Path, default=RUNS)
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder of the results")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    config = load_config(args.config)
    test = args.test or args.bases[-1]
    settings = {"config": str(args.config), "test": str(test), "test_tiles": store_tiles(test)["test"],
                "simulated": True}
    documents = {}
    for base in args.bases:
        path = args.results / f"{base.name}.json"
        document = json.loads(path.read_text()) if path.is_file() else {}
        if any(document.get(key) != value for key, value in settings.items() if key in document):
            raise SystemExit(f"{path}: made with another --test or --config; give another --results")
        document.update(settings, path=str(base), tiles=store_tiles(base))
        context = Context(config=config, base=base, runs=args.runs / base.name, device=args.device,
                          results=document, path=path)
        for seed in args.seeds:
            print(f"{base.name}: seed {seed}", flush=True)
            run_base(context, seed, test / "datasets", args.variants)
        context.save()
        documents[base.name] = document
    write_markdown(documents, args.results / "learning_vs_size.md", args.seeds, args.variants)
    print(f"wrote {args.results}", flush=True)


if __name__ == "__main__":
    main()
