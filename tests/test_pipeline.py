"""`satpy-prenet-train all --simulate` and `build`: simulated archive -> stores -> stages -> bundle -> satpy."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from click.testing import CliRunner
from satpy import Scene

from satpy_prenet.bundle import clear_model_cache, read_header
from satpy_prenet.data.stores import FULL_IPR, SPLITS, SWATH_MPR, open_tiles, store_path
from satpy_prenet.training.cli import main
from satpy_prenet.training.config import ConfigError, load_config
from satpy_prenet.training.pipeline import simulate_sources

REPO = Path(__file__).resolve().parents[1]
#: Three GPM passes of seed 2026 cross the region between 02:00 and 06:00 UTC: one per split.
SIMULATE = {"seed": 2026, "start": "2026-07-15T02:00:00", "end": "2026-07-15T06:00:00", "platform": "FY-4A"}
BUILD = {"validation_from": "2026-07-15T03:30:00", "test_from": "2026-07-15T05:00:00"}


def tiny_config(path: Path) -> Path:
    """etc/training/small.yaml cut to one short epoch per stage, on the simulated morning of SIMULATE."""
    config = yaml.safe_load((REPO / "etc/training/small.yaml").read_text())
    config["simulate"] = SIMULATE
    config["build"].update(BUILD)
    for stage in ("teacher", "distill", "adapt"):
        config[stage].update(epochs=1, max_steps_per_epoch=2)
    config["adapt"]["warmup_epochs"] = 0
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One `all --simulate` run: the work directory and the command's output."""
    workdir = tmp_path_factory.mktemp("train")
    config = tiny_config(workdir / "tiny.yaml")
    result = CliRunner().invoke(main, ["all", "--config", str(config), "--simulate", "--workdir", str(workdir),
                                       "--device", "cpu", "--workers", "0"])  # the cluster: test_parallel_archive
    assert result.exit_code == 0, result.output + repr(result.exception)
    return workdir, result.output


def test_all_leaves_one_bundle_built_from_every_stage(trained):
    workdir, output = trained
    bundles = list(workdir.glob("*.safetensors"))
    assert len(bundles) == 1 and f"bundle: {bundles[0]}" in output
    header = read_header(bundles[0])
    assert header.purpose == "demo-synthetic", "a bundle trained on simulated stores must say so"
    assert set(header.provenance["metrics"]) >= {"test_full_ipr", "probability_threshold"}
    pipeline = header.provenance["pipeline"]
    assert pipeline["simulate"] is True
    assert set(pipeline["seconds"]) == {"simulate", "build", "teacher", "distill", "adapt"}
    for stage in ("teacher", "distill", "adapt"):
        for head in ("classifier", "regressor"):
            lines = (workdir / "checkpoints" / f"{stage}-{head}" / "metrics.jsonl").read_text().splitlines()
            assert len(lines) == 1 and "validation" in json.loads(lines[0])


def test_all_builds_every_store_from_the_simulated_sources(trained):
    workdir, _ = trained
    archive = workdir / "archive"
    for kind in ("agri", "gmi", "dpr", "cldas", "elevation"):
        assert any((archive / kind).iterdir()), f"no simulated {kind} file"
    for kind in (SWATH_MPR, FULL_IPR):
        for split in SPLITS:
            tiles = open_tiles(store_path(workdir / "datasets", kind, split), kind)
            assert tiles.sizes["tile"] > 0, f"{kind}/{split} is empty"
            assert tiles.attrs["split"] == split and tiles.attrs["simulation"]
    swath = open_tiles(store_path(workdir / "datasets", SWATH_MPR, "train"))
    assert swath.sizes["along"] == 128 and swath.sizes["across"] == 49 and swath.sizes["range_bin"] == 176
    echo = swath["pr"].values > 15.0
    rain = swath["label"].values >= 0.1
    assert echo.any(axis=1)[rain].mean() > echo.any(axis=1)[~rain & np.isfinite(swath["label"].values)].mean()


def test_the_composite_uses_the_trained_bundle(trained, monkeypatch):
    workdir, _ = trained
    bundle = next(workdir.glob("*.safetensors"))
    agri = sorted((workdir / "archive" / "agri").glob("*.HDF"))[0]
    monkeypatch.setenv("SATPY_PRENET_WEIGHTS", str(bundle))
    clear_model_cache()
    scene = Scene(reader="agri_fy4a_l1", filenames=[str(agri)])
    scene.load(["precipitation_rate"])
    rate = scene["precipitation_rate"]
    assert rate.attrs["prenet_bundle_sha256"] == read_header(bundle).sha256
    values = rate.values
    assert np.isfinite(values).any() and (values[np.isfinite(values)] >= 0).all()
    clear_model_cache()


def test_rerun_with_resume_keeps_the_archive_and_the_stores(trained, tmp_path):
    workdir, _ = trained
    copy = tmp_path / "again"
    shutil.copytree(workdir, copy)
    before = {path: path.stat().st_mtime_ns for path in (copy / "archive").rglob("*") if path.is_file()}
    config = tiny_config(tmp_path / "tiny.yaml")
    assert simulate_sources(load_config(config), copy / "archive", progress=False) == copy / "archive"
    after = {path: path.stat().st_mtime_ns for path in (copy / "archive").rglob("*") if path.is_file()}
    assert before == after, "a complete simulated archive was written again"
    other = yaml.safe_load(config.read_text())
    other["simulate"]["seed"] = 7
    (tmp_path / "other.yaml").write_text(yaml.safe_dump(other))
    with pytest.raises(ConfigError, match="other settings"):
        simulate_sources(load_config(tmp_path / "other.yaml"), copy / "archive", progress=False)
    result = CliRunner().invoke(main, ["build", "--config", str(config), "--sources", str(copy / "archive"),
                                       "--workdir", str(copy)])
    assert result.exit_code == 0, result.output
    counts = {f"{kind}/{split}": open_tiles(store_path(copy / "datasets", kind, split)).sizes["tile"]
              for kind in (SWATH_MPR, FULL_IPR) for split in SPLITS}
    for store, count in counts.items():
        assert f"{store}: {count} tiles" in result.output


def test_all_needs_sources_or_simulate(tmp_path):
    config = tiny_config(tmp_path / "tiny.yaml")
    result = CliRunner().invoke(main, ["all", "--config", str(config), "--workdir", str(tmp_path / "w")])
    assert result.exit_code != 0 and "--sources" in result.output


def test_build_names_a_missing_sources_folder(tmp_path):
    config = tiny_config(tmp_path / "tiny.yaml")
    result = CliRunner().invoke(main, ["build", "--config", str(config), "--sources", str(tmp_path / "nowhere"),
                                       "--workdir", str(tmp_path / "w")])
    assert result.exit_code != 0 and "nowhere" in result.output and "Traceback" not in result.output


def test_simulate_section_is_checked(tmp_path):
    config = yaml.safe_load(tiny_config(tmp_path / "tiny.yaml").read_text())
    del config["simulate"]["end"]
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(config))
    with pytest.raises(ConfigError, match="simulate"):
        simulate_sources(load_config(path), tmp_path / "archive", progress=False)
