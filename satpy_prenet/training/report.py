# SPDX-License-Identifier: GPL-3.0-or-later
"""Learning curves and tables of a training work directory, read from its ``metrics.jsonl`` logs.

Every ``WORKDIR/checkpoints/<stage>-<head>/metrics.jsonl`` (one JSON object per epoch) is read; blank and malformed
lines are skipped with a warning. Files written into the report folder (``WORKDIR/report`` by default):

- ``learning_curves.png``: one row per stage and head: the training loss and its parts, the validation scores and
  loss, the gradient norms per module group and the Self-MaskTune keep fraction, the best epoch marked;
- ``training_report.md``: an overview, then per stage and head a table with one row per epoch and a summary line
  that flags a run which peaked in its first epoch or whose training loss did not fall;
- ``training_report.json``: keyed by ``<stage>-<head>``: the parsed epochs (each with ``share_percent``, the share of
  each loss part in the loss) and the summary.

The figure needs matplotlib (the ``evaluation`` extra).
"""

from __future__ import annotations

import json
import logging
import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from satpy_prenet.atomic import atomic_path
from satpy_prenet.training.config import HEADS, TRAINING_STAGES
from satpy_prenet.training.validation import selection_metric

LOG = logging.getLogger(__name__)

#: Validation entries that are not scores.
_NOT_SCORES = ("loss", "pixels")
#: Relative tolerance within which raw train parts count as summing to the loss.
_SUM_TOLERANCE = 1e-3


def write_training_report(workdir: str | os.PathLike, out: str | os.PathLike | None = None) -> Path:
    """Write the learning curves, the Markdown tables and the JSON of ``workdir``'s training logs; returns ``out``.

    Args:
        workdir: Training work directory holding ``checkpoints/<stage>-<head>/metrics.jsonl``.
        out: Report folder, created if needed; ``WORKDIR/report`` by default.

    Raises:
        FileNotFoundError: If ``workdir`` has no metrics log with at least one epoch.
        ImportError: If matplotlib is missing.
    """
    workdir = Path(workdir)
    out = workdir / "report" if out is None else Path(out)
    canvas = _agg_canvas()
    runs = read_runs(workdir)
    report = {name: {"stage": run["stage"], "head": run["head"], "log": run["log"], "epochs": run["epochs"],
                     "summary": summarise(run["head"], run["epochs"])} for name, run in runs.items()}
    with atomic_path(out / "training_report.json") as partial:
        partial.write_text(json.dumps(report, indent=2, allow_nan=True) + "\n", encoding="utf-8")
    with atomic_path(out / "training_report.md") as partial:
        partial.write_text(_markdown(workdir, report), encoding="utf-8")
    _plot(report, out / "learning_curves.png", canvas)
    LOG.info("training report of %s written to %s", workdir, out)
    return out


def read_runs(workdir: Path) -> dict[str, dict[str, Any]]:
    """The logs of ``workdir`` keyed by ``<stage>-<head>`` in training order, each with its parsed epochs.

    Raises:
        FileNotFoundError: If no log holds an epoch.
    """
    runs = {}
    for path in sorted((workdir / "checkpoints").glob("*/metrics.jsonl"), key=_run_order):
        stage, _, head = path.parent.name.partition("-")
        epochs = read_log(path)
        if epochs:
            runs[path.parent.name] = {"stage": stage, "head": head, "log": str(path.relative_to(workdir)),
                                      "epochs": epochs}
        else:
            LOG.warning("%s: no epoch logged, left out of the report", path)
    if not runs:
        raise FileNotFoundError(f"{workdir}: no training log with an epoch found (expected "
                                "checkpoints/<stage>-<head>/metrics.jsonl as written by satpy-prenet-train)")
    return runs


def read_log(path: Path) -> list[dict[str, Any]]:
    """The epochs of one ``metrics.jsonl`` in epoch order, each with its ``share_percent``; bad lines are skipped."""
    epochs: dict[int, dict[str, Any]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        try:
            record = json.loads(line)
        except ValueError:
            record = None
        if not isinstance(record, dict) or type(record.get("epoch")) is not int:
            LOG.warning("%s line %d: %s, skipped", path, number,
                        "blank line" if not line.strip() else "not a JSON object with an integer epoch")
            continue
        if record["epoch"] in epochs:
            LOG.warning("%s line %d: epoch %d logged again, the later line kept", path, number, record["epoch"])
        record["share_percent"] = _shares(record)
        epochs[record["epoch"]] = record
    return [epochs[epoch] for epoch in sorted(epochs)]


def summarise(head: str, epochs: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Best epoch and value of the head's validation score, and the flags of a suspicious run."""
    metric, higher = selection_metric(head, "auto") if head in HEADS else ("loss", False)
    if not any(_is_finite(_mapping(record, "validation").get(metric)) for record in epochs):
        metric, higher = "loss", False
    best_epoch, best_value = None, None
    for record in epochs:
        value = _mapping(record, "validation").get(metric)
        if _is_finite(value) and (best_value is None or (value > best_value if higher else value < best_value)):
            best_epoch, best_value = record["epoch"], value
    first, last = (_number(_mapping(record, "train").get("loss")) for record in (epochs[0], epochs[-1]))
    loss_fell = None if len(epochs) < 2 else bool(first is not None and last is not None and last < first)
    return {"epochs": len(epochs), "metric": metric, "higher_is_better": higher, "best_epoch": best_epoch,
            "best_value": best_value, "peaked_first": len(epochs) > 1 and best_epoch == epochs[0]["epoch"],
            "loss_fell": loss_fell}


def loss_parts(record: Mapping[str, Any]) -> tuple[dict[str, float], bool]:
    """The loss parts of an epoch and whether they are the weighted ``terms`` (else the raw ``train`` parts)."""
    terms = _numbers(_mapping(record, "terms"))
    if terms:
        return terms, True
    return {name: value for name, value in _numbers(_mapping(record, "train")).items() if name != "loss"}, False


def _shares(record: Mapping[str, Any]) -> dict[str, float]:
    """Share of each part in the loss, %: the weighted terms, or raw parts only where they sum to the loss."""
    loss = _number(_mapping(record, "train").get("loss"))
    parts, weighted = loss_parts(record)
    if loss is None or loss == 0 or not parts:
        return {}
    if not weighted and not math.isclose(sum(parts.values()), loss, rel_tol=_SUM_TOLERANCE):
        return {}
    return {name: 100.0 * value / loss for name, value in parts.items()}


def _run_order(path: Path) -> tuple[int, int, str]:
    stage, _, head = path.parent.name.partition("-")
    return (TRAINING_STAGES.index(stage) if stage in TRAINING_STAGES else len(TRAINING_STAGES),
            HEADS.index(head) if head in HEADS else len(HEADS), path.parent.name)


def _mapping(record: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = record.get(key)
    return value if isinstance(value, Mapping) else {}


def _number(value: object) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _numbers(values: Mapping[str, Any]) -> dict[str, float]:
    return {name: number for name, value in values.items() if (number := _number(value)) is not None}


def _is_finite(value: object) -> bool:
    number = _number(value)
    return number is not None and math.isfinite(number)


def _keys(epochs: Sequence[Mapping[str, Any]], values) -> list[str]:
    """Union of the keys of ``values(record)`` over the epochs, in order of first appearance."""
    return list(dict.fromkeys(key for record in epochs for key in values(record)))


def _keep_fraction(record: Mapping[str, Any]) -> float | None:
    return _number(_mapping(record, "masks").get("keep_fraction"))


def _scores(record: Mapping[str, Any]) -> dict[str, float]:
    return {name: value for name, value in _numbers(_mapping(record, "validation")).items()
            if name not in _NOT_SCORES}


# Markdown


def _markdown(workdir: Path, report: Mapping[str, Mapping[str, Any]]) -> str:
    lines = [f"# Training report of `{workdir}`", "", "| run | epochs | best epoch | metric | best | flags |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {name} | {run['summary']['epochs']} | {_cell(run['summary']['best_epoch'])} | "
              f"{run['summary']['metric']} | {_cell(run['summary']['best_value'])} | "
              f"{'; '.join(_flags(run['summary'])) or '-'} |" for name, run in report.items()]
    lines += ["", "![learning curves](learning_curves.png)", ""]
    for name, run in report.items():
        lines += [f"## {name}", "", f"Log: `{run['log']}`. {_parts_note(run['epochs'])}", "",
                  *_table(run["epochs"]), "", _summary_line(run["summary"]), ""]
    return "\n".join(lines)


def _table(epochs: Sequence[Mapping[str, Any]]) -> list[str]:
    parts = _keys(epochs, lambda record: loss_parts(record)[0])
    groups = _keys(epochs, lambda record: _numbers(_mapping(record, "grad_norm")))
    scores = _keys(epochs, _scores)
    masks = any(_keep_fraction(record) is not None for record in epochs)
    header = ["epoch", "lr", "loss", *parts, *(f"grad {group}" for group in groups), "val loss", *scores,
              *(["keep fraction"] if masks else []), "seconds"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for record in epochs:
        train, own_parts = _numbers(_mapping(record, "train")), loss_parts(record)[0]
        grad, validation = _numbers(_mapping(record, "grad_norm")), _numbers(_mapping(record, "validation"))
        cells = [str(record["epoch"]), _cell(_number(record.get("lr"))), _cell(train.get("loss"))]
        cells += [_part_cell(own_parts.get(part), record["share_percent"].get(part)) for part in parts]
        cells += [_cell(grad.get(group)) for group in groups]
        cells += [_cell(validation.get(name)) for name in ("loss", *scores)]
        cells += [_cell(_keep_fraction(record))] if masks else []
        cells.append(_cell(_number(record.get("seconds"))))
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _parts_note(epochs: Sequence[Mapping[str, Any]]) -> str:
    weighted = {loss_parts(record)[1] for record in epochs}
    if weighted == {True}:
        return "Loss parts: the weighted terms, with their share of the loss."
    raw = "the raw train parts (no `terms` logged), with their share only where they sum to the loss."
    return f"Loss parts: {raw}" if weighted == {False} else f"Loss parts: the weighted terms where logged, else {raw}"


def _summary_line(summary: Mapping[str, Any]) -> str:
    if summary["best_epoch"] is None:
        best = f"no finite validation {summary['metric']}"
    else:
        best = (f"best epoch {summary['best_epoch']} of {summary['epochs']}: {summary['metric']} "
                f"{_cell(summary['best_value'])} ({'highest' if summary['higher_is_better'] else 'lowest'})")
    flags = _flags(summary)
    return f"**Summary**: {best}." + (f" **Flags**: {'; '.join(flags)}." if flags else "")


def _flags(summary: Mapping[str, Any]) -> list[str]:
    flags = ["peaked in its first epoch"] if summary["peaked_first"] else []
    return flags + (["training loss did not fall"] if summary["loss_fell"] is False else [])


def _part_cell(value: float | None, share: float | None) -> str:
    return _cell(value) if share is None else f"{_cell(value)} ({share:.1f} %)"


def _cell(value: float | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return f"{value:.4g}"


# Figure


def _agg_canvas():
    """The Agg canvas class of matplotlib, which draws without touching pyplot's global backend."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
    except ImportError as error:
        raise ImportError('the learning curves need matplotlib: pip install "satpy-prenet[evaluation]"') from error
    return FigureCanvasAgg


def _plot(report: Mapping[str, Mapping[str, Any]], path: Path, canvas) -> None:
    from matplotlib.figure import Figure

    figure = Figure(figsize=(15, 3.1 * len(report)), layout="constrained")
    canvas(figure)
    axes = figure.subplots(len(report), 3, squeeze=False, sharex="row")
    for row, (name, run) in zip(axes, report.items(), strict=True):
        epochs, best = run["epochs"], run["summary"]["best_epoch"]
        _plot_loss(row[0], name, epochs)
        twin = _plot_validation(row[1], name, epochs, run["summary"])
        _plot_gradients(row[2], name, epochs)
        for axis in row:
            axis.set_xlabel("epoch")
            axis.xaxis.get_major_locator().set_params(integer=True)
            if best is not None:
                axis.axvline(best, color="grey", linestyle=":", linewidth=1.2,
                             label=f"best epoch {best}" if axis is row[1] else None)
        handles, labels = row[1].get_legend_handles_labels()
        twin_handles, twin_labels = twin.get_legend_handles_labels()
        twin.legend(handles + twin_handles, labels + twin_labels, fontsize=7, loc="best")
    with atomic_path(path) as partial:
        figure.savefig(partial, format="png", dpi=90)


def _plot_loss(axis, name: str, epochs: Sequence[Mapping[str, Any]]) -> None:
    x = [record["epoch"] for record in epochs]
    axis.plot(x, [_numbers(_mapping(record, "train")).get("loss", math.nan) for record in epochs], marker="o",
              markersize=3, color="black", linewidth=2, label="loss")
    weighted = {loss_parts(record)[1] for record in epochs}
    for part in _keys(epochs, lambda record: loss_parts(record)[0]):
        axis.plot(x, [loss_parts(record)[0].get(part, math.nan) for record in epochs], marker="o", markersize=3,
                  label=part)
    kind = "weighted terms" if weighted == {True} else "raw parts" if weighted == {False} else "terms / raw parts"
    axis.set(title=f"{name}: training loss and {kind}", ylabel="loss")
    _log_scale(axis)
    axis.legend(fontsize=7, loc="best")


def _plot_validation(axis, name: str, epochs: Sequence[Mapping[str, Any]], summary: Mapping[str, Any]):
    """Validation scores on ``axis``, the validation loss on a twin axis, which is returned."""
    x = [record["epoch"] for record in epochs]
    scores = _keys(epochs, _scores)
    for score in scores:
        axis.plot(x, [_scores(record).get(score, math.nan) for record in epochs], marker="o", markersize=3,
                  linewidth=2 if score == summary["metric"] else 1, label=score)
    axis.set(title=f"{name}: validation", ylabel=", ".join(scores) or "score")
    twin = axis.twinx()
    twin.plot(x, [_numbers(_mapping(record, "validation")).get("loss", math.nan) for record in epochs],
              color="black", linestyle="--", marker="s", markersize=3, label="validation loss (right)")
    twin.set_ylabel("validation loss (dashed)")
    return twin


def _plot_gradients(axis, name: str, epochs: Sequence[Mapping[str, Any]]) -> None:
    x = [record["epoch"] for record in epochs]
    groups = _keys(epochs, lambda record: _numbers(_mapping(record, "grad_norm")))
    for group in groups:
        axis.plot(x, [_numbers(_mapping(record, "grad_norm")).get(group, math.nan) for record in epochs],
                  marker="o", markersize=3, label=group)
    axis.set(title=f"{name}: gradient norm per group", ylabel="mean L2 gradient norm")
    if groups:
        _log_scale(axis)
        axis.legend(fontsize=7, loc="upper left", ncol=2)
    else:
        axis.text(0.5, 0.5, "no gradient norms logged", transform=axis.transAxes, ha="center", va="center",
                  color="grey")
    keep = [_keep_fraction(record) for record in epochs]
    if any(value is not None for value in keep):
        twin = axis.twinx()
        twin.plot(x, [math.nan if value is None else value for value in keep], color="tab:red", linestyle="--",
                  marker="^", markersize=4)
        twin.set_ylabel("Self-MaskTune keep fraction (red, dashed)", color="tab:red")
        twin.tick_params(axis="y", colors="tab:red")


def _log_scale(axis) -> None:
    """A log y-axis when something positive is drawn (log scale of nothing but NaN or zeros warns)."""
    values = [value for line in axis.get_lines() for value in line.get_ydata()]
    if any(math.isfinite(value) and value > 0 for value in values):
        axis.set_yscale("log")
