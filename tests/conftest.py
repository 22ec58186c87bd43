"""Shared fixtures: simulated AGRI files in the real layout and weights bundles."""

from __future__ import annotations

import datetime as dt
import os

import pytest

# One torch thread per test process: the suite runs beside dask's own threads on 2-core machines.
os.environ.setdefault("OMP_NUM_THREADS", "1")

START = dt.datetime(2026, 7, 15, 6, 0)
#: North-west of the sub-satellite point: space, the limb (satellite zenith above 70 degrees) and the disc.
LIMB_REGION = (280, 536, 280, 536)


@pytest.fixture(scope="session")
def world():
    from satpy_prenet.synthetic import World

    return World(11)


@pytest.fixture(scope="session")
def agri_files(world, tmp_path_factory):
    """Regional FY-4A and FY-4B AGRI L1 files of the same simulated atmosphere, keyed by platform."""
    from satpy_prenet.synthetic import write_agri_l1

    out = tmp_path_factory.mktemp("agri")
    return {platform: write_agri_l1(world.scene(START, platform, LIMB_REGION), out / platform)
            for platform in ("FY-4A", "FY-4B")}


@pytest.fixture(scope="session")
def demo_bundle():
    """The embedded demo bundle, which the package must ship."""
    from satpy_prenet.bundle import embedded_bundle_path

    path = embedded_bundle_path()
    assert path.is_file(), f"the embedded demo bundle {path} is missing: rebuild it with `make bundle`"
    return path


@pytest.fixture
def no_weights_env(monkeypatch):
    """Nothing configured: the embedded demo bundle is used."""
    monkeypatch.delenv("SATPY_PRENET_WEIGHTS", raising=False)
