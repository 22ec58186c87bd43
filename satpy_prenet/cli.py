# SPDX-License-Identifier: GPL-3.0-or-later
"""The ``satpy-prenet`` command: products from AGRI files, bundle information, the demonstration."""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from pathlib import Path

import click

from satpy_prenet.cli_options import device_option, precision_option
from satpy_prenet.ground.cli import ground

LOG = logging.getLogger("satpy_prenet")


@click.group()
@click.option("-v", "--verbose", is_flag=True, help="Log debug messages.")
def main(verbose: bool) -> None:
    """PRE-Net precipitation products from FY-4A/FY-4B AGRI infrared channels."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="[%(asctime)s %(levelname)-8s %(name)s] %(message)s")


@main.command()
@click.argument("files", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder of the products.")
@click.option("--weights", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Weights bundle (.safetensors); default: SATPY_PRENET_WEIGHTS, then the embedded demo bundle.")
@device_option(default=None, help="auto, cpu, cuda or cuda:N (default: auto).")
@click.option("--lonlats", is_flag=True,
              help="Also write the pixels' 2-D longitudes and latitudes into the NetCDF file (larger file).")
@click.option("--institution", default=None,
              help="Global attribute 'institution' of the NetCDF file: who made the products (default: satpy-prenet).")
@precision_option()
@click.option("--coasts", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Folder of the GSHHG shapefiles (holding GSHHS_shp): draw coastlines on the pictures "
                   "(needs pycoast: the 'coastlines' extra).")
def retrieve(files: tuple[Path, ...], out_dir: Path, weights: Path | None, device: str | None, lonlats: bool,
             institution: str | None, precision: str | None, coasts: Path | None) -> None:
    """Write the precipitation products of AGRI L1 FILES (NetCDF and PNG) to --out.

    Each file is processed on its own: a bad file is reported and the next one is still processed.
    """
    from satpy_prenet.bundle import resolve_bundle_path
    from satpy_prenet.pictures import coastline_overlay
    from satpy_prenet.retrieve import make_output_folder, retrieve_file

    try:  # problems common to every file are reported once
        weights = resolve_bundle_path(weights, option_name="--weights option") if weights else None
        if coasts:
            coastline_overlay(coasts)
        make_output_folder(out_dir)
    except (ValueError, OSError) as err:  # BundleError is a ValueError
        raise click.ClickException(str(err)) from err
    failed = []
    for path in files:
        click.echo(f"{path}:")
        try:
            products = retrieve_file(path, out_dir, weights=weights, device=device, progress=sys.stdout.isatty(),
                                     lonlats=lonlats, institution=institution, coasts=coasts,
                                     precision=precision)
        except Exception as err:  # one bad file must not stop the others; the message names the problem
            message = str(err)
            LOG.error("no products: %s", message if str(path) in message else f"{path}: {message}")
            LOG.debug("Traceback of the failure", exc_info=True)
            failed.append(path)
            continue
        for written in products.paths():
            click.echo(f"  {written}")
    if failed:
        raise click.ClickException(f"{len(failed)} of {len(files)} file(s) failed: {', '.join(map(str, failed))}")


@main.command()
@click.argument("bundle", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the whole header as JSON.")
def info(bundle: Path, as_json: bool) -> None:
    """Show what a weights BUNDLE holds: purpose, bands, model configuration, provenance.

    The tensors are checked against the header's SHA-256 first: a modified or corrupted bundle is an error.
    """
    from satpy_prenet.bundle import BundleError, read_header, read_tensors

    try:
        header = read_header(bundle)
        read_tensors(bundle, header)
    except BundleError as err:
        raise click.ClickException(str(err)) from err
    if as_json:
        click.echo(json.dumps(header.to_dict(), indent=2))
        return
    click.echo(header.describe())


@main.command()
@click.option("--store", "data_root", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Dataset root made by `satpy-prenet-train build`: the methods run on its Full-IPR tiles.")
@click.option("--split", type=click.Choice(["train", "validation", "test"]), default="test", show_default=True,
              help="Split of the store to score.")
@click.option("--method", "methods", multiple=True,
              help="gpi, autoestimator, a weights bundle (.safetensors) or a baseline file (.json) from "
                   "`satpy-prenet-train baseline`; repeat it. Default: the configured bundle, gpi and autoestimator.")
@click.option("--products", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Product file (CF NetCDF with precipitation_rate*); repeat it. Instead of --store.")
@click.option("--reference", "references", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Hourly reference file in the CLDAS-V2.0 format; repeat it. With --products.")
@click.option("--out", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Folder of the report (report.md, CSV tables, report.json, figures).")
@click.option("--max-tiles", type=click.IntRange(min=1), default=None, help="Score only the first N tiles.")
@device_option(help="Device of the PRE-Net bundles.")
@precision_option()
def evaluate(data_root: Path | None, split: str, methods: tuple[str, ...], products: tuple[Path, ...],
             references: tuple[Path, ...], out_dir: Path, max_tiles: int | None, device: str,
             precision: str | None) -> None:
    """Compare retrievals with a reference and write a report (tables in the paper's columns, and figures).

    Either --store (methods run on a dataset's infrared tiles, scored against its labels pixel by pixel) or
    --products with --reference (rates of product files, averaged per hour onto the reference's cells).
    """
    from satpy_prenet.evaluation.evaluate import run_evaluation

    try:
        report = run_evaluation(data_root=data_root, split=split, methods=methods, products=products,
                                references=references, out_dir=out_dir, max_tiles=max_tiles, device=device,
                                precision=precision or "auto", progress=sys.stderr.isatty())
    except (ValueError, OSError) as err:  # StoreError, BundleError, BaselineError and unreadable files
        raise click.ClickException(str(err)) from err
    click.echo(report.read_text())
    click.echo(f"Report: {report}")


@main.command()
@click.option("--out", "out_dir", default="demo-output", show_default=True,
              type=click.Path(file_okay=False, path_type=Path), help="Folder of the input file, products and log.")
@click.option("--platform", type=click.Choice(["FY-4A", "FY-4B"]), default="FY-4A", show_default=True)
@click.option("--threaded", is_flag=True, help="Run the launcher's jobs in threads (-t) instead of processes.")
@click.option("--start-time", type=click.DateTime(["%Y-%m-%dT%H:%M", "%Y-%m-%d %H:%M"]), default=None,
              help="UTC slot to simulate and replay (default: the current 15-minute slot).")
def demo(out_dir: Path, platform: str, threaded: bool, start_time: dt.datetime | None) -> None:
    """Run the operational chain on a simulated AGRI full disc: posttroll message in, products out.

    The trollflow2 launcher runs the shipped product list (etc/trollflow2/agri_precipitation.yaml), subscribed
    directly on 127.0.0.1; everything stops by itself once the products are written.
    """
    from satpy_prenet.demo import run_demo

    result = run_demo(out_dir, platform=platform, threaded=threaded, start_time=start_time)
    click.echo(f"\nInput (simulated {platform} AGRI L1 full disc): {result.input_file}")
    click.echo(f"Products ({len(result.products)} files, each announced by a posttroll message):")
    for path in result.products:
        click.echo(f"  {path}")
    click.echo(f"Launcher log: {result.launcher_log}")
    click.echo("Time:")
    for step, seconds in result.seconds.items():
        click.echo(f"  {step:<24s} {seconds:6.1f} s")
    pixels = next(iter(result.skill.values())).n_pixels
    click.echo(f"Skill against the simulated truth ({pixels} disc pixels, rain >= 0.1 mm/h):")
    click.echo(f"  {'method':<10s} {'CSI':>6s} {'POD':>6s} {'FAR':>6s} {'RMSE':>6s} {'CC':>6s}")
    for method, skill in result.skill.items():
        click.echo(f"  {method:<10s} {skill.csi:6.3f} {skill.pod:6.3f} {skill.far:6.3f} {skill.rmse:6.3f} "
                   f"{skill.cc:6.3f}")
    if result.bundle_purpose == "demo-synthetic":
        click.echo("The weights were trained on simulated data only: these products are a demonstration.")


main.add_command(ground)


if __name__ == "__main__":
    sys.exit(main())
