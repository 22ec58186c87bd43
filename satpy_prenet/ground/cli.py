# SPDX-License-Identifier: GPL-3.0-or-later
"""``satpy-prenet ground``: ground sites, Z-R relations, drop-spectrum networks, gauge adjustment and validation."""

from __future__ import annotations

import sys
from pathlib import Path

import click
import numpy as np
from tqdm import tqdm


def _progress(iterable, **kwargs):
    return tqdm(iterable, disable=not sys.stderr.isatty(), **kwargs)


def _open_record(path: Path):
    import xarray as xr

    try:
        return xr.load_dataset(path)
    except (OSError, ValueError) as err:
        raise click.ClickException(f"{path}: not a readable NetCDF site record ({err})") from err


def _score_line(name, scores, extra=""):
    return (f"{name:<24s}{extra}{scores.rmse:9.4f} {scores.mae:9.4f} {scores.r2:9.4f} {scores.pearson_r:9.4f} "
            f"{scores.n:6d}")


@click.group()
def ground() -> None:
    """Ground radar + rain gauge: Z-R relations, drop-spectrum networks, gauge adjustment of the product."""


@ground.command()
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder of the site records (site-SEED.nc) and gauge files (gauges-SEED.csv).")
@click.option("--days", default=8.0, show_default=True, type=click.FloatRange(min=0, min_open=True))
@click.option("--start", default=None, help="First minute (ISO 8601, UTC); default: the simulator's.")
@click.option("--seed", "seeds", multiple=True, type=int, default=(1,), show_default=True,
              help="One site per seed (repeat the option for several).")
def simulate(out_dir: Path, days: float, start: str, seeds: tuple[int, ...]) -> None:
    """Simulate ground sites: rain radar (FMCW spectra, CW reflectivity), tipping-bucket gauge, satellite pixel."""
    from satpy_prenet.ground.simulator import SiteConfig, gauge_table, simulate_site

    out_dir.mkdir(parents=True, exist_ok=True)
    for seed in _progress(seeds, desc="simulated sites", unit="site"):
        site = simulate_site(SiteConfig(days=days, **({"start": start} if start else {})), seed=seed)
        record = out_dir / f"site-{seed}.nc"
        encoding = {name: {"zlib": True, "complevel": 4} for name in site.data_vars}
        site.to_netcdf(record, encoding=encoding)
        gauges = out_dir / f"gauges-{seed}.csv"
        gauge_table(site, station=f"SITE{seed}").to_csv(gauges, index=False)
        wet = int(np.count_nonzero(site["event"].values))
        click.echo(f"{record}: {int(site['event'].max())} rain events, {wet} wet minutes, "
                   f"{float(site['rain_rate'].sum()) / 60:.1f} mm at the ground (simulated)")
        click.echo(f"{gauges}: the site's gauge")


@ground.command("fit-zr")
@click.argument("record_path", metavar="SITE", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--window", default=30, show_default=True, type=click.IntRange(min=1), help="Window in minutes.")
@click.option("--reference", type=click.Choice(["truth", "gauge"]), default="truth", show_default=True,
              help="Score against the true ground rain (simulated records) or the gauge.")
@click.option("--state", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="EKF state file: resumed from when it exists, written after the run.")
@click.option("--fixed-b", is_flag=True, help="Resume and save the mean-field-bias filter (b fixed).")
def fit_zr(record_path: Path, window: int, reference: str, state: Path | None, fixed_b: bool) -> None:
    """Compare Z-R relations on a radar-gauge record SITE: presets, dynamic least squares, EKF (one step ahead)."""
    from satpy_prenet.evaluation.metrics import regression_scores
    from satpy_prenet.ground.ekf import ZREKF, EKFConfig, to_seconds
    from satpy_prenet.ground.radar_gauge import compare_relations, ekf_estimates

    record = _open_record(record_path)
    try:
        windows, results = compare_relations(record, minutes=window, reference=reference)
    except ValueError as err:
        raise click.ClickException(f"{record_path}: {err}") from err
    click.echo(f"{record_path}: {int(windows.wet.sum())} wet {window}-minute windows, scored against the "
               f"{reference}{' (simulated data)' if record.attrs.get('simulated') else ''}")
    click.echo(f"{'method':<24s}{'a':>8s} {'b':>6s}{'RMSE':>10s} {'MAE':>9s} {'R2':>9s} {'r':>9s} {'n':>6s}")
    for result in results:
        click.echo(_score_line(result.name, result.scores, f"{result.final.a:8.1f} {result.final.b:6.3f} "))
    if state is None:
        return
    try:
        ekf = ZREKF.load(state) if state.exists() else ZREKF(
            config=EKFConfig(bucket_mm=windows.bucket_mm), fixed_b=fixed_b)
    except ValueError as err:
        raise click.ClickException(str(err)) from err
    if ekf.fixed_b != fixed_b:
        raise click.ClickException(f"{state}: holds a filter with fixed_b={ekf.fixed_b}, asked for {fixed_b}")
    if ekf.time is not None and ekf.time >= to_seconds(windows.end[0].astype("datetime64[s]")):
        raise click.ClickException(f"{state}: the filter has already seen times up to this record's start")
    estimates, _ = ekf_estimates(windows, ekf)
    target = windows.truth_mm if reference == "truth" else windows.gauge_mm
    scores = regression_scores(estimates[windows.wet], target[windows.wet])
    click.echo(_score_line("ekf (from state)", scores, f"{ekf.a:8.1f} {ekf.b:6.3f} "))
    state.parent.mkdir(parents=True, exist_ok=True)
    ekf.save(state)
    click.echo(f"EKF state written to {state}")
