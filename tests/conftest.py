"""Shared fixtures: simulated AGRI files in the real layout and weights bundles."""

from __future__ import annotations

import datetime as dt
import os

import pytest

# One torch thread per test process: the suite runs beside dask's own threads on 2-core machines.
os.environ.setdefault("OMP_NUM_THREADS", "1")

#: The time of every simulated AGRI file of the suite: fixed, so that no test depends on the clock.
START = dt.datetime(2026, 7, 15, 6, 0)
#: The clock of the chain's input check in the tests (the check's ``now``): ten minutes after the latest slot of
#: ``chain_agri_files``, so that those files are young enough for the product list's age limit at any hour.
CHAIN_NOW = dt.datetime(2026, 7, 15, 6, 40, tzinfo=dt.timezone.utc)
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


#: Inside the PRE-Net region (0-65 N, 60-160 E), over southern China and the South China Sea, per platform.
CHINA_REGIONS = {"FY-4A": (700, 956, 1300, 1556), "FY-4B": (700, 956, 900, 1156)}


@pytest.fixture(scope="session")
def chain_now():
    """The fixed clock of the chain's input check: :data:`CHAIN_NOW`."""
    return CHAIN_NOW


@pytest.fixture(scope="session")
def recent_agri_files(world, tmp_path_factory):
    """Regional AGRI L1 files of three consecutive 15-minute slots, the latest the slot of :data:`CHAIN_NOW`.

    Keys: ``(platform, slot)`` with slot 0 the latest, 1 and 2 the two before. The time is fixed (not the clock's
    current slot), so what the files hold, rain included, is the same at any hour; the chain's input check is
    given ``now=CHAIN_NOW`` to find them young enough.
    """
    from satpy_prenet.demo import current_slot
    from satpy_prenet.synthetic import write_agri_l1

    out = tmp_path_factory.mktemp("recent-agri")
    now = current_slot(CHAIN_NOW.replace(tzinfo=None))
    files = {}
    for slot in range(3):
        start = now - dt.timedelta(minutes=15 * slot)
        files["FY-4A", slot] = write_agri_l1(world.scene(start, "FY-4A", CHINA_REGIONS["FY-4A"]), out)
    files["FY-4B", 0] = write_agri_l1(world.scene(now, "FY-4B", CHINA_REGIONS["FY-4B"]), out)
    return files


@pytest.fixture(scope="session")
def bad_agri_inputs(recent_agri_files, tmp_path_factory):
    """Inputs a chain must refuse, as ``(kind, path, announced platform, expected words of the error)``."""
    import shutil

    import h5py
    import numpy as np

    good = recent_agri_files["FY-4A", 0]
    out = tmp_path_factory.mktemp("bad-agri")

    def place(kind):
        (out / kind).mkdir()
        return out / kind / good.name

    corrupt = place("corrupt")
    corrupt.write_bytes(np.random.default_rng(0).integers(0, 256, 200_000, dtype=np.uint8).tobytes())
    truncated = place("truncated")
    truncated.write_bytes(good.read_bytes()[: good.stat().st_size * 2 // 5])
    empty = place("empty")
    empty.touch()
    lacking = place("missing-channel")
    shutil.copy(good, lacking)
    with h5py.File(lacking, "r+") as h5:
        del h5["NOMChannel12"]  # 10.8 um on FY-4A
    return [
        ("corrupt", corrupt, "FY-4A", "not a readable HDF5 file"),
        ("truncated", truncated, "FY-4A", "truncated or corrupt"),
        ("zero-byte", empty, "FY-4A", "empty (zero bytes)"),
        ("wrong satellite", good, "FY-4B", "announces FY-4B but the file comes from FY-4A"),
        ("missing channel", lacking, "FY-4A", "lacks channel(s) C12"),
        ("unreadable path", out / "nowhere" / good.name, "FY-4A", "no such file"),
    ]


@pytest.fixture(scope="session")
def damaged_agri_file(recent_agri_files, tmp_path_factory):
    """A file that passes every check before reading (name, HDF5 structure, channels) but whose 10.8 um data are
    damaged: one compressed chunk overwritten, so reading it fails only when the products are computed."""
    import shutil

    import h5py

    good = recent_agri_files["FY-4A", 0]
    damaged = tmp_path_factory.mktemp("damaged-agri") / good.name
    shutil.copy(good, damaged)
    with h5py.File(damaged, "r") as h5:
        chunk = h5["NOMChannel12"].id.get_chunk_info(0)
    with open(damaged, "r+b") as stream:
        stream.seek(chunk.byte_offset + 16)
        stream.write(bytes(64))
    return damaged
