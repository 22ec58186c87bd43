"""The training report on small work directories written here: tables, summary flags, JSON, figure and errors."""

from __future__ import annotations

import json
import logging
import math
import sys

import pytest

from satpy_prenet.training.report import read_log, write_training_report

NAN = float("nan")


def _classifier_old(epoch, loss, csi):
    """An older line: no terms, no gradient norms."""
    return {"epoch": epoch, "lr": 0.002, "train": {"loss": loss, "task": loss},
            "validation": {"loss": 0.6, "pixels": 100, "csi": csi, "pod": 0.5, "far": 0.3}, "steps": 4,
            "seconds": 1.5}


def _regressor_new(epoch, rmse):
    """A distillation line with weighted terms (summing to the loss) and gradient norms."""
    terms = {"task": 2.0 / epoch, "kd": 0.5, "rec": 10.0 / epoch}
    return {"epoch": epoch, "lr": 0.001, "train": {"loss": sum(terms.values()), "task": 2.0 / epoch, "kd": 0.1,
                                                   "rec": 0.2 / epoch},
            "terms": terms, "grad_norm": {"stem": 0.8, "stages": 1.2 * epoch, "head": 0.1, "lora": 0.0},
            "validation": {"loss": 3.0, "pixels": 50, "rmse_rain": rmse}, "steps": 4, "seconds": 2.0}


def _adapt(epoch, csi, keep):
    terms = {"task": 1.0 - 0.1 * epoch}
    return {"epoch": epoch, "lr": 0.001, "train": {"loss": terms["task"], "task": terms["task"]}, "terms": terms,
            "grad_norm": {"head": 0.3, "lora": 0.05},
            "validation": {"loss": 0.5, "pixels": 100, "csi": csi, "pod": 0.6, "far": 0.4}, "steps": 2,
            "seconds": 3.0, "masks": {"count": 8, "sha256": "0" * 64, "keep_fraction": keep}}


def _write(workdir, run, lines):
    folder = workdir / "checkpoints" / run
    folder.mkdir(parents=True)
    (folder / "metrics.jsonl").write_text("".join(line + "\n" for line in lines))


@pytest.fixture(scope="module")
def workdir(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("work")
    # Peaks in its first epoch and its loss rises; one malformed and one blank line.
    teacher = [json.dumps(_classifier_old(epoch, loss, csi))
               for epoch, loss, csi in ((1, 0.5, 0.6), (2, 0.45, 0.4), (3, 0.55, 0.5))]
    _write(workdir, "teacher-classifier", [teacher[0], '{"epoch": 2, "lr": 0.0', "", *teacher[1:]])
    # Best (lowest) RMSE in epoch 3; epoch 2 has a NaN RMSE (written as JSON NaN).
    _write(workdir, "distill-regressor", [json.dumps(_regressor_new(epoch, rmse))
                                          for epoch, rmse in ((1, 2.5), (2, NAN), (3, 1.9), (4, 2.1))])
    _write(workdir, "adapt-classifier", [json.dumps(_adapt(epoch, csi, keep))
                                         for epoch, csi, keep in ((1, 0.3, 0.06), (2, 0.45, 0.05))])
    (workdir / "checkpoints" / "normalisation.json").write_text("{}")
    return workdir


@pytest.fixture(scope="module")
def report(workdir):
    return write_training_report(workdir)


def _table(markdown, run):
    """Rows of the epoch table under ``## run`` as dicts of cells."""
    section = markdown.split(f"## {run}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line.strip("|").split(" | ") for line in section.splitlines() if line.startswith("| ")]
    header = [cell.strip() for cell in rows[0]]
    return [dict(zip(header, (cell.strip() for cell in row), strict=True)) for row in rows[1:]], section


def test_layout(workdir, report):
    out = report
    assert out == workdir / "report"
    assert sorted(path.name for path in out.iterdir()) == ["learning_curves.png", "training_report.json",
                                                           "training_report.md"]


def test_json_summary(report):
    out = report
    data = json.loads((out / "training_report.json").read_text())
    assert list(data) == ["teacher-classifier", "distill-regressor", "adapt-classifier"]
    teacher = data["teacher-classifier"]
    assert (teacher["stage"], teacher["head"]) == ("teacher", "classifier")
    assert [epoch["epoch"] for epoch in teacher["epochs"]] == [1, 2, 3]
    assert teacher["summary"] == {"epochs": 3, "metric": "csi", "higher_is_better": True, "best_epoch": 1,
                                  "best_value": 0.6, "peaked_first": True, "loss_fell": False}
    distill = data["distill-regressor"]["summary"]
    assert (distill["metric"], distill["best_epoch"], distill["best_value"]) == ("rmse_rain", 3, 1.9)
    assert not distill["peaked_first"] and distill["loss_fell"]
    assert math.isnan(data["distill-regressor"]["epochs"][1]["validation"]["rmse_rain"])
    adapt = data["adapt-classifier"]
    assert (adapt["summary"]["best_epoch"], adapt["summary"]["peaked_first"]) == (2, False)
    assert adapt["epochs"][1]["masks"]["keep_fraction"] == 0.05
    for run in data.values():
        for epoch in run["epochs"]:
            assert sum(epoch["share_percent"].values()) == pytest.approx(100.0)


def test_markdown_tables(report):
    out = report
    markdown = (out / "training_report.md").read_text()
    rows, section = _table(markdown, "distill-regressor")
    assert [row["epoch"] for row in rows] == ["1", "2", "3", "4"]
    assert {"grad stem", "grad stages", "grad head", "grad lora", "rmse_rain", "val loss", "seconds"} <= set(rows[0])
    for row in rows:
        shares = [float(row[part].split("(")[1].rstrip(" %)")) for part in ("task", "kd", "rec")]
        assert sum(shares) == pytest.approx(100.0, abs=0.2)
    assert rows[1]["rmse_rain"] == "nan"
    assert "best epoch 3 of 4: rmse_rain 1.9 (lowest)" in section
    assert "Flags" not in section
    rows, section = _table(markdown, "teacher-classifier")
    assert "keep fraction" not in rows[0] and "grad head" not in rows[0]
    assert "**Flags**: peaked in its first epoch; training loss did not fall." in section
    rows, section = _table(markdown, "adapt-classifier")
    assert [row["keep fraction"] for row in rows] == ["0.06", "0.05"]
    assert "Flags" not in section


def test_bad_lines_warned(workdir, caplog):
    log = workdir / "checkpoints" / "teacher-classifier" / "metrics.jsonl"
    with caplog.at_level(logging.WARNING, logger="satpy_prenet.training.report"):
        epochs = read_log(log)
    assert [epoch["epoch"] for epoch in epochs] == [1, 2, 3]
    assert f"{log} line 2: not a JSON object with an integer epoch, skipped" in caplog.messages
    assert f"{log} line 3: blank line, skipped" in caplog.messages


def test_figure(report):
    image = pytest.importorskip("matplotlib.image").imread(report / "learning_curves.png")
    height, width, _ = image.shape
    assert width > 800 and height > 500
    assert image.std() > 0.05


def test_out_folder_and_errors(workdir, tmp_path, monkeypatch):
    empty = tmp_path / "empty"
    (empty / "checkpoints" / "teacher-classifier").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="empty.*metrics.jsonl"):
        write_training_report(empty)
    (empty / "checkpoints" / "teacher-classifier" / "metrics.jsonl").write_text("\n")
    with pytest.raises(FileNotFoundError, match=str(empty)):
        write_training_report(empty, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    with pytest.raises(ImportError, match=r'pip install "satpy-prenet\[evaluation\]"'):
        write_training_report(workdir, tmp_path / "out")


def test_report_command(workdir, tmp_path):
    from click.testing import CliRunner

    from satpy_prenet.training.cli import main

    result = CliRunner().invoke(main, ["report", str(workdir), "--out", str(tmp_path / "cli")])
    assert result.exit_code == 0, result.output
    assert f"report: {tmp_path / 'cli'}" in result.output
    assert json.loads((tmp_path / "cli" / "training_report.json").read_text()).keys() >= {"teacher-classifier"}
    missing = CliRunner().invoke(main, ["report", str(tmp_path / "nowhere")])
    assert missing.exit_code == 1 and "nowhere" in missing.output and "metrics.jsonl" in missing.output
