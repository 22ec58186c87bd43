"""Make the precipitation products of one AGRI L1 file with satpy, without trollflow2."""

from __future__ import annotations

import logging
import os
import tempfile
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

import satpy
from dask.diagnostics import ProgressBar
from satpy import Scene
from satpy.writers.core.compute import compute_writer_results

from satpy_prenet.agri_files import inspect_agri_file

LOG = logging.getLogger(__name__)

PRODUCTS = ("precipitation_rate", "precipitation_probability", "precipitation_flag", "precipitation_quality")


@dataclass(frozen=True)
class Products:
    """Files written for one AGRI file: all four products in CF NetCDF, the rate as a PNG image."""

    netcdf: Path
    image: Path


def retrieve_file(path: str | Path, out_dir: str | Path, *, weights: str | Path | None = None,
                  device: str | None = None, progress: bool = False) -> Products:
    """Compute the PRE-Net products of AGRI file ``path`` and write them to ``out_dir``.

    The files appear under their final names only when complete: they are written in a temporary folder
    beside them and moved into place, so a failure leaves no partial product.

    Args:
        path: FY-4A or FY-4B AGRI L1 4 km full-disc (or regional) HDF file.
        out_dir: Folder of the products (created if missing).
        weights: Weights bundle; default: satpy config ``prenet_weights``, then the embedded demo bundle.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``; default: the composite's option (``auto``).
        progress: Show a progress bar while computing.
    """
    agri = inspect_agri_file(path)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    options = {key: value for key, value in (("prenet_weights", weights), ("prenet_device", device)) if value}
    with satpy.config.set(**options):
        scene = Scene(reader=agri.reader, filenames=[str(agri.path)])
        scene.load(list(PRODUCTS))
    missing = [name for name in PRODUCTS if name not in scene]
    if missing:
        raise RuntimeError(f"{agri.path}: could not make {', '.join(missing)} (see the log above)")
    stem = f"{agri.platform.replace('-', '')}_AGRI_{scene.start_time:%Y%m%d%H%M%S}_precipitation"
    final = Products(netcdf=out_dir / f"{stem}.nc", image=out_dir / f"{stem}_rate.png")
    with tempfile.TemporaryDirectory(prefix=f".{stem}.", dir=out_dir) as tmp:
        partial = Products(netcdf=Path(tmp) / final.netcdf.name, image=Path(tmp) / final.image.name)
        results = [
            scene.save_datasets(writer="cf", datasets=list(PRODUCTS), filename=str(partial.netcdf),
                                compute=False),
            scene.save_dataset("precipitation_rate", writer="simple_image", filename=str(partial.image),
                               compute=False),
        ]
        with ProgressBar() if progress else nullcontext():
            compute_writer_results(results)
        for name in ("netcdf", "image"):
            os.replace(getattr(partial, name), getattr(final, name))
    LOG.info("Wrote %s and %s", final.netcdf, final.image)
    return final

