# SPDX-License-Identifier: GPL-3.0-or-later
"""The ``satpy-prenet`` command: products from AGRI files, bundle information, the demonstration."""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import click

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
@click.option("--device", default=None, help="auto, cpu, cuda or cuda:N (default: auto).")
def retrieve(files: tuple[Path, ...], out_dir: Path, weights: Path | None, device: str | None) -> None:
    """Write the precipitation products of AGRI L1 FILES (NetCDF and PNG) to --out.

    Each file is processed on its own: a bad file is reported and the next one is still processed.
    """
    from satpy_prenet.retrieve import retrieve_file

    failed = []
    for path in files:
        click.echo(f"{path}:")
        try:
            products = retrieve_file(path, out_dir, weights=weights, device=device, progress=sys.stdout.isatty())
        except Exception as err:  # one bad file must not stop the others; the message names the problem
            LOG.error("%s: no products: %s", path, err)
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
    """Show what a weights BUNDLE holds: purpose, bands, model configuration, provenance."""
    from satpy_prenet.bundle import BundleError, read_header

    try:
        header = read_header(bundle)
    except BundleError as err:
        raise click.ClickException(str(err)) from err
    if as_json:
        click.echo(json.dumps(header.to_dict(), indent=2))
        return
    click.echo(header.describe())


@main.command()
@click.option("--out", "out_dir", default="demo-output", show_default=True,
              type=click.Path(file_okay=False, path_type=Path), help="Folder of the input file, products and log.")
@click.option("--platform", type=click.Choice(["FY-4A", "FY-4B"]), default="FY-4A", show_default=True)
@click.option("--threaded", is_flag=True, help="Run the launcher's jobs in threads (-t) instead of processes.")
def demo(out_dir: Path, platform: str, threaded: bool) -> None:
    """Run the operational chain on a simulated AGRI full disc: posttroll message in, products out.

    The trollflow2 launcher runs the shipped product list (etc/trollflow2/agri_precipitation.yaml), subscribed
    directly on 127.0.0.1; everything stops by itself once the products are written.
    """
    from satpy_prenet.demo import run_demo

    result = run_demo(out_dir, platform=platform, threaded=threaded)
    click.echo(f"\nInput (simulated {platform} AGRI L1 full disc): {result.input_file}")
    click.echo(f"Products ({len(result.products)} files, each announced by a posttroll message):")
    for path in result.products:
        click.echo(f"  {path}")
    click.echo(f"Launcher log: {result.launcher_log}")
    click.echo("Time:")
    for step, seconds in result.seconds.items():
        click.echo(f"  {step:<24s} {seconds:6.1f} s")
    skill = result.skill
    click.echo(f"Skill against the simulated truth ({skill.n_pixels} disc pixels, rain >= 0.1 mm/h): "
               f"CSI {skill.csi:.3f}, POD {skill.pod:.3f}, FAR {skill.far:.3f}, RMSE {skill.rmse:.3f} mm/h, "
               f"CC {skill.cc:.3f}")
    if result.bundle_purpose == "demo-synthetic":
        click.echo("The weights were trained on simulated data only: these products are a demonstration.")


main.add_command(ground)


if __name__ == "__main__":
    sys.exit(main())
