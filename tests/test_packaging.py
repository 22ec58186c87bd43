"""The wheel an operator installs into an existing pytroll environment carries everything the plugin reads."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel pip builds from the checkout (hatchling, as `pip install .` would)."""
    out = tmp_path_factory.mktemp("dist")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
                    "--wheel-dir", str(out), str(REPO)], check=True, capture_output=True, text=True)
    [built] = out.glob("satpy_prenet-*.whl")
    return built


def test_the_wheel_holds_the_plugin_its_data_and_the_operator_configuration(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        [entry_points] = [name for name in names if name.endswith(".dist-info/entry_points.txt")]
        entry_points = archive.read(entry_points).decode()
    for needed in ("satpy_prenet/etc/composites/agri.yaml", "satpy_prenet/etc/enhancements/agri.yaml",
                   "satpy_prenet/etc/writers/prenet_picture.yaml",
                   "satpy_prenet/etc/rain_rate_legend.png", "satpy_prenet/weights/demo-small.safetensors",
                   "trollflow2_plugins/prenet.py", "trollflow2_plugins/delivery.py"):
        assert needed in names, needed
    shared = {name.split("/data/share/satpy-prenet/", 1)[1] for name in names if "/data/share/satpy-prenet/" in name}
    assert {"etc/trollflow2/agri_precipitation.yaml", "etc/trollflow2/log_config.yaml", "etc/areas.yaml"} <= shared
    for group in ("satpy.composites", "satpy.enhancements", "console_scripts"):
        assert f"[{group}]" in entry_points
    assert not any(name.startswith(("tests/", "benchmarks/")) for name in names)


def test_the_installed_package_finds_its_data_away_from_the_checkout(wheel, tmp_path):
    """Installed with pip (no dependencies: they are the environment's), imported from outside the checkout."""
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--quiet", "--target", str(target),
                    str(wheel)], check=True, capture_output=True, text=True)
    probe = ("import satpy_prenet, satpy_prenet.pictures as p, satpy_prenet.bundle as b; "
             "print(satpy_prenet.__file__); print(p.LEGEND.is_file()); print(b.embedded_bundle_path().is_file())")
    result = subprocess.run([sys.executable, "-c", probe], cwd=tmp_path, env={"PYTHONPATH": str(target)},
                            check=True, capture_output=True, text=True)
    location, legend, bundle = result.stdout.split()
    assert Path(location).is_relative_to(target)
    assert legend == bundle == "True"
