# SPDX-License-Identifier: GPL-3.0-or-later
"""``satpy-prenet ground``: ground sites, Z-R relations, drop-spectrum networks, gauge adjustment and validation."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import numpy as np
from tqdm import tqdm

from satpy_prenet.atomic import atomic_path


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
        record, gauges = out_dir / f"site-{seed}.nc", out_dir / f"gauges-{seed}.csv"
        encoding = {name: {"zlib": True, "complevel": 4} for name in site.data_vars}
        with atomic_path(record) as partial:
            site.to_netcdf(partial, encoding=encoding)
        with atomic_path(gauges) as partial:
            gauge_table(site, station=f"SITE{seed}").to_csv(partial, index=False)
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
    except (OSError, ValueError) as err:
        raise click.ClickException(f"{state}: {err}" if isinstance(err, OSError) else str(err)) from err
    if ekf.fixed_b != fixed_b:
        raise click.ClickException(f"{state}: holds a filter with fixed_b={ekf.fixed_b}, asked for {fixed_b}")
    if ekf.time is not None and ekf.time >= to_seconds(windows.end[0].astype("datetime64[s]")):
        raise click.ClickException(f"{state}: the filter has already seen times up to this record's start")
    estimates, _ = ekf_estimates(windows, ekf)
    target = windows.truth_mm if reference == "truth" else windows.gauge_mm
    scores = regression_scores(estimates[windows.wet], target[windows.wet])
    click.echo(_score_line("ekf (from state)", scores, f"{ekf.a:8.1f} {ekf.b:6.3f} "))
    ekf.save(state)
    click.echo(f"EKF state written to {state}")


NETWORK_KINDS = ("lstm", "double_lstm", "lstm_attention_lstm")


@ground.command("train-dsd")
@click.argument("record_path", metavar="SITE", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder of the trained networks (KIND.safetensors).")
@click.option("--kind", "kinds", multiple=True, type=click.Choice(NETWORK_KINDS),
              help="Network(s) to train (repeat the option); default: all three.")
@click.option("--preset", type=click.Choice(["paper", "small"]), default="paper", show_default=True,
              help="paper: 256/128 units, 300/200 epochs; small: 32/16 units, 30/20 epochs.")
@click.option("--seed", default=0, show_default=True, help="Seed of the event split and of the training.")
def train_dsd(record_path: Path, out_dir: Path, kinds: tuple[str, ...], preset: str, seed: int) -> None:
    """Train drop-spectrum networks on a SITE record and score them with the integral on its test events.

    The record's rain events are split 60/20/20 into training, validation and test events; each network learns the
    1-minute ground rain rate from the FMCW drop-size spectra of the preceding minutes.
    """
    from satpy_prenet.evaluation.metrics import regression_scores
    from satpy_prenet.ground import spectra_training as st

    record = _open_record(record_path)
    config = st.PRESETS[preset]
    try:
        split = st.split_by_event(st.make_samples(record, config), seed=seed)
        integral = st.integral_baseline(record, split.test)
    except ValueError as err:
        raise click.ClickException(f"{record_path}: {err}") from err
    simulated = " (simulated data)" if record.attrs.get("simulated") else ""
    click.echo(f"{record_path}: {len(split.train)} / {len(split.validation)} / {len(split.test)} training / "
               f"validation / test minutes{simulated}")
    scored = np.isfinite(integral)  # every method on the same minutes: the integral has none where the radar is missing
    rows = [("integral", regression_scores(integral[scored], split.test.y[scored]))]
    for kind in kinds or NETWORK_KINDS:
        model, history = st.train_network(kind, split.train, split.validation, config, seed=seed,
                                          progress=sys.stderr.isatty())
        scores = regression_scores(st.predict(model, split.test)[scored], split.test.y[scored])
        provenance = {**{key: value for key, value in record.attrs.items() if key != "settings"},
                      "record": record_path.name, "preset": preset, "seed": seed, "best_epoch": history.best_epoch,
                      "test_scores": scores.to_dict()}
        path = st.save_model(out_dir / f"{kind}.safetensors", model, kind, config, split.train.normalisation,
                             provenance)
        click.echo(f"{path}: best validation epoch {history.best_epoch + 1} of {config.epochs}")
        rows.append((kind, scores))
    click.echo(f"{'method':<24s}{'RMSE':>9s} {'MAE':>9s} {'R2':>9s} {'r':>9s} {'n':>6s}   (mm/h, test events)")
    for name, scores in rows:
        click.echo(_score_line(name, scores))


def _read_gauge_file(path: Path):
    """The gauges of a file, its skipped malformed lines echoed as warnings; a file that cannot be read is an error."""
    from satpy_prenet.ground.gauges import read_gauges

    try:
        gauges = read_gauges(path)
    except (OSError, ValueError) as err:
        raise click.ClickException(str(err)) from err
    for line in gauges.attrs["skipped_lines"]:
        click.echo(f"Warning: malformed gauge line skipped: {line}", err=True)
    return gauges


def _read_product_rate(path: Path, variable: str):
    from satpy_prenet.ground.product_files import read_rate

    try:
        return read_rate(path, variable)
    except ValueError as err:
        raise click.ClickException(str(err)) from err


@ground.command()
@click.argument("product", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--gauges", "gauge_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Rain gauges (CSV or NetCDF: station, lon, lat, time, tips or mm).")
@click.option("--state", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Filter state: read when it exists, rewritten after the slot.")
@click.option("--out", "out_path", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The product with precipitation_rate_adjusted added.")
@click.option("--window", default="15min", show_default=True,
              help="Gauge window ending at the slot time: the interval between images.")
@click.option("--track-b", is_flag=True, help="A fresh filter tracks a and b (default: the mean-field bias a).")
def adjust(product: Path, gauge_path: Path, state: Path, out_path: Path, window: str, track_b: bool) -> None:
    """Adjust the precipitation_rate of a PRODUCT file to rain gauges; the filter state carries to the next slot.

    A missing or unreadable gauge file is an error that writes nothing and leaves the state as it was. Unusable
    gauges in a readable file (gaps, flagged values, stations off the image) only skip the update: the adjusted
    product is still written with the predicted relation, and the status says why.
    """
    from satpy_prenet.ground.adjust import adjust_precipitation_rate
    from satpy_prenet.ground.ekf import ZREKF
    from satpy_prenet.ground.product_files import write_adjusted

    rate = _read_product_rate(product, "precipitation_rate")
    gauges = _read_gauge_file(gauge_path)
    try:
        previous = ZREKF.load(state) if state.exists() else None
    except ValueError as err:
        raise click.ClickException(f"{err}; move it away to start a fresh filter") from err
    try:
        adjusted = adjust_precipitation_rate(rate, gauges, state=previous, window=window, fixed_b=not track_b)
    except ValueError as err:
        raise click.ClickException(f"{product}: {err}") from err
    try:
        write_adjusted(product, adjusted, out_path)
    except (OSError, ValueError) as err:
        raise click.ClickException(f"{out_path}: adjusted product not written ({err})") from err
    ZREKF.from_dict(json.loads(adjusted.attrs["gauge_adjustment_state"])).save(state)
    attrs = adjusted.attrs
    click.echo(f"{out_path}: {attrs['gauge_adjustment_status']}; a = {attrs['gauge_adjustment_a']:.4g}, "
               f"b = {attrs['gauge_adjustment_b']:.4g}, {attrs['gauge_adjustment_n_gauges']} gauge(s) used"
               + (f", skipped: {attrs['gauge_adjustment_skipped']}" if attrs["gauge_adjustment_skipped"] else ""))
    click.echo(f"Filter state written to {state}")


@ground.command()
@click.argument("products", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--gauges", "gauge_path", required=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Rain gauges (CSV or NetCDF).")
@click.option("--window", default="15min", show_default=True, help="Gauge window ending at each product's slot time.")
def validate(products: tuple[Path, ...], gauge_path: Path, window: str) -> None:
    """Score the rain rates of PRODUCTS against rain gauges: RMSE, MAE, R^2, Pearson r, bias (mm/h).

    Each product's slot is scored on its own and all slots pooled; precipitation_rate_adjusted is scored too where
    present (its own gauges adjusted it: score it against independent gauges).
    """
    import xarray as xr

    from satpy_prenet.evaluation.metrics import regression_scores
    from satpy_prenet.ground.adjust import gauge_observation, match_gauges

    gauges = _read_gauge_file(gauge_path)
    pooled = {}
    click.echo(f"{'product':<48s}{'variable':<30s}{'RMSE':>9s} {'MAE':>9s} {'R2':>9s} {'r':>9s} {'bias':>9s} {'n':>5s}")
    for path in _progress(products, desc="products", unit="file"):
        try:
            with xr.open_dataset(path) as dataset:
                variables = [name for name in ("precipitation_rate", "precipitation_rate_adjusted")
                             if name in dataset]
        except (OSError, ValueError) as err:
            raise click.ClickException(f"{path}: not a readable NetCDF product ({err})") from err
        for variable in variables:
            rate = _read_product_rate(path, variable)
            try:
                observation = gauge_observation(rate, gauges, match_gauges(gauges, rate.attrs["area"]), None, window)
            except ValueError as err:
                raise click.ClickException(f"{path}: {err}") from err
            pair = (observation.satellite_mm_h, observation.gauge_mm_h)
            pooled.setdefault(variable, []).append(pair)
            if observation.n_used:
                click.echo(_validation_line(path.name, variable, regression_scores(*pair)))
            else:
                click.echo(f"{path.name:<48s}{variable:<30s} no usable gauge ({observation.skip_summary()})")
    for variable, pairs in pooled.items():
        estimate, reference = (np.concatenate(side) for side in zip(*pairs, strict=True))
        if estimate.size:
            click.echo(_validation_line(f"all {len(pairs)} slot(s)", variable, regression_scores(estimate, reference)))


def _validation_line(label, variable, scores):
    return (f"{label:<48s}{variable:<30s}{scores.rmse:9.4f} {scores.mae:9.4f} {scores.r2:9.4f} "
            f"{scores.pearson_r:9.4f} {scores.bias:9.4f} {scores.n:5d}")
