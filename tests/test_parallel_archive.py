"""Simulating the archive and building the stores on dask.distributed give the files and stores of the serial run."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import shutil
from pathlib import Path

import pytest
import xarray as xr
from distributed import LocalCluster

from satpy_prenet.data import stores
from satpy_prenet.parallel import SerialExecutor, executor
from satpy_prenet.synthetic.archive import simulate_archive
from satpy_prenet.training.builder import PROGRESS_FILE, BuildConfig, BuildError, build_datasets, discover_sources
from satpy_prenet.training.builder.progress import Progress

#: One GPM pass (granule 70408) crossing the region from 18:45 to 19:00: its scenes come from two hour tasks.
SIMULATE = {"seed": 2026, "start": dt.datetime(2026, 7, 15, 18), "end": dt.datetime(2026, 7, 15, 19, 30),
            "platform": "FY-4A", "region": (100.0, 125.0, 15.0, 40.0)}
CONFIG = BuildConfig(swath_tile_scans=128, disc_tile_size=128, min_rain_fraction=0.0,
                     validation_from="2030-01-01T00:00:00", test_from="2031-01-01T00:00:00")


class Killed(Exception):
    """Stands for the build process being killed."""


def simulate_and_build(folder: Path, tasks) -> tuple[Path, Path]:
    archive = simulate_archive(folder / "archive", **SIMULATE, progress=False, executor=tasks)
    build_datasets(discover_sources(archive.root), folder / "datasets", CONFIG, progress=False, executor=tasks)
    return archive.root, folder / "datasets"


def file_hashes(folder: Path) -> dict[str, str]:
    return {str(path.relative_to(folder)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(folder.rglob("*")) if path.is_file() and path.name != PROGRESS_FILE}


def assert_same_stores(expected: Path, actual: Path) -> None:
    assert json.loads((actual / PROGRESS_FILE).read_text()) == json.loads((expected / PROGRESS_FILE).read_text())
    for kind in stores.KINDS:
        for split in stores.SPLITS:
            path = stores.store_path(expected, kind, split)
            other = stores.store_path(actual, kind, split)
            assert stores.tile_count(other) == stores.tile_count(path), f"{kind}/{split}"
            if stores.tile_count(path) is not None:
                xr.testing.assert_identical(stores.open_tiles(other).load(), stores.open_tiles(path).load())


@pytest.fixture(scope="module")
def serial(tmp_path_factory):
    """The reference: simulated and built in this process (``workers=0``)."""
    with executor(workers=0) as tasks:
        assert isinstance(tasks, SerialExecutor)
        return simulate_and_build(tmp_path_factory.mktemp("serial"), tasks)


@pytest.fixture(scope="module")
def cluster():
    """A local cluster of two single-threaded worker processes on the loopback, as another user would start one."""
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address="127.0.0.1:0") as local:
        yield local


def test_serial_run_gives_stores_with_tiles(serial):
    archive, datasets = serial
    assert {path.parent.name for path in archive.rglob("*.*")} >= {"agri", "gmi", "dpr", "cldas", "elevation"}
    assert stores.tile_count(stores.store_path(datasets, stores.SWATH_MPR, "train"))
    assert stores.tile_count(stores.store_path(datasets, stores.FULL_IPR, "train"))


def test_two_local_workers_give_the_same_files_and_stores(serial, tmp_path):
    with executor(workers=2) as tasks:
        workers = tasks.client.scheduler_info()["workers"]
        assert len(workers) == 2 and all(address.startswith("tcp://127.0.0.1:") for address in workers)
        archive, datasets = simulate_and_build(tmp_path, tasks)
    assert tasks.client.status == "closed"
    assert file_hashes(archive) == file_hashes(serial[0])
    assert_same_stores(serial[1], datasets)


def test_a_running_scheduler_resumes_a_killed_build_to_the_same_stores(serial, cluster, tmp_path, monkeypatch):
    """A serial build killed between appending a unit and committing it, resumed on the cluster."""
    commit, calls = Progress.commit, []

    def killed_commit(self, *args):
        calls.append(args[0])
        if len(calls) == 2:
            raise Killed
        commit(self, *args)

    monkeypatch.setattr(Progress, "commit", killed_commit)
    sources = discover_sources(serial[0])
    with pytest.raises(Killed):
        build_datasets(sources, tmp_path, CONFIG, progress=False)
    monkeypatch.undo()
    with executor(scheduler=cluster.scheduler_address) as tasks:
        report = build_datasets(sources, tmp_path, CONFIG, progress=False, executor=tasks)
    assert report.units_resumed == 1 and report.units_done >= 2
    assert_same_stores(serial[1], tmp_path)
    assert len(cluster.scheduler_info["workers"]) == 2, "closing the client must leave a running cluster alone"


def test_a_copied_archive_rebuilt_on_the_cluster_skips_every_unit(serial, cluster, tmp_path):
    shutil.copytree(serial[1], tmp_path / "datasets")
    with executor(scheduler=cluster.scheduler_address) as tasks:
        report = build_datasets(discover_sources(serial[0]), tmp_path / "datasets", CONFIG, progress=False,
                                executor=tasks)
    assert report.units_done == 0 and report.units_resumed > 0
    assert_same_stores(serial[1], tmp_path / "datasets")


def test_a_local_cluster_is_closed_on_interrupt():
    with pytest.raises(KeyboardInterrupt), executor(workers=1) as tasks:
        raise KeyboardInterrupt
    assert tasks.client.status == "closed" and tasks.client.cluster.status.name == "closed"


def test_workers_and_scheduler_exclude_each_other():
    with pytest.raises(ValueError, match="not both"), executor(workers=2, scheduler="tcp://127.0.0.1:1"):
        pass
    with pytest.raises(ValueError, match=">= 0"), executor(workers=-1):
        pass


def test_a_unit_error_on_a_worker_names_the_file(serial, cluster, tmp_path):
    shutil.copytree(serial[0], tmp_path / "archive")
    broken = sorted((tmp_path / "archive" / "agri").iterdir())[-1]
    broken.write_bytes(broken.read_bytes()[:1000])
    with executor(scheduler=cluster.scheduler_address) as tasks, pytest.raises(BuildError, match=broken.name):
        build_datasets(discover_sources(tmp_path / "archive"), tmp_path / "datasets", CONFIG, progress=False,
                       executor=tasks)


def test_the_commands_take_one_of_scheduler_and_workers(tmp_path):
    from click.testing import CliRunner

    from satpy_prenet.training.cli import main

    for command in (["build", "--sources", str(tmp_path)], ["all", "--simulate"]):
        result = CliRunner().invoke(main, [command[0], "--config", str(tmp_path / "c.yaml"), "--workdir",
                                           str(tmp_path), *command[1:], "--scheduler", "tcp://127.0.0.1:1",
                                           "--workers", "2"])
        assert result.exit_code == 2 and "at most one of --scheduler and --workers" in result.output
