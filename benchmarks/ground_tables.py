"""Benchmark: the second source paper's Tables 2 and 4 on simulated ground sites.

Table 4 (CW reflectivity + gauge -> rain): the preset Z-R relations, the dynamic least-squares relation fitted to
the FMCW drop-spectrum moments of the trailing hours, and the EKF (full and b fixed), each estimating every
30-minute window one step ahead (`satpy_prenet.ground.radar_gauge.compare_relations`), scored against the true
ground rain of the wet windows, pooled over every site.

Table 2 (FMCW drop-size spectra -> 1-minute ground rain rate): the drop-spectrum integral at the lowest usable gate,
a single LSTM, a double LSTM and the LSTM-Attention-LSTM (`satpy_prenet.ground.spectra_training`), trained on the
training events of all sites and scored on the test events (split by whole events).

Every site is simulated (`satpy_prenet.ground.simulator`): no real radar or gauge data are used. Results go to
benchmarks/results/ground_tables_simulated.md and .json.

    python benchmarks/ground_tables.py [--days 30] [--sites 6] [--tables 2 4] [--networks small|paper]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

from satpy_prenet.evaluation.metrics import regression_scores
from satpy_prenet.ground.radar_gauge import compare_relations
from satpy_prenet.ground.simulator import SiteConfig, simulate_site

RESULTS = Path(__file__).parent / "results"
#: The paper's figures (RMSE, MAE, R^2) for the report's last columns.
PAPER_TABLE_4 = {"convective": (0.2059, 0.1799, 0.9197), "beijing_plain": (0.1770, 0.1479, 0.9207),
                 "dynamic_ls": (0.1466, 0.1186, 0.9593), "ekf": (0.1076, 0.0940, 0.9720)}
PAPER_TABLE_2 = {"integral": (0.3009, 0.2371, 0.8285), "lstm": (0.2773, 0.2156, 0.8544),
                 "double_lstm": (0.2260, 0.1982, 0.9032), "lstm_attention_lstm": (0.1623, 0.1470, 0.9501)}


def table_4(sites):
    """Pooled scores and per-site RMSE of every Z-R method."""
    pooled, per_site, relations = {}, {}, {}
    for site in sites:
        windows, results = compare_relations(site)
        for result in results:
            estimate, truth = pooled.setdefault(result.name, ([], []))
            estimate.append(result.estimates_mm[windows.wet])
            truth.append(windows.truth_mm[windows.wet])
            per_site.setdefault(result.name, []).append(result.scores.rmse)
            relations.setdefault(result.name, []).append((result.final.a, result.final.b))
    rows = {}
    for name, (estimate, truth) in pooled.items():
        scores = regression_scores(np.concatenate(estimate), np.concatenate(truth))
        a, b = np.median(np.array(relations[name]), axis=0)
        rows[name] = {**scores.to_dict(), "a_end_median": float(a), "b_end_median": float(b),
                      "rmse_per_site": per_site[name]}
    return rows


def _markdown_4(rows, sites):
    lines = ["## Table 4: CW reflectivity + gauge, rain per 30-minute window (mm), one step ahead", "",
             f"{len(sites)} simulated sites; wet windows pooled. a and b: the relation at the end of each record "
             "(median over sites); fixed relations keep theirs.", "",
             "| method | a | b | RMSE | MAE | R^2 | Pearson r | n | RMSE per site | paper RMSE / MAE / R^2 |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for name, row in sorted(rows.items(), key=lambda item: -item[1]["rmse"]):
        paper = " / ".join(f"{v:.4f}" for v in PAPER_TABLE_4[name]) if name in PAPER_TABLE_4 else ""
        per_site = ", ".join(f"{v:.3f}" for v in row["rmse_per_site"])
        lines.append(f"| {name} | {row['a_end_median']:.0f} | {row['b_end_median']:.2f} | {row['rmse']:.4f} | "
                     f"{row['mae']:.4f} | {row['r2']:.4f} | {row['pearson_r']:.4f} | {row['n']} | {per_site} | "
                     f"{paper} |")
    return lines


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=30.0, help="Days per simulated site.")
    parser.add_argument("--sites", type=int, default=6, help="Simulated sites (seeds 1..N).")
    parser.add_argument("--tables", nargs="+", default=["2", "4"], choices=["2", "4"])
    parser.add_argument("--networks", choices=["small", "paper"], default="paper")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    started = time.perf_counter()
    sites = [simulate_site(SiteConfig(days=args.days), seed=seed) for seed in range(1, args.sites + 1)]
    simulated_s = time.perf_counter() - started
    report = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
              "machine": f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
                         f"{torch.get_num_threads()} threads",
              "data": f"{args.sites} simulated sites x {args.days:g} days (seeds 1..{args.sites})",
              "simulation_s": round(simulated_s, 1)}
    lines = ["# Ground system, Tables 2 and 4 on simulated data", "",
             "All data are **simulated** (`satpy_prenet.ground.simulator`); the paper's figures are from real "
             "radar and gauges at its site and are quoted only for scale. Written by `benchmarks/ground_tables.py`.",
             "", f"- data: {report['data']}", f"- machine: {report['machine']}", f"- date: {report['date']}", ""]
    if "4" in args.tables:
        report["table_4"] = table_4(sites)
        lines += _markdown_4(report["table_4"], sites) + [""]
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "ground_tables_simulated.json").write_text(json.dumps(report, indent=1))
    (args.out / "ground_tables_simulated.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
