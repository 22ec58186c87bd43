# SPDX-License-Identifier: GPL-3.0-or-later
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

from satpy_prenet.agri_files import AGRIFileError, inspect_agri_file
from satpy_prenet.bundle import read_header, resolve_bundle_path

LOG = logging.getLogger(__name__)

PRODUCTS = ("precipitation_rate", "precipitation_probability", "precipitation_flag", "precipitation_quality")
#: The rain-rate colours over the 10.8 um image in grey.
QUICKLOOK = "precipitation_rate_on_ir"
NETCDF_ENCODING = {name: {"zlib": True, "complevel": 4} for name in PRODUCTS}


@dataclass(frozen=True)
class Products:
    """Files written for one AGRI file: the four products in CF NetCDF, the rate as PNG, and a quick look."""

    netcdf: Path
    image: Path
    quicklook: Path

    def paths(self) -> tuple[Path, ...]:
        """All files, in the order of the fields."""
        return tuple(getattr(self, name) for name in self.__dataclass_fields__)


def make_output_folder(out_dir: str | Path) -> Path:
    """Create the products' folder if missing.

    Raises:
        OSError: Naming the folder, if it cannot be created or is not a folder.
    """
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OSError(f"{out_dir}: cannot create the output folder ({error.strerror or error})") from error
    return out_dir


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
    bundle = resolve_bundle_path(weights, option_name="--weights option") if weights else resolve_bundle_path()
    options = {key: value for key, value in (("prenet_weights", str(bundle)), ("prenet_device", device)) if value}
    with satpy.config.set(**options):
        header = read_header(bundle)
        agri = inspect_agri_file(path, required_bands=header.bands)
        out_dir = make_output_folder(out_dir)
        scene = Scene(reader=agri.reader, filenames=[str(agri.path)])
        scene.load([*PRODUCTS, QUICKLOOK])
    missing = [name for name in (*PRODUCTS, QUICKLOOK) if name not in scene]
    if missing:
        raise RuntimeError(f"{agri.path}: could not make {', '.join(missing)} (see the log above)")
    stem = f"{agri.platform.replace('-', '')}_AGRI_{agri.observation}_{scene.start_time:%Y%m%d%H%M%S}_precipitation"
    final = Products(netcdf=out_dir / f"{stem}.nc", image=out_dir / f"{stem}_rate.png",
                     quicklook=out_dir / f"{stem}_rate_on_ir.png")
    with tempfile.TemporaryDirectory(prefix=f".{stem}.", dir=out_dir) as tmp:
        partial = Products(*(Path(tmp) / path.name for path in final.paths()))
        results = [
            # The grid mapping locates the pixels; 2-D longitudes and latitudes would triple the file size.
            scene.save_datasets(writer="cf", datasets=list(PRODUCTS), filename=str(partial.netcdf),
                                include_lonlats=False, encoding=NETCDF_ENCODING, compute=False),
            scene.save_dataset("precipitation_rate", writer="simple_image", filename=str(partial.image),
                               compute=False),
            scene.save_dataset(QUICKLOOK, writer="simple_image", filename=str(partial.quicklook), fill_value=0,
                               compute=False),
        ]
        try:
            with ProgressBar(dt=1.0) if progress else nullcontext():
                compute_writer_results(results)
        except OSError as error:  # HDF5 reads happen here, when the products are computed
            raise AGRIFileError(f"{agri.path}: reading the file failed while making the products ({error})") from error
        for written, target in zip(partial.paths(), final.paths(), strict=True):
            os.replace(written, target)
    LOG.info("Wrote %s", ", ".join(map(str, final.paths())))
    return final

