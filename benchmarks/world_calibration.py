"""Benchmark: how hard the simulated world makes infrared rain retrieval, against the targets of SIMULATION.md.

On unseen simulated full discs (FY-4A and FY-4B, day and night, July and January; seeds no training configuration,
demo or test uses), at pixel scale:

- GPI (3 mm/h below 235 K), the best single 10.8 um threshold and per-pixel gradient-boosted trees on the 8 IR bands
  (`satpy_prenet.evaluation.baselines`; the threshold tuned and the trees fitted on two other discs), scored against
  the instantaneous surface rain and against the hourly CLDAS-like label (CSI, POD, FAR, CC, RMSE);
- the factors that make IR retrieval hard, each as a number: cold (< 235 K) pixels that do not rain, rain under warm
  (> 250 K) tops, the rain probability of mid-level (235-260 K) tops, the parallax between the cloud top AGRI sees and
  the surface rain, rain that covers a pixel only in part, the disagreement of the hourly label with the
  instantaneous rain, and the lag between the rain and the cloud-top life cycle of deep systems (followed one by
  one);
- the swath premise: per-footprint trees on GMI + DPR features (CSI), and the correlation of DPR's near-surface rate
  with the surface rain;
- the statistics that `tests/test_synthetic.py` pins (rain fraction, intensities, r of -BT10.8 and rain).

The hourly label is what the archive writes as CLDAS (`synthetic.cldas_file.hourly_truth` of the hour's four
15-minute slots: the mean surface rain over the hour and each 0.0625-degree cell, with the gauge-merging error); it
is scored at the image's pixels by giving each AGRI pixel the value of the cell holding its centre
(`data.collocation.label_at`, as the dataset builder pairs them), over the CLDAS domain, against the image of the
hour's first slot.

    OMP_NUM_THREADS=2 python benchmarks/world_calibration.py [--quick]

Writes benchmarks/results/world_calibration.md and .json (about 7 minutes on 2 cores; --quick: two discs, one pass
split in two, four systems).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import platform
import time
from pathlib import Path

import numpy as np

from satpy_prenet.channels import IR_BANDS
from satpy_prenet.data.collocation import label_at
from satpy_prenet.evaluation.baselines import ThresholdBaseline, TreeBaseline, gpi_rate
from satpy_prenet.evaluation.metrics import RAIN_THRESHOLD, pearson, scores
from satpy_prenet.synthetic import World, WorldConfig, clouds, geometry, orbit
from satpy_prenet.synthetic.archive import slot_window
from satpy_prenet.synthetic.cldas_file import hourly_truth
from satpy_prenet.synthetic.dpr import observe_dpr
from satpy_prenet.synthetic.gmi import observe_gmi
from satpy_prenet.synthetic.world import SCAN_INTERVAL

LOG = logging.getLogger("world_calibration")
RESULTS = Path(__file__).parent / "results"
BANDS = [band.key for band in IR_BANDS]
#: Evaluation discs (seed, platform, nominal time): FY-4A/FY-4B, local day and night over China, July and January.
CASES = ((31, "FY-4A", dt.datetime(2025, 7, 20, 6)), (32, "FY-4A", dt.datetime(2025, 1, 20, 18)),
         (33, "FY-4B", dt.datetime(2025, 7, 20, 18)), (34, "FY-4B", dt.datetime(2025, 1, 20, 6)))
#: Discs the threshold is tuned and the trees are fitted on.
TRAINING = ((30, "FY-4A", dt.datetime(2025, 7, 21, 9)), (35, "FY-4B", dt.datetime(2025, 1, 21, 3)))
#: GPM passes of the swath premise: for each (seed, day), the pass over the CLDAS domain with the longest DPR segment
#: in the day's first 12 hours (July: rain over most of the domain).
PASS_SEEDS = (36, 37)
PASS_DAYS = (dt.datetime(2025, 7, 22), dt.datetime(2025, 7, 23))
TREE_PIXELS = 400_000
ZENITH_BINS = ((0, 30), (30, 50), (50, 65), (65, 90))
COLD_K, WARM_K, MID_K = 235.0, 250.0, (235.0, 260.0)


def _round(value, digits=3):
    return None if value is None or not np.isfinite(value) else round(float(value), digits)


def _score_row(prediction, label):
    """CSI, POD, FAR, CC and RMSE of a prediction against a label (finite pairs)."""
    found = scores(prediction, label)
    return {"csi": _round(found.csi), "pod": _round(found.pod), "far": _round(found.far), "cc": _round(found.cc),
            "rmse": _round(found.rmse, 2), "n": found.n_pixels}


def _disc_bt(scene) -> np.ndarray:
    """Brightness temperatures (bands, disc pixels)."""
    return np.stack([scene.bt[key][scene.on_disc] for key in BANDS])


def fit_baselines(seed: int = 0) -> tuple[ThresholdBaseline, TreeBaseline]:
    """Tune the threshold on every disc pixel of the training discs; fit the trees on a random sample of them."""
    rng = np.random.default_rng(seed)
    bts, labels, samples = [], [], []
    for world_seed, plat, when in TRAINING:
        scene = World(world_seed).scene(when, plat)
        bt, label = _disc_bt(scene), scene.rain_rate[scene.on_disc]
        bts.append(bt[BANDS.index("IR10.8")])
        labels.append(label)
        pick = rng.choice(label.size, TREE_PIXELS // len(TRAINING), replace=False)
        samples.append((bt[:, pick], label[pick]))
    threshold = ThresholdBaseline.tune(np.concatenate(bts), np.concatenate(labels))
    trees = TreeBaseline.fit(np.concatenate([s[0] for s in samples], axis=1), np.concatenate([s[1] for s in samples]),
                             BANDS, seed=seed, provenance={"discs": [f"{p} {w:%Y-%m-%d %H:%M} seed {s}"
                                                                     for s, p, w in TRAINING]})
    return threshold, trees


def hard_factors(scene) -> dict:
    """Cold dry pixels, warm-top rain, mid-level tops, sub-pixel rain and parallax of one scene."""
    disc = scene.on_disc
    bt, rain = scene.bt["IR10.8"][disc], scene.rain_rate[disc]
    wet = rain >= RAIN_THRESHOLD
    cold, warm = bt < COLD_K, bt > WARM_K
    mid = (bt >= MID_K[0]) & (bt <= MID_K[1])
    return {"cold_fraction": _round(cold.mean(), 4), "cold_not_raining": _round(1 - wet[cold].mean()),
            "rain_pixels_under_warm_tops": _round(warm[wet].mean()),
            "rain_volume_under_warm_tops": _round(rain[warm].sum() / rain.sum()),
            "rain_probability_mid_tops": _round(wet[mid].mean()),
            "rain_probability_cold_tops": _round(wet[cold].mean()),
            "partial_8km_blocks": _round(partial_blocks(scene.rain_rate)),
            "parallax_km": parallax_km(scene)}


def partial_blocks(rain: np.ndarray) -> float:
    """Share of the raining 8 km blocks (2 x 2 pixels, mean >= 0.1 mm/h) in which some 4 km pixel is dry."""
    n = rain.shape[0] // 2 * 2
    blocks = rain[:n, :n].reshape(n // 2, 2, n // 2, 2).transpose(0, 2, 1, 3).reshape(n // 2, n // 2, 4)
    complete = np.isfinite(blocks).all(axis=-1)
    raining = blocks[complete][blocks[complete].mean(axis=-1) >= RAIN_THRESHOLD]
    return float((raining < RAIN_THRESHOLD).any(axis=-1).mean())


def parallax_km(scene) -> dict:
    """Median displacement h tan(satellite zenith) (km) of the cloud top over raining pixels, by zenith angle."""
    wet = scene.on_disc & (scene.rain_rate >= RAIN_THRESHOLD) & np.isfinite(scene.cloud_top_height)
    zenith = scene.satellite_zenith[wet]
    shift = scene.cloud_top_height[wet] * np.tan(np.deg2rad(zenith))
    return {f"{lo}-{hi}": _round(np.median(shift[(zenith >= lo) & (zenith < hi)]), 1)
            for lo, hi in ZENITH_BINS if ((zenith >= lo) & (zenith < hi)).any()}


def pinned_statistics(scene) -> dict:
    """The statistics tests/test_synthetic.py pins."""
    disc = scene.on_disc
    rain = scene.rain_rate[disc]
    raining = rain[rain >= RAIN_THRESHOLD]
    return {"rain_fraction": _round(raining.size / rain.size, 4), "below_2": _round(np.mean(raining < 2.0)),
            "above_50": _round(np.mean(raining > 50.0), 5), "max": _round(raining.max(), 1),
            "quantiles_50_90_99_999": [_round(q, 2) for q in np.percentile(raining, [50, 90, 99, 99.9])],
            "r_bt108_rain": _round(pearson(-scene.bt["IR10.8"][disc], rain))}


def evaluate_case(case, threshold: ThresholdBaseline, trees: TreeBaseline) -> dict:
    """Scores of the baselines against the instantaneous and hourly labels, hard factors and pinned statistics."""
    world_seed, plat, when = case
    world = World(world_seed)
    scene = world.scene(when, plat)
    disc = scene.on_disc
    bt108 = scene.bt["IR10.8"][disc]
    predictions = {"gpi": gpi_rate(bt108), "threshold": threshold.predict(bt108),
                   "trees": trees.predict(_disc_bt(scene))}
    scenes = [scene, *(world.scene(when + k * SCAN_INTERVAL, plat) for k in (1, 2, 3))]
    hourly = label_at(hourly_truth(scenes, seed=world_seed), scene.lon, scene.lat)[disc]
    instant = scene.rain_rate[disc]
    return {"case": f"{plat} {when:%Y-%m-%d %H:%M} UTC, seed {world_seed}",
            "instantaneous": {name: _score_row(p, instant) for name, p in predictions.items()},
            "hourly": {name: _score_row(p, hourly) for name, p in predictions.items()},
            "instantaneous_vs_hourly": _score_row(np.where(np.isfinite(hourly), instant, np.nan), hourly),
            "hard": hard_factors(scene), "pinned": pinned_statistics(scene)}


def life_cycle_lag(seed: int = 31, count: int = 8) -> dict:
    """Follow deep systems from birth to death (30-minute steps) on FY-4A, in a world of deep convection only.

    For each system: the hours from the peak of its rain volume to the peak of its cold (< 235 K) area, and the
    share of its cold pixel-hours seen after its rain has fallen, past the peak, below half of the peak (mean over
    the systems). Only the pixels within the system's mature semi-major axis of its centre count (neighbours of
    the same cluster may still enter).
    """
    when = CASES[0][2]
    t = (when - dt.datetime(1970, 1, 1)).total_seconds()
    config = WorldConfig(stratiform_rate=0.0, cirrus_rate=0.0, low_rate=0.0)
    objects = clouds.population(seed, t, config)
    lon, lat = objects.position(t)
    line, _ = geometry.lonlat_to_pixel("FY-4A", lon, lat)
    pick = np.flatnonzero((objects.kind == clouds.DEEP) & np.isfinite(line) & (np.abs(lat) < 40)
                          & (objects.axis_a > 50) & (objects.t_birth > t - 3600))[:count]
    lags, after = [], []
    for k in pick:
        volume, cold = _follow(World(seed, config), objects.select(np.arange(len(objects)) == k))
        lags.append((np.argmax(cold) - np.argmax(volume)) / 2.0)
        dry = (np.arange(volume.size) > np.argmax(volume)) & (volume < 0.5 * volume.max())
        after.append(cold[dry].sum() / max(cold.sum(), 1))
    return {"systems": len(pick), "median_lag_h": _round(np.median(lags), 2), "lags_h": [float(v) for v in lags],
            "cold_share_after_rain_mean": _round(np.mean(after)), "shares_after_rain": [_round(v) for v in after]}


def _follow(world: World, system) -> tuple[np.ndarray, np.ndarray]:
    """Rain volume and cold area within its semi-major axis of one system, every 30 minutes of its life."""
    volume, cold = [], []
    radius = float(system.axis_a[0])
    half = int(radius / 4.0) + 8
    for t in np.arange(system.t_birth[0], system.t_birth[0] + system.life[0], 1800.0):
        lon, lat = system.position(t)
        line, col = geometry.lonlat_to_pixel("FY-4A", lon, lat)
        l0 = int(np.clip(line[0] - half, 0, geometry.DISC_SIZE - 2 * half))
        c0 = int(np.clip(col[0] - half, 0, geometry.DISC_SIZE - 2 * half))
        scene = world.scene(dt.datetime(1970, 1, 1) + dt.timedelta(seconds=float(t)), "FY-4A",
                            (l0, l0 + 2 * half, c0, c0 + 2 * half))
        near = _distance_km(scene.lon, scene.lat, lon[0], lat[0]) <= radius
        volume.append(float(np.nansum(scene.rain_rate[near])))
        cold.append(float(np.sum(scene.bt["IR10.8"][near] < COLD_K)))
    return np.array(volume), np.array(cold)


def _distance_km(lon, lat, lon0, lat0) -> np.ndarray:
    """Great-circle distance (km) of points from one point (NaN points are far)."""
    a, b = orbit.unit_vectors(lon, lat), orbit.unit_vectors(np.array(lon0), np.array(lat0))
    return np.nan_to_num(np.arccos(np.clip(np.sum(a * b, axis=-1), -1.0, 1.0)), nan=np.pi) * geometry.EARTH_RADIUS_KM


def swath_premise(passes: int = 2) -> dict:
    """Trees on GMI + DPR features at the DPR footprints, fitted on one pass and scored on another."""
    samples = [_pass_features(seed, day) for seed, day in zip(PASS_SEEDS[:passes], PASS_DAYS[:passes], strict=True)]
    if len(samples) < 2:
        samples = [(x[::2], y[::2], r[::2]) for x, y, r in samples] + [(x[1::2], y[1::2], r[1::2])
                                                                       for x, y, r in samples]
    (x_fit, y_fit, _), (x_test, y_test, rate_test) = samples[0], samples[1]
    lgb = __import__("lightgbm")
    params = {"num_leaves": 31, "learning_rate": 0.1, "verbosity": -1, "num_threads": 2, "seed": 0}
    classifier = lgb.train({**params, "objective": "binary"},
                           lgb.Dataset(x_fit, (y_fit >= RAIN_THRESHOLD).astype(np.float32)), 100)
    wet = y_fit >= RAIN_THRESHOLD
    regressor = lgb.train({**params, "objective": "regression"}, lgb.Dataset(x_fit[wet], np.log1p(y_fit[wet])), 100)
    rain = classifier.predict(x_test) >= 0.5
    estimate = np.where(rain, np.maximum(np.expm1(regressor.predict(x_test)), RAIN_THRESHOLD), 0.0)
    return {"footprints_fit": int(y_fit.size), "footprints_test": int(y_test.size),
            "trees_gmi_dpr": _score_row(estimate, y_test),
            "dpr_rate_r": _round(pearson(rate_test, y_test))}


def _pass_features(seed: int, day: dt.datetime):
    """Features (GMI S1 and S2 Tc at the nearest footprints, DPR near-surface Z and rate), true rain, DPR rate."""
    overpass = max(orbit.gpm_overpasses(day, day + dt.timedelta(hours=12), seed=seed), key=lambda p: p.fs.nscan)
    world = World(seed)
    margin = dt.timedelta(minutes=10)
    scenes = []
    for slot in _slots(overpass):
        window = slot_window(overpass, slot, "FY-4A", margin, 3_000_000)
        if window is not None:
            scenes.append(world.scene(slot, "FY-4A", window))
    gmi = observe_gmi(overpass, scenes, seed=seed)
    dpr = observe_dpr(overpass, scenes, seed=seed)
    fs = overpass.fs
    ok = dpr.valid & np.isfinite(dpr.rain)
    columns = [_nearest(sw.lon, sw.lat, gmi.tc[name], fs.lon[ok], fs.lat[ok])
               for name, sw in (("S1", overpass.s1), ("S2", overpass.s2))]
    z = dpr.fields["zFactorFinalNearSurface"][ok]
    rate = dpr.fields["precipRateNearSurface"][ok]
    x = np.column_stack([*columns, np.where(np.isfinite(z), z, 0.0), np.nan_to_num(rate)]).astype(np.float32)
    return x, dpr.rain[ok].astype(np.float32), np.nan_to_num(rate)


def _slots(overpass) -> list[dt.datetime]:
    start = overpass.start_time.replace(minute=overpass.start_time.minute // 15 * 15, second=0, microsecond=0)
    slots = [start]
    while slots[-1] + SCAN_INTERVAL <= overpass.end_time:
        slots.append(slots[-1] + SCAN_INTERVAL)
    return slots


def _nearest(lon, lat, values, to_lon, to_lat) -> np.ndarray:
    """``values`` (scans, pixels, channels) at the footprint nearest to each target point."""
    from scipy.spatial import cKDTree

    source = orbit.unit_vectors(lon.ravel(), lat.ravel())
    _, index = cKDTree(source).query(orbit.unit_vectors(to_lon, to_lat))
    return values.reshape(-1, values.shape[-1])[index]


def summary(cases: list[dict]) -> dict:
    """Range (min-max over the discs) of every score and factor."""
    out = {}
    for label in ("instantaneous", "hourly"):
        for name in ("gpi", "threshold", "trees"):
            for key in ("csi", "pod", "far", "cc"):
                values = [case[label][name][key] for case in cases]
                out[f"{label} {name} {key}"] = [min(values), max(values)]
    for group in ("hard", "pinned"):
        for key, value in cases[0][group].items():
            if isinstance(value, (int, float)):
                values = [case[group][key] for case in cases]
                out[key] = [min(values), max(values)]
    return out


#: The targets of SIMULATION.md and issue 11, as (what, summary key, lowest, highest): a target is met when the range
#: over the evaluation discs lies inside [lowest, highest]. POD: real IR products detect 40-70 % of the raining
#: pixels; "FAR well above 0.4" is read as above 0.5. The last four are the ranges docs/simulation.md pinned before.
TARGETS = (
    ("GPI CSI, instantaneous label", "instantaneous gpi csi", 0.20, 0.30),
    ("GPI CSI, hourly label", "hourly gpi csi", 0.20, 0.30),
    ("best threshold CSI, instantaneous label", "instantaneous threshold csi", 0.20, 0.30),
    ("best threshold CSI, hourly label", "hourly threshold csi", 0.20, 0.30),
    ("GPI POD, instantaneous label", "instantaneous gpi pod", 0.40, 0.70),
    ("best threshold POD, instantaneous label", "instantaneous threshold pod", 0.40, 0.70),
    ("GPI FAR, instantaneous label", "instantaneous gpi far", 0.50, 1.0),
    ("best threshold FAR, instantaneous label", "instantaneous threshold far", 0.50, 1.0),
    ("IR trees CSI, instantaneous label", "instantaneous trees csi", 0.0, 0.33),
    ("IR trees CC, instantaneous label", "instantaneous trees cc", -1.0, 0.45),
    ("IR trees CSI, hourly label", "hourly trees csi", 0.0, 0.33),
    ("IR trees CC, hourly label", "hourly trees cc", -1.0, 0.45),
    ("GMI + DPR trees CSI on the swaths", "swath trees csi", 0.55, 1.0),
    ("DPR near-surface rate, r with the surface rain", "swath dpr r", 0.80, 1.0),
    ("rain fraction of disc pixels", "rain_fraction", 0.072, 0.092),
    ("raining pixels below 2 mm/h", "below_2", 0.67, 0.78),
    ("raining pixels above 50 mm/h", "above_50", 0.0008, 0.0024),
    ("r of -BT10.8 and surface rain", "r_bt108_rain", 0.31, 0.35),
)


def target_rows(report: dict) -> list[str]:
    """One Markdown row per target: the range measured over the discs, the target, and whether it is met."""
    measured = {**report["summary"], "swath trees csi": [report["swath"]["trees_gmi_dpr"]["csi"]] * 2,
                "swath dpr r": [report["swath"]["dpr_rate_r"]] * 2}
    rows = ["| target | measured (min-max over the discs) | wanted | met |", "|---|---|---|---|"]
    for what, key, lowest, highest in TARGETS:
        low, high = measured[key]
        met = "yes" if lowest <= low and high <= highest else "**no**"
        rows.append(f"| {what} | {low:g}-{high:g} | {lowest:g}-{highest:g} | {met} |")
    return rows


def markdown(report: dict) -> list[str]:
    """The report as Markdown."""
    lines = ["# World calibration: how hard the simulated world makes IR rain retrieval", "",
             f"{report['date']}; {report['machine']}; {report['runtime_s']} s.", "",
             f"World: `WorldConfig({report['config']})`.", "",
             f"Evaluation discs: {'; '.join(case['case'] for case in report['cases'])}. Threshold tuned and trees "
             f"fitted on: {'; '.join(report['trees']['discs'])} (threshold {report['threshold_k']} K).", "",
             "Pixel scale, rain >= 0.1 mm/h. Hourly label: the CLDAS-like hour mean of the four 15-minute slots "
             "(`hourly_truth`, 0.0625-degree cells, gauge error) given to each AGRI pixel whose centre lies in the "
             "cell (`label_at`), over the CLDAS domain, scored against the image of the hour's first slot.", "",
             "## Targets", "", *target_rows(report), "",
             "Why the targets marked **no** are missed, measured: docs/simulation.md ('The statistics it is held to', "
             "'Known departures from reality'). In short, every change that brought GPI to real IR products' CSI "
             "lowered the IR-rain correlation with it; the hourly label is easier than the instantaneous rain for "
             "cold-cloud rules (an hour of moving rain is a larger target); rain taken from outer anvils and from "
             "non-raining shields lowered the rain fraction, and warm drizzle made more raining pixels light.", ""]
    for label in ("instantaneous", "hourly"):
        lines += [f"## Against the {label} label", "", "| disc | method | CSI | POD | FAR | CC | RMSE |",
                  "|---|---|---|---|---|---|---|"]
        for case in report["cases"]:
            for name, row in case[label].items():
                lines.append(f"| {case['case']} | {name} | {row['csi']} | {row['pod']} | {row['far']} | {row['cc']} "
                             f"| {row['rmse']} |")
        lines.append("")
    lines += ["## Instantaneous rain scored against the hourly label", "", "| disc | CSI | POD | FAR | CC |",
              "|---|---|---|---|---|"]
    lines += [f"| {c['case']} | {r['csi']} | {r['pod']} | {r['far']} | {r['cc']} |"
              for c in report["cases"] for r in [c["instantaneous_vs_hourly"]]]
    lines += ["", "## Hard factors and pinned statistics (per disc)", ""]
    for group in ("hard", "pinned"):
        keys = list(report["cases"][0][group])
        lines += ["| disc | " + " | ".join(keys) + " |", "|---" * (len(keys) + 1) + "|"]
        lines += ["| " + " | ".join([c["case"], *(str(c[group][k]) for k in keys)]) + " |" for c in report["cases"]]
        lines.append("")
    lines += ["## Life cycle of deep systems", "", f"`{json.dumps(report['life_cycle'])}`", "",
              "## Swath premise (GMI + DPR)", "", f"`{json.dumps(report['swath'])}`", ""]
    return lines


def main() -> None:
    """Run every measurement and write the report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="two discs, one pass, four systems")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    begin = time.time()
    threshold, trees = fit_baselines()
    LOG.info("threshold %.1f K; trees fitted (%.0f s)", threshold.threshold_k, time.time() - begin)
    cases = []
    for case in CASES[::2] if args.quick else CASES:
        cases.append(evaluate_case(case, threshold, trees))
        LOG.info("%s (%.0f s)", json.dumps(cases[-1]), time.time() - begin)
    life = life_cycle_lag(count=4 if args.quick else 8)
    LOG.info("life cycle %s (%.0f s)", life, time.time() - begin)
    swath = swath_premise(passes=1 if args.quick else 2)
    LOG.info("swath %s (%.0f s)", swath, time.time() - begin)
    report = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
              "machine": f"{platform.machine()}, {platform.python_version()}, numpy {np.__version__}",
              "config": WorldConfig().describe(), "seeds": {"cases": [c[0] for c in CASES], "training":
                                                            [c[0] for c in TRAINING], "passes": list(PASS_SEEDS)},
              "threshold_k": threshold.threshold_k, "trees": {"discs": trees.provenance["discs"],
                                                              "probability_threshold": trees.probability_threshold},
              "cases": cases, "summary": summary(cases), "life_cycle": life, "swath": swath,
              "runtime_s": round(time.time() - begin)}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "world_calibration.json").write_text(json.dumps(report, indent=1))
    (args.out / "world_calibration.md").write_text("\n".join(markdown(report)))


if __name__ == "__main__":
    main()
