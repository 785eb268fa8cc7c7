"""The energy model's score is chosen on validation background and its probes, never on signals.

Probes: valid ADC2021 events, deterministic, each changing what it claims and nothing else.
The rule: a known answer, the one-standard-error preference both ways, clear errors. End to end on
a tiny trained model: files written, same seed same bytes, and the evaluation reports that choice
whatever signals it is given.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from l1ad.evaluation.score_choice import FAMILY, choose, choose_ebm_score, read_choice
from l1ad.events import schema
from l1ad.events.generator.api import generate_background
from l1ad.events.probes import HARDER_FACTOR, MET_KICK_GEV, PROBES, make_probe
from l1ad.events.validate import find_problems

N = 3000


@pytest.fixture(scope="module")
def background() -> np.ndarray:
    return generate_background(N, seed=4)


def _count(p: np.ndarray, kind: schema.ObjectType) -> np.ndarray:
    return (p[:, kind.slots, schema.CLASS] == kind.code).sum(axis=1)


@pytest.mark.parametrize("name", PROBES)
def test_probe_events_are_valid_and_deterministic(background, name) -> None:
    before = background.copy()
    probe = make_probe(name, background, seed=7)
    np.testing.assert_array_equal(background, before)  # the input is left alone
    assert probe.shape == background.shape and probe.dtype == np.float32
    bad = {rule: int(m.sum()) for rule, m in find_problems(probe).items() if m.any()}
    assert not bad, bad
    for kind in schema.OBJECT_TYPES:
        pt = probe[:, kind.slots, schema.PT]
        assert (np.diff(pt, axis=1) <= 0).all(), f"{kind.name} not pT-ordered"
        present = probe[:, kind.slots, schema.CLASS] == kind.code
        assert (np.diff(present.astype(int), axis=1) <= 0).all(), f"{kind.name}: padding before an object"
    np.testing.assert_array_equal(probe, make_probe(name, background, seed=7))
    assert not np.array_equal(probe, background)
    if name != "harder":  # the one probe without randomness
        assert not np.array_equal(probe, make_probe(name, background, seed=8))


def test_extra_object_adds_one_leading_object(background) -> None:
    probe = make_probe("extra_object", background, seed=1)
    kinds = (schema.EGAMMA, schema.MUON, schema.JET)
    delta = np.stack([_count(probe, k) - _count(background, k) for k in kinds], axis=1)
    full = np.stack([_count(background, k) == k.n_slots for k in kinds], axis=1)
    changed = (probe != background).any(axis=(1, 2))
    assert changed.mean() > 0.99
    # one block per event gains an object, unless it was full (then its softest is replaced)
    assert ((delta.sum(axis=1) == 1) | full.any(axis=1)).all()
    assert (delta >= 0).all() and (delta <= 1).all()
    np.testing.assert_array_equal(probe[:, schema.MET.slots], background[:, schema.MET.slots])
    # the added objects are leading objects of other events: harder than the average object
    leading_pt = np.concatenate(
        [background[:, k.first_slot, schema.PT][_count(background, k) > 0] for k in kinds]
    )
    all_pt = background[:, 1:, schema.PT][background[:, 1:, schema.CLASS] > 0]
    assert np.median(leading_pt) > np.median(all_pt)


def test_harder_scales_every_pt(background) -> None:
    probe = make_probe("harder", background, seed=0)
    np.testing.assert_array_equal(
        probe[:, :, schema.PT], background[:, :, schema.PT] * np.float32(HARDER_FACTOR)
    )
    np.testing.assert_array_equal(probe[:, :, 1:], background[:, :, 1:])


def test_block_shuffle_recombines_whole_blocks(background) -> None:
    probe = make_probe("block_shuffle", background, seed=2)
    np.testing.assert_array_equal(probe[:, schema.LEPTON_SLOTS], background[:, schema.LEPTON_SLOTS])
    for kind in (schema.JET, schema.MET):
        blocks = [{r.tobytes() for r in a[:, kind.slots]} for a in (probe, background)]
        assert blocks[0] == blocks[1]  # the same blocks, in other events
        assert (probe[:, kind.slots] != background[:, kind.slots]).any(axis=(1, 2)).mean() > 0.5


def test_met_kick_adds_an_invisible_momentum(background) -> None:
    probe = make_probe("met_kick", background, seed=3)
    np.testing.assert_array_equal(probe[:, 1:], background[:, 1:])

    def vec(p):
        met = p[:, schema.MET.first_slot].astype(np.float64)
        return met[:, schema.PT, None] * np.stack(
            [np.cos(met[:, schema.PHI]), np.sin(met[:, schema.PHI])], axis=1
        )

    kick = np.linalg.norm(vec(probe) - vec(background), axis=1)
    assert kick.min() >= MET_KICK_GEV[0] - 1e-3 and kick.max() <= MET_KICK_GEV[1] + 1e-3


def test_probe_errors(background) -> None:
    with pytest.raises(ValueError, match="unknown probe"):
        make_probe("nope", background, seed=0)
    with pytest.raises(ValueError, match="expected"):
        make_probe("harder", background[:, :10], seed=0)


def _scores(rng, n, shift):
    return {s: rng.normal(size=n) + shift.get(s, 0.0) for s in ("a", "b", "c")}


def test_rule_known_answer_and_one_standard_error() -> None:
    rng = np.random.default_rng(0)
    bkg = _scores(rng, 20_000, {})
    # "c" separates the probes far better than "a" and "b": it is chosen though it is last
    probes = {"p1": _scores(rng, 5000, {"c": 4.0}), "p2": _scores(rng, 5000, {"c": 4.0, "a": 1.0})}
    res = choose(bkg, probes, family=("a", "b", "c"), fpr=1e-3)
    assert res["best"] == "c" and res["chosen"] == "c"
    assert (
        res["scores"]["c"]["mean_tpr"]
        > res["scores"]["a"]["mean_tpr"] + 5 * res["scores"]["a"]["mean_tpr_err"]
    )
    # "a" and "c" equal up to a copy of the same numbers: the first of the family wins the tie
    probes_tied = {p: {**s, "a": s["c"]} for p, s in probes.items()}
    res = choose({**bkg, "a": bkg["c"]}, probes_tied, family=("a", "b", "c"), fpr=1e-3)
    assert res["chosen"] == "a"
    # slightly worse than the best but within its error: the earlier score is still preferred
    probes_close = {p: {**s, "a": s["c"] - 0.01} for p, s in probes.items()}
    res = choose({**bkg, "a": bkg["c"]}, probes_close, family=("a", "b", "c"), fpr=1e-3)
    row_a, row_c = res["scores"]["a"], res["scores"]["c"]
    assert res["best"] == "c" and row_a["mean_tpr"] < row_c["mean_tpr"]
    assert res["chosen"] == "a" and row_a["mean_tpr"] >= row_c["mean_tpr"] - row_c["mean_tpr_err"]


def test_rule_errors() -> None:
    rng = np.random.default_rng(1)
    bkg = _scores(rng, 1000, {})
    with pytest.raises(ValueError, match="missing"):
        choose(bkg, {"p": {"a": bkg["a"]}}, family=("a", "b"))
    with pytest.raises(ValueError, match="at least one probe"):
        choose(bkg, {}, family=("a",))
    with pytest.raises(ValueError, match="not resolved"):
        choose(bkg, {"p": bkg}, family=("a",), fpr=1e-5)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory):
    from l1ad.events.io import write_events
    from l1ad.models.ebm.toydata import TINY_CONFIG
    from l1ad.models.ebm.train import train_model

    d = tmp_path_factory.mktemp("choice")
    train = write_events(d / "train.h5", generate_background(800, seed=1))
    val = write_events(d / "val.h5", generate_background(2400, seed=2))
    model = train_model("ebm", train, d / "run", config=TINY_CONFIG, seed=0)
    return model, val


def test_choose_ebm_score_writes_a_deterministic_choice(tiny_model) -> None:
    from l1ad.models.ebm.pattern_density import PATTERN_FILE
    from l1ad.models.ebm.scores import CHOICE_FILE

    model, val = tiny_model
    res = choose_ebm_score(model, val, seed=5, fpr=1e-2)
    assert res["chosen"] in FAMILY and res["probes"] == list(PROBES) and res["n_background"] == 1200
    assert res["calibration_rows"] == [0, 1200] and res["choice_rows"] == [1200, 2400]
    assert json.loads((model / PATTERN_FILE).read_text())["fitted_on"]["rows"] == [0, 1200]
    first = (model / CHOICE_FILE).read_bytes()
    assert read_choice(model) == json.loads(first)
    choose_ebm_score(model, val, seed=5, fpr=1e-2)
    assert (model / CHOICE_FILE).read_bytes() == first  # same seed, same bytes
    with pytest.raises(ValueError, match="needs >= 20000"):
        choose_ebm_score(model, val, fpr=1e-3)


def test_evaluation_reports_the_choice_whatever_the_signals(tiny_model, tmp_path) -> None:
    from l1ad.evaluation.evaluate import evaluate_run
    from l1ad.events.generator.api import generate_signal
    from l1ad.events.io import write_events

    model, val = tiny_model
    choice = choose_ebm_score(model, val, seed=5, fpr=1e-2)
    bkg = write_events(tmp_path / "bkg.h5", generate_background(1000, seed=9))
    reported = []
    for name in ("Ato4l", "leptoquark"):
        sig = write_events(tmp_path / f"{name}.h5", generate_signal(name, 300, seed=3))
        result = evaluate_run(model.parent, bkg, {name: sig})
        reported.append(result["score_choice"]["ebm/float"])
    assert reported[0] == reported[1]
    assert reported[0]["chosen"] == choice["chosen"]
    label = reported[0]["label"]
    assert label in result["models"]
    assert (model.parent / "plots" / "loss_ebm_float.png").is_file()  # the loss curve per epoch
