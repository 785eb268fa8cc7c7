"""The one teacher definition of the student (models.distill) and the one validation split."""

from __future__ import annotations

import numpy as np
import pytest

from l1ad.events.split import validation_split
from l1ad.models import distill, registry
from l1ad.models.sidecar import read_meta, write_meta


def test_validation_split_every_kth_event() -> None:
    tr, va = validation_split(10, 0.2)
    np.testing.assert_array_equal(va, [4, 9])
    np.testing.assert_array_equal(tr, [0, 1, 2, 3, 5, 6, 7, 8])
    tr, va = validation_split(20, 0.25, max_val=2)  # validation capped: the rest goes back to training
    np.testing.assert_array_equal(va, [3, 7])
    assert len(tr) == 18 and set(tr) | set(va) == set(range(20))
    with pytest.raises(ValueError, match="fraction"):
        validation_split(10, 1.5)


def test_standardize_by_hand() -> None:
    # percentiles of 0..8: q25 = 2, median = 4, q75 = 6 -> scale = 4 / 1.349
    values, c = distill.standardize(np.arange(9.0))
    assert c["median"] == 4.0 and c["scale"] == pytest.approx(4.0 / 1.349)
    np.testing.assert_allclose(values, (np.arange(9.0) - 4.0) * 1.349 / 4.0)


def _fake_model(run, model, quant, framework, **extra):
    d = registry.model_dir(run, model, quant)
    d.mkdir(parents=True)
    write_meta(d, {"model": model, "quantization": quant, "framework": framework, **extra})
    return d


def test_teacher_preference_and_errors(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="ebm-float, ae_ref-float"):
        distill.find_teacher(tmp_path)
    ae = _fake_model(tmp_path, "ae_ref", "float", "keras")
    assert distill.find_teacher(tmp_path) == ae
    ebm = _fake_model(tmp_path, "ebm", "float", "torch")
    assert distill.find_teacher(tmp_path) == ebm  # the energy model is preferred once trained
    assert distill.find_teacher(tmp_path, ae) == ae
    with pytest.raises(FileNotFoundError):
        distill.find_teacher(tmp_path, tmp_path / "nothing")


def test_record_teacher(tmp_path) -> None:
    ebm = _fake_model(tmp_path, "ebm", "float", "torch")
    student = _fake_model(tmp_path, "student", "hgq", "keras", teacher_transform="identity")
    distill.record_teacher(student, ebm, "identity", {"median": 1.5, "scale": 2.0})
    t = read_meta(student)["teacher"]
    assert t == {"model_dir": str(ebm), "label": "ebm/float", "target": "standardized teacher score",
                 "median": 1.5, "scale": 2.0}  # fmt: skip
    assert registry.open_model(student).teacher == "ebm/float"


def test_energy_teacher_target_is_the_standardized_energy(tmp_path) -> None:
    """The target the pipeline's student trains on equals standardize(energy) of the trained EBM."""
    from l1ad.models.ebm.scores import score
    from l1ad.models.ebm.toydata import toy_events, write_toy_h5
    from l1ad.models.ebm.train import train_model

    bkg = write_toy_h5(tmp_path / "bkg.h5", 300, seed=0)
    tiny = {"hidden": 8, "n_blocks": 1, "n_frequencies": 2, "n_levels": 3, "ms_batch": 4, "batch_size": 100,
            "epochs": 1, "gmm_components": 1, "score_batch": 100}  # fmt: skip
    d = train_model("ebm", bkg, tmp_path / "run", config=tiny, seed=0)
    events = toy_events(50, seed=1)
    values, transform, constants = distill.teacher_target(d, events)
    energy = score(d, events)["energy"]
    assert transform == "identity"
    q25, med, q75 = np.percentile(energy, [25, 50, 75])
    np.testing.assert_array_equal(values, (energy - med) / ((q75 - q25) / 1.349))
    assert constants == {"median": med, "scale": (q75 - q25) / 1.349}


def test_the_train_command_offers_exactly_the_registry_models() -> None:
    from l1ad.cli.train import MODELS

    assert MODELS == tuple(registry.KINDS)
