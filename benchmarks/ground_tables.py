"""Benchmark: the second source paper's Tables 2 and 4 on simulated ground sites.

Table 4 (CW reflectivity + gauge -> rain): the preset Z-R relations, the dynamic least-squares relation fitted to
the FMCW drop-spectrum moments of the trailing hours, and the EKF (full and b fixed), each estimating every
30-minute window one step ahead (`satpy_prenet.ground.radar_gauge.compare_relations`), scored against the true
ground rain of the wet windows, pooled over every site.

Table 2 (FMCW drop-size spectra -> 1-minute ground rain rate): the drop-spectrum integral at the lowest usable gate,
a single LSTM, a double LSTM and the LSTM-Attention-LSTM (`satpy_prenet.ground.spectra_training`), trained on the
training events of one site and scored on its test events (split by whole events), one section per site.

Every site is simulated (`satpy_prenet.ground.simulator`): no real radar or gauge data are used. Results go to
benchmarks/results/ground_tables_simulated.md and .json.

Also: the gauge adjustment of the simulated satellite pixel (`satpy_prenet.ground.adjust`), slot by slot.

    python benchmarks/ground_tables.py [--days 30] [--sites 6] [--tables 2 4 adjustment] [--networks small|paper]

A run replaces the sections it computes and keeps the others.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import xarray as xr

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


def _markdown_4(section):
    rows = section["rows"]
    lines = ["## Table 4: CW reflectivity + gauge, rain per 30-minute window (mm), one step ahead", "",
             f"{section['data']}; wet windows pooled. a and b: the relation at the end of each record "
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


def table_2(site, config, seed):
    """Test-event scores of the integral and the three networks on one site, with training times."""
    from satpy_prenet.ground import spectra_training as st

    split = st.split_by_event(st.make_samples(site, config), seed=seed)
    integral = st.integral_baseline(site, split.test)
    scored = np.isfinite(integral)  # every method on the same minutes: the integral has none where the radar is missing
    rows = {"integral": {**regression_scores(integral[scored], split.test.y[scored]).to_dict(),
                         "train_s": 0.0, "best_epoch": None}}
    for kind in ("lstm", "double_lstm", "lstm_attention_lstm"):
        started = time.perf_counter()
        model, history = st.train_network(kind, split.train, split.validation, config, seed=seed, progress=True)
        rows[kind] = {**regression_scores(st.predict(model, split.test)[scored], split.test.y[scored]).to_dict(),
                      "train_s": round(time.perf_counter() - started, 1), "best_epoch": history.best_epoch + 1,
                      "validation_rmse": history.validation_rmse}
    counts = {name: len(part) for name, part in split._asdict().items()}
    events = {name: int(np.unique(part.events).size) for name, part in split._asdict().items()}
    return rows, counts, events


def _markdown_2(section):
    rows, counts, events, config = section["rows"], section["samples"], section["events"], section["config"]
    lines = ["## Table 2: FMCW drop-size spectra -> 1-minute ground rain rate (mm/h), test events", "",
             f"{section['data']}. Samples (minutes with ground rain >= {config['min_rain_mm_h']} mm/h): "
             + ", ".join(f"{name} {counts[name]} in {events[name]} events" for name in counts)
             + f". Networks: {config['hidden1']}/{config['hidden2']} units, lr {config['lr1']}/{config['lr2']}, "
             f"{config['epochs1']}/{config['epochs2']} epochs, batch {config['batch_size']}, "
             f"{config['sequence_minutes']}-minute sequences; weights of the best validation epoch.", "",
             "| method | RMSE | MAE | R^2 | Pearson r | bias | best epoch | training (s) | paper RMSE / MAE / R^2 |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, row in rows.items():
        paper = " / ".join(f"{v:.4f}" for v in PAPER_TABLE_2[name])
        lines.append(f"| {name} | {row['rmse']:.4f} | {row['mae']:.4f} | {row['r2']:.4f} | {row['pearson_r']:.4f} "
                     f"| {row['bias']:.4f} | {row['best_epoch'] or ''} | {row['train_s']:.0f} | {paper} |")
    return lines


#: Gauge network of the adjustment table: sites on a 4 x 3 grid of 0.04 degree pixels; the first 8 adjust, the
#: other 4 are independent checks.
NETWORK_SHAPE, ADJUSTING_SITES = (3, 4), 8
#: Satellite errors R_sat = alpha R^beta of the adjustment table: multiplicative, and the simulator's power law.
SATELLITE_ERRORS = ((1.5, 1.0), (1.5, 0.8))


def _network_area(config):
    from pyresample.geometry import AreaDefinition

    rows, cols = NETWORK_SHAPE
    step = 0.04
    west, south = config.lon - cols * step / 2, config.lat - rows * step / 2
    return AreaDefinition("network", "gauge network", "network", "EPSG:4326", cols, rows,
                          (west, south, west + cols * step, south + rows * step))


def adjustment_table(days, seeds):
    """The satellite rate over a simulated gauge network, adjusted slot by slot as the product is adjusted.

    Each site of the network has its own rain and sits in its own pixel; every 15 minutes the slot's image (each
    pixel the satellite rate of its site) goes through `adjust_precipitation_rate` with the adjusting gauges' 15
    minutes ending at the slot and the filter state of the previous slot. Raw and adjusted rates are scored at the
    independent sites against the rain their pixel saw (their ground rain over 30 minutes around the slot), where
    either is wet.
    """
    from satpy_prenet.ground.adjust import adjust_precipitation_rate
    from satpy_prenet.ground.gauges import read_gauges
    from satpy_prenet.ground.simulator import gauge_table

    base = SiteConfig(days=days)
    area = _network_area(base)
    lons, lats = area.get_lonlats()
    pixels = list(np.ndindex(*NETWORK_SHAPE))
    rows = {}
    for alpha, beta in SATELLITE_ERRORS:
        sites = [simulate_site(dataclasses.replace(base, lon=float(lons[pixel]), lat=float(lats[pixel]),
                                                   satellite_alpha=alpha, satellite_beta=beta), seed=seed)
                 for pixel, seed in zip(pixels, seeds, strict=True)]
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "gauges.csv"
            pd.concat([gauge_table(site, f"S{k}") for k, site in enumerate(sites[:ADJUSTING_SITES])]).to_csv(
                path, index=False)
            gauges = read_gauges(path)
        slots = sites[0]["slot"].values
        satellite = np.stack([site["satellite_rate"].values for site in sites], axis=1)
        truth = np.stack([site["areal_rain_rate"].values for site in sites], axis=1)
        checks = [pixels[k] for k in range(ADJUSTING_SITES, len(sites))]
        label = f"alpha {alpha:g}, beta {beta:g}"
        pooled = {f"satellite ({label})": ([], []), f"adjusted, b fixed ({label})": ([], []),
                  f"adjusted, a and b ({label})": ([], [])}
        states = {name: None for name in list(pooled)[1:]}
        for index, slot in enumerate(slots):
            image = np.zeros(NETWORK_SHAPE, dtype=np.float32)
            for pixel, value in zip(pixels, satellite[index], strict=True):
                image[pixel] = value
            rate = xr.DataArray(image, dims=("y", "x"), attrs={"area": area, "name": "precipitation_rate",
                                                               "start_time": pd.Timestamp(slot).to_pydatetime()})
            seen = truth[index, ADJUSTING_SITES:]
            wet = (seen > 0) | (satellite[index, ADJUSTING_SITES:] > 0)
            estimates = {list(pooled)[0]: image}
            for name in states:
                adjusted = adjust_precipitation_rate(rate, gauges, state=states[name], window="15min",
                                                     fixed_b="b fixed" in name)
                states[name] = adjusted.attrs["gauge_adjustment_state"]
                estimates[name] = adjusted.values
            for name, values in estimates.items():
                pooled[name][0].append(np.array([values[pixel] for pixel in checks])[wet])
                pooled[name][1].append(seen[wet])
        for name, (estimate, reference) in pooled.items():
            rows[name] = regression_scores(np.concatenate(estimate), np.concatenate(reference)).to_dict()
        rows[f"filter at the end ({label})"] = {key: json.loads(state)["x"] for key, state in states.items()}
    return rows


def _markdown_adjustment(section):
    lines = ["## Gauge adjustment of the satellite rate over a simulated gauge network (mm/h), 15-minute slots", "",
             f"{section['data']}. Each site has its own rain in its own pixel (0.04 degree); {ADJUSTING_SITES} "
             "gauges adjust the image every 15 minutes (`adjust_precipitation_rate`, the gauges' 15 minutes "
             "ending at the slot, the filter state carried from slot to slot) and the other sites check it: scores "
             "at the checking sites against the rain their pixel saw (ground rain over 30 minutes around the slot), "
             "where either is wet. The satellite error is R_sat = alpha R^beta x log-normal noise (sigma 0.3), "
             "zero below 0.1 mm/h.", "",
             "| rate | RMSE | MAE | R^2 | Pearson r | bias | n |", "|---|---|---|---|---|---|---|"]
    for name, row in section["rows"].items():
        if "rmse" in row:
            lines.append(f"| {name} | {row['rmse']:.4f} | {row['mae']:.4f} | {row['r2']:.4f} | "
                         f"{row['pearson_r']:.4f} | {row['bias']:.4f} | {row['n']} |")
    for name, row in section["rows"].items():
        if "rmse" not in row:
            states = "; ".join(f"{key}: a = {np.exp(x[0]):.3g}, b = {x[1]:.3g}" for key, x in row.items())
            lines.append(f"\n{name}: {states}")
    return lines


def _simulated_sites(days, count):
    return [simulate_site(SiteConfig(days=days), seed=seed) for seed in range(1, count + 1)]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=float, default=30.0, help="Days per simulated site (Table 4).")
    parser.add_argument("--sites", type=int, default=6, help="Simulated sites (seeds 1..N).")
    parser.add_argument("--tables", nargs="+", default=["2", "4", "adjustment"], choices=["2", "4", "adjustment"])
    parser.add_argument("--networks", choices=["small", "paper"], default="paper")
    parser.add_argument("--network-days", type=float, default=20.0, help="Days of the adjustment network's sites.")
    parser.add_argument("--spectra-days", type=float, default=30.0, help="Days of the Table 2 site.")
    parser.add_argument("--spectra-seeds", type=int, nargs="+", default=[101, 102],
                        help="Table 2 sites: one per seed (also the seed of its split and training).")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    json_path = args.out / "ground_tables_simulated.json"
    report = json.loads(json_path.read_text()) if json_path.exists() else {}
    machine = (f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
               f"{torch.get_num_threads()} threads")
    stamp = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "machine": machine}
    sites_text = f"{args.sites} simulated sites x {args.days:g} days (seeds 1..{args.sites})"
    sites = _simulated_sites(args.days, args.sites) if "4" in args.tables else []
    if "4" in args.tables:
        report["table_4"] = {**stamp, "data": sites_text, "rows": table_4(sites)}
    if "adjustment" in args.tables:
        seeds = list(range(301, 301 + NETWORK_SHAPE[0] * NETWORK_SHAPE[1]))  # 201.. chose the filter settings
        report["adjustment"] = {**stamp, "data": f"{len(seeds)} simulated sites x {args.network_days:g} days "
                                f"(seeds {seeds[0]}..{seeds[-1]})", "rows": adjustment_table(args.network_days, seeds)}
    if "2" in args.tables:
        from satpy_prenet.ground.spectra_training import PRESETS

        config = PRESETS[args.networks]
        for seed in args.spectra_seeds:
            site = simulate_site(SiteConfig(days=args.spectra_days), seed=seed)
            rows, counts, events = table_2(site, config, seed)
            report.setdefault("table_2", {})[str(seed)] = {
                **stamp, "data": f"one simulated site x {args.spectra_days:g} days (seed {seed})", "samples": counts,
                "events": events, "config": vars(config), "rows": rows}
    args.out.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(report, indent=1))
    lines = ["# Ground system, Tables 2 and 4 on simulated data", "",
             "All data are **simulated** (`satpy_prenet.ground.simulator`); the paper's figures come from real "
             "radar and gauges at its site and are quoted only for scale. Written by `benchmarks/ground_tables.py`; "
             "each section says when and on what it was run.", ""]
    sections = [("table_4", _markdown_4, report.get("table_4"))]
    sections += [("table_2", _markdown_2, section) for section in report.get("table_2", {}).values()]
    sections += [("adjustment", _markdown_adjustment, report.get("adjustment"))]
    for _, render, section in sections:
        if section:
            lines += render(section) + ["", f"({section['data']}; {section['machine']}; {section['date']})", ""]
    (args.out / "ground_tables_simulated.md").write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
