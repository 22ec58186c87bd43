# SPDX-License-Identifier: GPL-3.0-or-later
"""The evaluation report: Markdown and CSV tables in the paper's column order, JSON, and figures.

Files written into the report folder:

- ``report.md``: what was evaluated, the scores table (RMSE, CC, POD, FAR, CSI, CSI-4, CSI-8, then MAE, bias, HSS),
  the categorical scores by threshold and the continuous scores by rate class, and the figures;
- ``scores.csv``, ``by_threshold.csv``, ``by_rate_class.csv`` and ``report.json`` (the same numbers);
- ``maps.png`` (the label and each method side by side on the image with the most labelled rain, as the paper's
  Figure 6), ``scatter.png`` (density of prediction against label), ``thresholds.png`` (CSI, POD and FAR against
  the threshold).

Figures need matplotlib (the ``evaluation`` extra).
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from satpy_prenet.atomic import atomic_path
from satpy_prenet.evaluation.comparison import RATE_BIN_EDGES, Comparison
from satpy_prenet.evaluation.metrics import PAPER_COLUMNS

#: Column titles of the tables.
TITLES = {"rmse": "RMSE", "cc": "CC", "pod": "POD", "far": "FAR", "csi": "CSI", "csi4": "CSI-4", "csi8": "CSI-8",
          "mae": "MAE", "bias": "bias", "hss": "HSS", "n_pixels": "pixels", "method": "method",
          "threshold": "threshold (mm/h)", "lower": "from (mm/h)", "upper": "to (mm/h)", "n": "pixels"}
#: Colour levels of the rain maps, mm/h.
MAP_LEVELS = (0.1, 0.5, 1, 2, 5, 10, 20, 50, 100)


def write_report(comparison: Comparison, out_dir: str | Path, *, title: str,
                 context: Mapping[str, object]) -> Path:
    """Write the tables, the JSON and the figures of ``comparison`` into ``out_dir``; returns ``report.md``.

    Args:
        comparison: The accumulated comparison.
        out_dir: Report folder, created if needed.
        title: First heading of the report.
        context: What was evaluated (data, label, methods, simulated or not...), listed under the title.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tables = {"scores": comparison.table(), "by_threshold": comparison.by_threshold(),
              "by_rate_class": comparison.by_rate_class()}
    for name, rows in tables.items():
        _write_csv(out / f"{name}.csv", rows)
    with atomic_path(out / "report.json") as tmp:
        Path(tmp).write_text(json.dumps({"title": title, "context": dict(context), **tables}, indent=2,
                                        default=str, allow_nan=True))
    figures = _figures(comparison, out)
    lines = [f"# {title}", ""]
    lines += [f"- **{key}**: {value}" for key, value in context.items()]
    lines += ["", "## Scores", "", *_markdown(tables["scores"], ["method", *PAPER_COLUMNS, "n_pixels"]), ""]
    lines += ["Rain is a rate of at least 0.1 mm/h (inclusive). Every method is scored on the same pixels: those where "
              "the label and all methods are valid. CSI-4 and CSI-8 score the maxima of 4 x 4 and 8 x 8 blocks.", ""]
    lines += ["## By threshold", "", *_markdown(tables["by_threshold"], list(tables["by_threshold"][0])), ""]
    lines += ["## By rate class of the label", "", *_markdown(tables["by_rate_class"],
                                                              list(tables["by_rate_class"][0])), ""]
    lines += ["## Figures", ""] + [f"![{name}]({name}.png)" for name in figures]
    with atomic_path(out / "report.md") as tmp:
        Path(tmp).write_text("\n".join(lines) + "\n")
    return out / "report.md"


def _write_csv(path: Path, rows: Sequence[Mapping[str, object]]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def _markdown(rows: Sequence[Mapping[str, object]], columns: Sequence[str]) -> list[str]:
    """A Markdown table of ``rows`` restricted to ``columns``."""
    header = [TITLES.get(column, column.replace("_", " ")) for column in columns]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(columns)]
    lines += ["| " + " | ".join(_cell(row[column]) for column in columns) + " |" for row in rows]
    return lines


def _cell(value: object) -> str:
    if isinstance(value, float):
        return "inf" if math.isinf(value) else "n/a" if math.isnan(value) else f"{value:.3f}"
    return str(value)


def _figures(comparison: Comparison, out: Path) -> list[str]:
    """Draw the figures; returns their names (without ``.png``)."""
    import matplotlib

    matplotlib.use("Agg")
    names = []
    if comparison.sample is not None:
        _maps(comparison, out / "maps.png")
        names.append("maps")
    _scatter(comparison, out / "scatter.png")
    _thresholds(comparison, out / "thresholds.png")
    return [*names, "scatter", "thresholds"]


def _save(figure, path: Path) -> None:
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(figure)


def _maps(comparison: Comparison, path: Path) -> None:
    import matplotlib.pyplot as plt
    from matplotlib.colors import BoundaryNorm

    sample = comparison.sample
    panels = {"label": sample.label, **sample.predictions}
    figure, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.4), squeeze=False)
    cmap = plt.get_cmap("turbo").with_extremes(under="white", bad="lightgrey")
    norm = BoundaryNorm(MAP_LEVELS, cmap.N, extend="max")
    for axis, (name, values) in zip(axes[0], panels.items(), strict=True):
        image = axis.imshow(np.ma.masked_invalid(values), cmap=cmap, norm=norm, interpolation="nearest")
        axis.set_title(name, fontsize=9)
        axis.set_xticks([])
        axis.set_yticks([])
    figure.colorbar(image, ax=axes[0].tolist(), label="mm/h", shrink=0.8, extend="both")
    figure.suptitle(f"{sample.name} (grey: no valid data; white: below 0.1 mm/h)", fontsize=9)
    _save(figure, path)


def _scatter(comparison: Comparison, path: Path) -> None:
    import matplotlib.pyplot as plt
    from matplotlib.colors import LogNorm

    edges = RATE_BIN_EDGES.copy()
    edges[0], edges[-1] = 0.03, 500.0  # where the open bins are drawn on the log axes
    figure, axes = plt.subplots(1, len(comparison.methods), figsize=(3.4 * len(comparison.methods), 3.2),
                                squeeze=False)
    for axis, name in zip(axes[0], comparison.methods, strict=True):
        counts = comparison.density[name].T.astype(float)
        mesh = axis.pcolormesh(edges, edges, np.ma.masked_equal(counts, 0), norm=LogNorm(), cmap="viridis")
        axis.plot([0.03, 500], [0.03, 500], color="k", linewidth=0.6)
        axis.set(xscale="log", yscale="log", xlabel="label (mm/h)", ylabel=f"{name} (mm/h)", title=name)
    figure.colorbar(mesh, ax=axes[0].tolist(), label="pixels", shrink=0.8)
    _save(figure, path)


def _thresholds(comparison: Comparison, path: Path) -> None:
    import matplotlib.pyplot as plt

    rows = comparison.by_threshold()
    figure, axes = plt.subplots(1, 3, figsize=(10.5, 3.2))
    for axis, score in zip(axes, ("csi", "pod", "far"), strict=True):
        for name in comparison.methods:
            mine = [row for row in rows if row["method"] == name]
            axis.plot([row["threshold"] for row in mine], [row[score] for row in mine], marker="o", label=name)
        axis.set(xscale="log", xlabel="threshold (mm/h)", title=TITLES[score], ylim=(0, 1))
    axes[0].legend(fontsize=8)
    _save(figure, path)
