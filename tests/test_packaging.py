"""``pip install .`` (not editable) works: the wheel holds the package and its data files and nothing
else, and the installed ``l1ad`` reads its targets from the package but writes only under the
current directory."""

from __future__ import annotations

import json
import os
import runpy
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The wheel built from this source tree (no build isolation: no network needed)."""
    out = tmp_path_factory.mktemp("wheel")
    src = out / "src"  # build from a copy, so the build leaves nothing in the checkout
    shutil.copytree(ROOT, src, ignore=shutil.ignore_patterns(".venv", ".git", "runs", "build", "*.egg-info",
                                                             "__pycache__", ".pytest_cache", ".ruff_cache"))  # fmt: skip
    for generated in (src / "firmware_projects").iterdir():
        if generated.is_dir() and generated.name != "__pycache__":
            shutil.rmtree(generated)
    (src / "firmware_projects" / "stale_project").mkdir()  # a generated project must not be packaged
    (src / "firmware_projects" / "stale_project" / "build_prj.tcl").write_text("# generated\n")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w",
                    str(out), str(src)], check=True, capture_output=True, text=True)  # fmt: skip
    (whl,) = out.glob("l1ad-*.whl")
    return whl


@pytest.mark.slow
def test_wheel_holds_the_package_and_its_data_only(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names}
    assert top <= {"l1ad", *(n.split("/")[0] for n in names if ".dist-info/" in n)}, top
    assert "l1ad/firmware_projects/ae_compact_vu13p.yaml" in names
    assert "l1ad/firmware_projects/ae_compact_vu13p_da.yaml" in names
    assert "l1ad/firmware_projects/student_vu13p_da.yaml" in names
    assert "l1ad/models/registry.py" in names and "l1ad/core/files.py" in names
    assert "l1ad/serving/grafana_dashboard.json" in names
    assert {
        "l1ad/models/keras/__init__.py",
        "l1ad/models/keras/train.py",
        "l1ad/models/ebm/scores.py",
    } <= set(names)
    bad = [
        n for n in names if any(part in n.split("/") for part in ("runs", ".venv", "tests", "stale_project"))
    ]
    assert not bad, bad


@pytest.mark.slow
def test_installed_l1ad_builds_firmware_under_the_current_directory(wheel: Path, tmp_path: Path) -> None:
    """A fresh venv with the wheel installed (dependencies taken from this environment through a .pth),
    run from another directory: ``l1ad firmware build <shipped target> --run-dir RUN`` writes the
    project into ./firmware_projects/ of that directory and nothing into the installed package."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    py = venv / "bin" / "python"
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               check=True, capture_output=True, text=True).stdout.strip())  # fmt: skip
    (site / "deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    subprocess.run([str(py), "-m", "pip", "install", "--no-deps", "--no-index", "-q", str(wheel)], check=True)
    pkg = site / "l1ad"
    assert (pkg / "firmware_projects" / "ae_compact_vu13p.yaml").is_file()
    before = sorted(p.relative_to(pkg).as_posix() for p in pkg.rglob("*") if "__pycache__" not in p.parts)

    version = subprocess.run([str(venv / "bin" / "l1ad"), "--version"], check=True, capture_output=True,
                             text=True).stdout  # fmt: skip
    assert version.split() == ["l1ad", "0.1.0"]

    # a run directory holding what the shipped target names: the model, a rate table, test events
    fm = runpy.run_path(str(ROOT / "tests" / "fixtures" / "firmware_models.py"))["load"]()
    run = tmp_path / "run"
    shutil.copytree(fm.model_dir(), run / "ae_compact-hgq")
    (run / "evaluation.json").write_text(json.dumps({"rates": {"ae_compact/hgq": json.loads(
        fm.evaluation_json().read_text())["models"]["fw_test_ae"]["rates"]}}))  # fmt: skip
    from l1ad.events.io import write_events

    write_events(run / "data" / "background_test.h5", fm.particles(200, seed=1))
    work = tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([str(venv / "bin" / "l1ad"), "firmware", "build", "ae_compact_vu13p", "--run-dir", str(run)],
                          cwd=work, env=env, capture_output=True, text=True, timeout=900)  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    project = work / "firmware_projects" / "ae_compact_vu13p"
    meta = json.loads((project / "metadata.json").read_text())
    assert meta["target"] == "ae_compact_vu13p" and len(meta["thresholds"]) == 4
    assert sorted(p.name for p in work.iterdir()) == ["firmware_projects"]
    after = sorted(p.relative_to(pkg).as_posix() for p in pkg.rglob("*") if "__pycache__" not in p.parts)
    assert after == before  # nothing written into the installed package
    # the installed package is the one that ran, not this checkout
    where = subprocess.run([str(py), "-c", "import l1ad, sys; print(l1ad.__file__)"], cwd=work, env=env,
                           check=True, capture_output=True, text=True).stdout  # fmt: skip
    assert Path(where.strip()).parent == pkg
    assert np.isfinite(meta["clock_period_ns"])
