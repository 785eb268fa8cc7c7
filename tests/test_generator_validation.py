"""The fast generator against the committed Pythia reference (no Pythia needed).

``tests/data/pythia_reference/<process>.h5`` was made by ``scripts/make_pythia_reference.py`` (Pythia 8 +
the L1 emulation of :mod:`l1ad.events.pythia`, 20 pileup events, MPI on). For every process the fast
generator (same event counts x 10) is compared with it by :func:`l1ad.events.compare.compare`.

Thresholds (stated here, checked per process; they are what the fast generator's simple models reach,
not what a perfect model would: the remaining differences are listed in ``KNOWN_GAPS``):

* occupancy per slot: ``|fast - pythia| < OCC_TOL[type]`` (MET exact; muons 0.20, QCD mu2 0.40;
  e/gamma 0.30 -- the emulation makes soft e/gamma fakes from pileup photons that the fast model
  lacks; jets 0.35);
* leading-lepton pT (the trigger object): KS < 0.35; lepton (e1, mu1) eta and all phi: KS < 0.20;
* event-level MET, HT, jet pT and the leading pT of each type: ``W1 / std(pythia) < 1.1``;
* mass peaks: Z ``m_ll`` mode within 91 +- 5 GeV in both; W ``mT`` Jacobian edge: median within 10 GeV;
  A -> 4l ``m_4l`` median below 60 GeV in both.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import numpy as np
import pytest

from l1ad.events import schema
from l1ad.events.compare import compare, format_table, ks_distance, wasserstein
from l1ad.events.generator import PROCESSES, generate_process
from l1ad.events.io import read_events

REF = Path(__file__).parent / "data" / "pythia_reference"
SEED = 11
FAST_FACTOR = 10
OCC_TOL = {"met": 1e-9, "e": 0.30, "mu": 0.20, "jet": 0.35}
#: QCD: the reference forces both B hadrons to decay semileptonically, so a second muon is common.
OCC_TOL_QCD_MU2 = 0.40
KS_LEAD_LEPTON, KS_ANGLE, W1_REL = 0.35, 0.20, 1.1
KNOWN_GAPS = "muon and high jet multiplicities (tests/test_generator_fidelity.py MULTIPLICITY_GAPS)"


@pytest.fixture(scope="module")
def results() -> dict[str, dict]:
    out = {}
    for p in PROCESSES:
        ref = read_events(REF / f"{p}.h5")
        fast = generate_process(p, FAST_FACTOR * len(ref), SEED)
        out[p] = compare(fast, ref)
    return out


def test_reference_is_committed_and_small():
    meta = json.loads((REF / "reference.json").read_text())
    assert set(meta["processes"]) == set(PROCESSES)
    total = sum(f.stat().st_size for f in REF.glob("*.h5"))
    assert total < 10e6
    for p, r in meta["processes"].items():
        assert len(read_events(REF / r["file"])) == r["events"] >= 300, p


@pytest.mark.parametrize("process", PROCESSES)
def test_occupancy(results, process):
    occ = results[process]["occupancy"]
    tol = {s: OCC_TOL[s.rstrip("0123456789")] for s in occ}
    if process == "QCD":
        tol["mu2"] = OCC_TOL_QCD_MU2
    bad = {s: round(o["diff"], 3) for s, o in occ.items() if abs(o["diff"]) >= tol[s]}
    assert not bad, f"{process}: occupancy differs beyond {OCC_TOL}: {bad}\n{format_table(results[process])}"


@pytest.mark.parametrize("process", PROCESSES)
def test_feature_distributions(results, process):
    f = results[process]["features"]
    problems = []
    if f["lead lepton pT"]["ks"] >= KS_LEAD_LEPTON:
        problems.append(("lead lepton pT", "ks", f["lead lepton pT"]["ks"]))
    for name in (
        "e1 eta",
        "mu1 eta",
        "e phi",
        "mu phi",
        "jet phi",
        "MET phi" if "MET phi" in f else "e1 phi",
    ):
        if f[name]["n_b"] >= 100 and f[name]["ks"] >= KS_ANGLE:
            problems.append((name, "ks", f[name]["ks"]))
    for name in ("MET", "HT", "jet pT", "e1 pT", "mu1 pT", "jet1 pT"):
        if f[name]["n_b"] >= 100 and f[name]["w1_rel"] >= W1_REL:
            problems.append((name, "w1_rel", f[name]["w1_rel"]))
    assert not problems, f"{process}: {problems}\n{format_table(results[process])}"


def test_mass_peaks(results):
    z = results["Z"]["masses"]["m_ll"]
    assert abs(z["a"]["peak"] - 91.2) < 5 and abs(z["b"]["peak"] - 91.2) < 5, z
    mt = results["W"]["masses"]["mT"]
    assert abs(mt["a"]["median"] - mt["b"]["median"]) < 10, mt
    m4 = results["Ato4l"]["masses"]["m_4l"]
    assert m4["a"]["median"] < 60 and m4["b"]["median"] < 60, m4


def test_distances_match_scipy():
    from scipy import stats

    rng = np.random.default_rng(0)
    a, b = rng.normal(0, 1, 3000), rng.normal(0.2, 1.3, 2000)
    assert ks_distance(a, b) == pytest.approx(stats.ks_2samp(a, b).statistic, abs=1e-12)
    assert wasserstein(a, b) == pytest.approx(stats.wasserstein_distance(a, b), rel=1e-9)
    assert ks_distance(a, a) == 0 and wasserstein(a, a) == 0
    assert np.isnan(ks_distance(a, np.zeros(0)))


def test_compare_cli_prints_json_and_plot(tmp_path, capsys):
    from l1ad.cli.main import main

    a, b = REF / "W.h5", REF / "Z.h5"
    assert main(["data", "compare", str(a), str(b), "--json", "--plot", str(tmp_path / "c.png")]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["occupancy"]["met"]["a"] == 1.0 and "lead lepton pT" in res["features"]
    assert (tmp_path / "c.png").stat().st_size > 10_000
    assert main(["data", "compare", str(a), str(b)]) == 0
    out = capsys.readouterr().out
    assert "occupancy" in out and "m_ll" in out
    assert schema.N_OBJECTS == len(res["occupancy"])


#: Lepton (e/gamma + muon) multiplicity of the background mixture: P(n_lep >= k) of the fast generator
#: within LEP_MIX_TOL[k] relative of the Pythia sample (plus 3 sigma). Measured (fast 10x the Pythia
#: events, seed 11; tuning / independent Pythia sample, both MPI on): P(>= 2) 0.328 / 0.325 vs
#: 0.311 / 0.295, P(>= 3) 0.056 / 0.055 vs 0.055 / 0.049. Before the calorimeter and pileup-fake
#: modelling the fast generator overshot P(>= 3) by 1.35-1.5x and this tolerance was 60%.
LEP_MIX_TOL = {2: 0.15, 3: 0.25}


@functools.cache
def _fast(process: str, n: int) -> np.ndarray:
    """The fast sample of one process, generated once per size for the parametrized tests."""
    return generate_process(process, n, SEED)


def _mix_fraction(samples: dict[str, np.ndarray], k: int) -> tuple[float, float]:
    """P(n_lep >= k) of the ADC2021 mixture (weighted per process) and its binomial error."""
    from l1ad.events.generator import BACKGROUND_FRACTIONS, BACKGROUND_PROCESSES
    from l1ad.events.twosample import multiplicities

    f = var = 0.0
    for p, w in zip(BACKGROUND_PROCESSES, BACKGROUND_FRACTIONS, strict=True):
        q = float(np.mean(multiplicities(samples[p])["lep"] >= k))
        f += w * q
        var += w * w * q * (1 - q) / len(samples[p])
    return f, float(np.sqrt(var))


#: The independent sample (seed 4099, never used while tuning; scripts/make_pythia_reference.py --set validation).
VALIDATION = Path(__file__).parent / "data" / "pythia_validation"


@pytest.mark.parametrize("ref_dir", [REF, VALIDATION], ids=["reference", "validation"])
@pytest.mark.parametrize("k", [2, 3])
def test_background_lepton_multiplicity(ref_dir, k):
    from l1ad.events.generator import BACKGROUND_PROCESSES

    ref = {p: read_events(ref_dir / f"{p}.h5") for p in BACKGROUND_PROCESSES}
    fast = {p: _fast(p, FAST_FACTOR * len(ref[p])) for p in BACKGROUND_PROCESSES}
    (fa, ea), (fb, eb) = _mix_fraction(fast, k), _mix_fraction(ref, k)
    assert fb > 0.01
    assert abs(fa - fb) < LEP_MIX_TOL[k] * fb + 3 * np.hypot(ea, eb), (k, fa, ea, fb, eb)
