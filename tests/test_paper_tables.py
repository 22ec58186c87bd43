"""benchmarks/paper_tables.py on the tiny stores: every row of Tables 2-4 scored, Tables 5 and 7 by their functions,
and a rerun that trains nothing."""

from __future__ import annotations

import importlib.util
import json
import math
import os
import sys
from pathlib import Path

import pytest
import torch
import yaml

sys.path.insert(0, os.path.dirname(__file__))
from test_training import tiny_config, write_stores  # noqa: E402

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "paper_tables.py"


def _script(name: str = "paper_tables"):
    sys.path.insert(0, str(SCRIPT.parent))  # the benchmarks import each other
    spec = importlib.util.spec_from_file_location(name, SCRIPT.with_name(f"{name}.py"))
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


def _logs(runs: Path) -> dict[str, float]:
    return {str(path): path.stat().st_mtime_ns for path in sorted(runs.rglob("metrics.jsonl"))}


def _tiny_yaml(path: Path) -> Path:
    """The tests' tiny configuration, batches of 2 for every stage (the direct stage included)."""
    document = tiny_config().to_dict()
    for stage in ("teacher", "distill", "adapt", "direct"):
        document[stage] = {**document[stage], "batch_size": 2, "optimizer": "adamw", "lr": 1e-3, "amp": False}
    path.write_text(yaml.safe_dump(document))
    return path


@pytest.fixture
def one_thread():
    """One torch thread (tiny tensors; much faster than two on a busy machine), restored afterwards."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_paper_tables_smoke_and_resume(tmp_path, monkeypatch, one_thread):
    tables = _script()
    base = tmp_path / "base"
    write_stores(base / "datasets")
    config = _tiny_yaml(tmp_path / "tiny.yaml")
    runs, results = tmp_path / "runs", tmp_path / "results" / "tables"
    argv = ["--base", str(base), "--config", str(config), "--seeds", "0", "--tables", "2", "3", "4",
            "--max-steps", "1", "--threads", "1", "--runs", str(runs), "--results", str(results),
            "--unseen", str(base / "datasets")]  # the tiny Full-IPR test store stands in for the unseen disc

    first = tables.main(argv)

    document = json.loads(results.with_suffix(".json").read_text())
    scores = document["scores"]
    rows = {key for table in ("2", "3", "4") for _, key, _ in tables.TABLE_ROWS[table]}
    assert len(rows) == 11
    for key in [*rows, "teacher/swath"] + [f"stage2/{row}/disc-instantaneous" for row in tables.STAGE_II_ROWS]:
        assert math.isfinite(scores[f"seed0/{key}"]["csi"]), key
        assert scores[f"seed0/{key}"]["tuned"]["threshold"] in tables.load_config(config).model.threshold_grid, key
    assert document["about"]["simulated"] is True
    report = results.with_suffix(".md").read_text()
    assert "simulated data" in report.splitlines()[2]
    for table in ("2", "3", "4"):
        assert tables.TABLE_TITLES[table] in report
    assert "## Orderings" in report and ("held" in report or "did not hold" in report)
    assert "unseen disc CSI (instantaneous)" in report and "unseen disc CSI (hourly)" not in report
    assert first["trained"] == 1 + 6 + 4 + 1  # teacher classifier, Stage I variants, Stage II variants, direct
    # every student, ablated or not, was distilled from the seed's one teacher
    teacher = (runs / "seed0" / "teacher" / "checkpoints" / "teacher-classifier").resolve()
    for variant in ("unet", "prenet"):
        assert (runs / "seed0" / f"distill-{variant}" / "checkpoints" / "teacher-classifier").resolve() == teacher

    logs = _logs(runs)
    assert len(logs) == 12
    again = tables.main(argv)
    assert again["trained"] == 0
    assert _logs(runs) == logs
    assert json.loads(results.with_suffix(".json").read_text())["scores"] == scores
    noted = json.loads(results.with_suffix(".json").read_text())
    noted["settings"]["notes"] = ["seed 0 was trained elsewhere"]  # a note added by hand stays and is shown
    results.with_suffix(".json").write_text(json.dumps(noted))
    assert tables.main(argv)["trained"] == 0
    assert json.loads(results.with_suffix(".json").read_text())["settings"]["notes"] == noted["settings"]["notes"]
    assert "- seed 0 was trained elsewhere" in results.with_suffix(".md").read_text().split("## Definitions")[0]
    with pytest.raises(SystemExit, match="other settings"):  # other settings never mix with these results
        tables.main([*argv, "--max-steps", "2"])

    # Tables 5 and 7: their scoring on the tiny Full-IPR test store standing in for the unseen disc (three of the
    # noise levels, one of each kind)
    monkeypatch.setattr(tables, "NOISE", {level: tables.NOISE[level]
                                          for level in ("clean", "additive 2 K", "multiplicative 2 %")})
    from satpy_prenet.bundle import embedded_bundle_path

    context = tables.Context(config=tables.load_config(config), base=base, runs=runs, device="cpu", results={},
                             path=tmp_path / "products.json")
    tables.reference_rows(context, ["5", "7"], base / "datasets")
    products = context.results["scores"]
    assert set(products["baselines/table5"]) == {"GPI", "auto-estimator", "threshold (tuned)", "trees (IR)"}
    assert set(products["baselines/table7"]) == set(tables.NOISE)
    bundle = {"PRE-Net (prenet+self)": embedded_bundle_path()}
    seeded = {"seed0/table5": tables.table5_rows(bundle, base / "datasets"),
              "seed0/table7": tables.table7_rows(bundle, base / "datasets", runs / "unseen-noise"),
              "seed0/teacher/swath": scores["seed0/teacher/swath"]}
    for level in tables.NOISE:
        assert math.isfinite(seeded["seed0/table7"][level]["PRE-Net (prenet+self)"]["rmse"])
    assert math.isfinite(seeded["seed0/table5"]["PRE-Net (prenet+self)"]["csi"])
    markdown = "\n".join(tables.table5_markdown({**products, **seeded}, [0])
                         + tables.table7_markdown({**products, **seeded}, [0])
                         + tables.orderings_markdown({**products, **seeded}, [0]))
    assert tables.TABLE_TITLES["5"] in markdown and tables.TABLE_TITLES["7"] in markdown
    gpi = markdown.split("Mean")[0].split("PRE-Net above GPI (unseen disc): ")[1].splitlines()[0]
    assert gpi.startswith(("held", "did not hold"))
    assert "PRE-Net above the direct fit (unseen disc): not measured" in markdown  # no direct bundle scored here
    noisy = runs / "unseen-noise" / "additive-2-K" / "full_ipr" / "test.zarr"
    assert noisy.is_dir()


def test_the_threshold_is_tuned_on_validation_and_scored_on_test():
    tables = _script()

    def samples(probabilities, rain):
        return [{"p": torch.tensor([probabilities]), "label": torch.tensor([rain], dtype=torch.float32)}]

    def forward(batch):
        return torch.log(torch.stack([1 - batch["p"], batch["p"]], dim=1))

    validation = samples([0.2, 0.6, 0.8], [0.0, 0.0, 3.0])  # rain only where P = 0.8: 0.65 is the first best
    test = samples([0.2, 0.6, 0.8, 0.9], [0.0, 2.0, 3.0, float("nan")])  # the 0.6 rain is missed; NaN not counted
    tuned = tables.tuned_scores(forward, validation, test, [0.5, 0.65, 0.7, 0.85], "cpu")
    assert tuned == {"threshold": 0.65, "csi": 0.5, "pod": 0.5, "far": 0.0}


def test_learning_vs_size_scores_every_base_on_one_test_split(tmp_path, one_thread):
    study = _script("learning_vs_size")
    bases = [tmp_path / "short", tmp_path / "long"]
    for base in bases:
        write_stores(base / "datasets")
    config = _tiny_yaml(tmp_path / "tiny.yaml")
    runs, results = tmp_path / "runs", tmp_path / "results"
    argv = ["--bases", *map(str, bases), "--config", str(config), "--seeds", "0", "--runs", str(runs),
            "--results", str(results)]

    study.main(argv)

    for base in bases:
        document = json.loads((results / f"{base.name}.json").read_text())
        assert document["test"] == str(bases[-1]) and document["simulated"] is True
        assert document["tiles"]["train"] > 0
        for kind in ("teacher", "unet", "prenet"):
            run = document["scores"][f"seed0/{kind}"]
            assert math.isfinite(run["csi"]), (base.name, kind)
            assert run["curve"]["best_epoch"] == 1 and len(run["curve"]["validation_csi"]) == 1
    report = (results / "learning_vs_size.md").read_text()
    assert "| short: prenet |" in report and "| long: teacher |" in report
    logs = _logs(runs)
    assert len(logs) == 6
    study.main(argv)  # resumed: nothing trained again
    assert _logs(runs) == logs


def test_hourly_label_of_the_unseen_disc_is_the_label_of_the_hour():
    import datetime as dt

    import numpy as np

    from satpy_prenet.synthetic import World

    evaluation = _script("unseen_disc_evaluation")
    world, hour, window = World(11), dt.datetime(2023, 7, 1, 6), (700, 956, 1300, 1556)
    first = world.scene(hour, "FY-4A", window)
    label = evaluation.hourly_label(world, first)
    later = evaluation.hourly_label(world, world.scene(hour + dt.timedelta(minutes=30), "FY-4A", window))
    np.testing.assert_array_equal(label, later)  # one label for every scan of the hour
    rain = first.rain_rate
    both = np.isfinite(label) & np.isfinite(rain)
    assert both.mean() > 0.9
    assert not np.allclose(label[both], rain[both])  # an hourly cell mean, not the scan's rain
    assert np.corrcoef(label[both], rain[both])[0, 1] > 0.3
