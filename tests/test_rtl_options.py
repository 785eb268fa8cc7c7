"""da4ml options of distributed-arithmetic targets reach the Verilog (:mod:`l1ad.hls.rtl`).

The target keys ``latency_cutoff`` (delay units per pipeline stage) and ``da_delay_constraint``
(da4ml's ``hard_dc``) are read from the project's ``metadata.json`` ``target_config`` by
:func:`write_rtl` unless given explicitly. On the tiny DA test model: another cutoff gives another
number of stages, the target's cutoff is the one used, the constraint reaches the CMVM solver, and
the adder graph computes the same outputs whatever the options (bit for bit).
"""

from __future__ import annotations

import json
import runpy
import shutil
from pathlib import Path

import numpy as np
import pytest

from l1ad.hls.rtl import rtl_options, solver_options

fm = runpy.run_path(str(Path(__file__).parent / "fixtures" / "firmware_models.py"))["load"]()


def test_solver_options() -> None:
    assert solver_options(None) is None  # da4ml's defaults: no constraint
    assert solver_options(0) == {"hard_dc": 0}
    assert solver_options(2) == {"hard_dc": 2}
    for bad in (-1, 1.5, True, "2"):
        with pytest.raises(ValueError, match="delay constraint"):
            solver_options(bad)  # type: ignore[arg-type]


def test_rtl_options_from_target_config() -> None:
    assert rtl_options({}) == (None, None)  # projects built before the keys existed
    assert rtl_options({"target_config": {"latency_cutoff": None, "da_delay_constraint": None}}) == (
        None,
        None,
    )
    cutoff, dc = rtl_options({"target_config": {"latency_cutoff": 8, "da_delay_constraint": 0}})
    assert (cutoff, dc) == (8.0, 0) and isinstance(cutoff, float)


def copy_project(tmp_path: Path, name: str, **target_config: object) -> Path:
    """A copy of the tiny DA project, its ``target_config`` updated with ``target_config``."""
    copy = tmp_path / name
    shutil.copytree(fm.project("distributed_arithmetic", "tiny"), copy)
    meta_file = copy / "metadata.json"
    meta = json.loads(meta_file.read_text())
    meta["target_config"].update(target_config)
    meta_file.write_text(json.dumps(meta))
    return copy


@pytest.mark.slow
def test_cutoff_changes_stages_and_target_cutoff_is_used(tmp_path: Path) -> None:
    from l1ad.emulation.rtl_sim import comb_predict, load_comb
    from l1ad.hls.metadata import read_metadata
    from l1ad.hls.rtl import read_rtl_summary, write_rtl

    model = fm.keras_model("tiny")
    short = write_rtl(model, copy_project(tmp_path, "short"), latency_cutoff=2.0)
    long = write_rtl(model, copy_project(tmp_path, "long"), latency_cutoff=12.0)
    assert short.stages > long.stages >= 1, (short, long)
    assert (
        short.latency_cycles == short.stages + 1
        and long.latency_ns == (long.stages + 1) * long.clock_period_ns
    )

    from_target = copy_project(tmp_path, "target", latency_cutoff=12.0)
    summary = write_rtl(model, from_target)  # no argument: the target's key
    assert summary.stages == long.stages and summary.latency_cutoff == long.latency_cutoff
    assert read_rtl_summary(from_target)["stages"] == long.stages
    rtl_meta = json.loads((from_target / "rtl" / "metadata.json").read_text())
    assert rtl_meta["latency"] == long.stages

    explicit = copy_project(tmp_path, "explicit", latency_cutoff=12.0)
    assert write_rtl(model, explicit, latency_cutoff=2.0).stages == short.stages  # an argument wins

    x = fm.inputs(400, seed=31)
    meta = read_metadata(from_target)
    y = [comb_predict(load_comb(p), x, meta) for p in (tmp_path / "short", tmp_path / "long", from_target)]
    np.testing.assert_array_equal(y[0], y[1])
    np.testing.assert_array_equal(y[0], y[2])


@pytest.mark.slow
def test_delay_constraint_reaches_the_solver(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import da4ml.converter

    from l1ad.emulation.rtl_sim import comb_predict, load_comb
    from l1ad.hls.metadata import read_metadata
    from l1ad.hls.rtl import read_rtl_summary, write_rtl

    seen: list[object] = []
    trace = da4ml.converter.trace_model

    def spy(*args: object, **kwargs: object) -> object:
        seen.append(kwargs.get("solver_options"))
        return trace(*args, **kwargs)

    monkeypatch.setattr(da4ml.converter, "trace_model", spy)
    model = fm.keras_model("tiny")
    free = write_rtl(model, copy_project(tmp_path, "free"))
    target = copy_project(tmp_path, "dc0", da_delay_constraint=0)
    tight = write_rtl(model, target)
    assert seen == [None, {"hard_dc": 0}]
    assert free.delay_constraint is None and tight.delay_constraint == 0
    assert read_rtl_summary(target)["delay_constraint"] == 0
    assert tight.depth <= free.depth  # minimal adder depth per CMVM can only shorten the graph

    x = fm.inputs(400, seed=32)
    meta = read_metadata(target)
    np.testing.assert_array_equal(
        comb_predict(load_comb(tmp_path / "free"), x, meta), comb_predict(load_comb(target), x, meta)
    )
