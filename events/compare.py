"""Compare two L1 event samples: occupancy, per-feature distances, MET/HT/lepton pT and mass peaks.

Pure functions on ``(N, 19, 4)`` arrays, plus :func:`compare_files` (read two files) and
:func:`plot_comparison` (overlay PNG). Distances between the 1-D distributions of sample A and B:

* ``ks``: the two-sample Kolmogorov-Smirnov distance ``max |F_A - F_B|`` (0 = same, 1 = disjoint);
* ``w1``: the 1-D Wasserstein (earth mover's) distance in the feature's unit, and ``w1_rel`` =
  ``w1 / std(B)`` (scale-free; B is the reference).

Features are taken over *present* objects only: per object type (all e/gamma, muons, jets) and for the
leading object of each type; multiplicities per type; event-level MET, HT and leading-lepton pT.
Masses (massless objects): the two leading leptons ``m_ll`` (same-flavour pair of the leading lepton's
type), ``mT`` of the leading lepton and MET, and ``m_4l`` of four leptons; a peak is the mode of a
histogram (2 GeV bins) with its median.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from . import schema
from .twosample import multiplicities

logger = logging.getLogger(__name__)

TYPES = (schema.EGAMMA, schema.MUON, schema.JET)
MASS_RANGES = {"m_ll": (50.0, 150.0), "mT": (0.0, 150.0), "m_4l": (20.0, 150.0)}


def ks_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov distance ``sup |F_a - F_b|`` (nan if a sample is empty)."""
    a, b = np.sort(np.asarray(a, np.float64)), np.sort(np.asarray(b, np.float64))
    if len(a) == 0 or len(b) == 0:
        return float("nan")
    x = np.concatenate([a, b])
    fa = np.searchsorted(a, x, side="right") / len(a)
    fb = np.searchsorted(b, x, side="right") / len(b)
    return float(np.max(np.abs(fa - fb)))


def wasserstein(a: np.ndarray, b: np.ndarray) -> float:
    """1-D Wasserstein distance ``integral |F_a - F_b| dx`` (nan if a sample is empty)."""
    a, b = np.sort(np.asarray(a, np.float64)), np.sort(np.asarray(b, np.float64))
    if len(a) == 0 or len(b) == 0:
        return float("nan")
    x = np.sort(np.concatenate([a, b]))
    fa = np.searchsorted(a, x[:-1], side="right") / len(a)
    fb = np.searchsorted(b, x[:-1], side="right") / len(b)
    return float(np.sum(np.abs(fa - fb) * np.diff(x)))


def occupancy(particles: np.ndarray) -> dict[str, float]:
    """Fraction of events with each slot filled."""
    occ = schema.present(particles).mean(axis=0) if len(particles) else np.zeros(schema.N_OBJECTS)
    return {name: float(v) for name, v in zip(schema.slot_names(), occ, strict=True)}


def _lepton(particles: np.ndarray, t: schema.ObjectType, i: int) -> np.ndarray:
    return particles[:, t.first_slot + i, :3]


def _m_massless(objs: list[np.ndarray]) -> np.ndarray:
    """Invariant mass of massless objects given as (N, 3) ``[pT, eta, phi]`` arrays."""
    e = px = py = pz = 0.0
    for o in objs:
        pt, eta, phi = o[:, 0].astype(np.float64), o[:, 1].astype(np.float64), o[:, 2].astype(np.float64)
        e, px, py, pz = (
            e + pt * np.cosh(eta),
            px + pt * np.cos(phi),
            py + pt * np.sin(phi),
            pz + pt * np.sinh(eta),
        )
    return np.sqrt(np.maximum(e * e - px * px - py * py - pz * pz, 0.0))


def masses(particles: np.ndarray) -> dict[str, np.ndarray]:
    """Per-event masses where defined: ``m_ll`` (leading same-flavour pair), ``mT``, ``m_4l``."""
    p = particles
    pres = schema.present(p)
    out: dict[str, np.ndarray] = {}
    e_pt, mu_pt = p[:, schema.EGAMMA.first_slot, 0], p[:, schema.MUON.first_slot, 0]
    ee = pres[:, schema.EGAMMA.first_slot + 1] & (e_pt >= mu_pt)
    mm = pres[:, schema.MUON.first_slot + 1] & (mu_pt > e_pt)
    m_ee = _m_massless([_lepton(p, schema.EGAMMA, 0), _lepton(p, schema.EGAMMA, 1)])
    m_mm = _m_massless([_lepton(p, schema.MUON, 0), _lepton(p, schema.MUON, 1)])
    out["m_ll"] = np.concatenate([m_ee[ee], m_mm[mm]])
    lead = np.where((e_pt >= mu_pt)[:, None], _lepton(p, schema.EGAMMA, 0), _lepton(p, schema.MUON, 0))
    met, met_phi = p[:, schema.MET.first_slot, 0], p[:, schema.MET.first_slot, 2]
    out["mT"] = np.sqrt(np.maximum(2 * lead[:, 0] * met * (1 - np.cos(lead[:, 2] - met_phi)), 0.0))
    lep = p[:, schema.LEPTON_SLOTS, :3]
    lep_on = pres[:, schema.LEPTON_SLOTS]
    four = lep_on.sum(axis=1) >= 4
    if four.any():
        order = np.argsort(-lep[four, :, 0], axis=1)[:, :4]
        top = np.take_along_axis(lep[four], order[:, :, None], axis=1)
        out["m_4l"] = _m_massless([top[:, i] for i in range(4)])
    else:
        out["m_4l"] = np.zeros(0)
    return out


def mass_peak(m: np.ndarray, lo: float, hi: float, bin_width: float = 2.0) -> dict[str, float]:
    """Mode (histogram, ``bin_width`` GeV) and median of ``m`` in ``[lo, hi]``, and the count there."""
    m = m[(m >= lo) & (m <= hi)]
    if len(m) == 0:
        return {"peak": float("nan"), "median": float("nan"), "n": 0}
    h, edges = np.histogram(m, bins=np.arange(lo, hi + bin_width, bin_width))
    k = int(np.argmax(h))
    return {"peak": float(0.5 * (edges[k] + edges[k + 1])), "median": float(np.median(m)), "n": int(len(m))}


def features(particles: np.ndarray) -> dict[str, np.ndarray]:
    """1-D samples per feature, over present objects only (see the module docstring)."""
    p = particles
    pres = schema.present(p)
    out: dict[str, np.ndarray] = {
        "MET": schema.met(p),
        "HT": schema.ht(p),
        "lead lepton pT": schema.leading_lepton_pt(p),
    }
    counts = multiplicities(p)
    for t in TYPES:
        on = pres[:, t.slots]
        out[f"n {t.name}"] = counts[t.name].astype(np.float64)
        for j, k in enumerate(schema.KINEMATIC_NAMES):
            out[f"{t.name} {k}"] = p[:, t.slots, j][on]
            out[f"{t.name}1 {k}"] = p[:, t.first_slot, j][on[:, 0]]
    return out


def compare(a: np.ndarray, b: np.ndarray) -> dict:
    """The full comparison of sample ``a`` against reference ``b`` (JSON-serializable)."""
    oa, ob = occupancy(a), occupancy(b)
    fa, fb = features(a), features(b)
    dist = {}
    for name in fa:
        sb = float(np.std(fb[name])) if len(fb[name]) else float("nan")
        w1 = wasserstein(fa[name], fb[name])
        dist[name] = {
            "ks": ks_distance(fa[name], fb[name]),
            "w1": w1,
            "w1_rel": float(w1 / sb) if np.isfinite(sb) and sb > 0 else float("nan"),
            "n_a": int(len(fa[name])),
            "n_b": int(len(fb[name])),
            "mean_a": float(np.mean(fa[name])) if len(fa[name]) else float("nan"),
            "mean_b": float(np.mean(fb[name])) if len(fb[name]) else float("nan"),
        }
    ma, mb = masses(a), masses(b)
    mass = {k: {"a": mass_peak(ma[k], *MASS_RANGES[k]), "b": mass_peak(mb[k], *MASS_RANGES[k])} for k in ma}
    return {
        "n_a": int(len(a)),
        "n_b": int(len(b)),
        "occupancy": {s: {"a": oa[s], "b": ob[s], "diff": float(oa[s] - ob[s])} for s in oa},
        "features": dist,
        "masses": mass,
    }


def format_table(result: dict, name_a: str = "A", name_b: str = "B") -> str:
    """Human-readable tables of :func:`compare`'s result."""
    lines = [f"{name_a}: {result['n_a']} events   {name_b}: {result['n_b']} events", "", "occupancy"]
    lines.append(f"  {'slot':<8}{name_a[:10]:>11}{name_b[:10]:>11}{'diff':>9}")
    for s, o in result["occupancy"].items():
        lines.append(f"  {s:<8}{o['a']:>11.3f}{o['b']:>11.3f}{o['diff']:>+9.3f}")
    lines += [
        "",
        f"  {'feature':<16}{'KS':>7}{'W1':>9}{'W1/std':>8}{'mean A':>9}{'mean B':>9}{'n A':>8}{'n B':>8}",
    ]
    for k, d in result["features"].items():
        lines.append(
            f"  {k:<16}{d['ks']:>7.3f}{d['w1']:>9.3f}{d['w1_rel']:>8.3f}{d['mean_a']:>9.2f}{d['mean_b']:>9.2f}"
            f"{d['n_a']:>8}{d['n_b']:>8}"
        )
    lines += [
        "",
        f"  {'mass':<8}{'peak A':>8}{'peak B':>8}{'median A':>10}{'median B':>10}{'n A':>8}{'n B':>8}",
    ]
    for k, m in result["masses"].items():
        a, b = m["a"], m["b"]
        lines.append(
            f"  {k:<8}{a['peak']:>8.1f}{b['peak']:>8.1f}{a['median']:>10.1f}{b['median']:>10.1f}{a['n']:>8}{b['n']:>8}"
        )
    return "\n".join(lines)


def compare_files(path_a: str | Path, path_b: str | Path, max_events: int | None = 200_000) -> dict:
    """:func:`compare` of the first ``max_events`` events of two ADC2021-layout files."""
    from .io import read_events

    return compare(read_events(path_a, stop=max_events), read_events(path_b, stop=max_events))


_PLOT_FEATURES = (
    "MET", "HT", "lead lepton pT", "n e", "n mu", "n jet",
    "e1 pT", "mu1 pT", "jet1 pT", "e eta", "mu eta", "jet eta",
)  # fmt: skip


def plot_comparison(
    a: np.ndarray, b: np.ndarray, path: str | Path, labels: tuple[str, str] = ("A", "B")
) -> Path:
    """Overlay histograms (occupancy, features, masses) of two samples into a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fa, fb, ma, mb = features(a), features(b), masses(a), masses(b)
    panels = [*_PLOT_FEATURES, *MASS_RANGES]
    fig, axes = plt.subplots(4, 4, figsize=(16, 13))
    ax = axes.flat[0]
    x = np.arange(schema.N_OBJECTS)
    ax.step(x, list(occupancy(a).values()), where="mid", label=labels[0])
    ax.step(x, list(occupancy(b).values()), where="mid", label=labels[1], ls="--")
    ax.set_xticks(x, schema.slot_names(), rotation=90, fontsize=6)
    ax.set_title("occupancy per slot")
    ax.legend()
    for ax, name in zip(axes.flat[1:], panels, strict=False):
        va, vb = (ma[name], mb[name]) if name in MASS_RANGES else (fa[name], fb[name])
        both = np.concatenate([va, vb])
        if name in MASS_RANGES:
            rng = MASS_RANGES[name]
        elif len(both):
            rng = (float(np.min(both)), float(np.quantile(both, 0.99)) + 1e-6)
        else:
            rng = (0.0, 1.0)
        bins = np.arange(rng[0] - 0.5, rng[1] + 1.5) if name.startswith("n ") else np.linspace(*rng, 41)
        for v, lab, ls in ((va, labels[0], "-"), (vb, labels[1], "--")):
            if len(v):
                ax.hist(v, bins=bins, histtype="step", density=True, label=lab, ls=ls)
        ax.set_title(name)
    for ax in axes.flat[1 + len(panels) :]:
        ax.axis("off")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=80)
    plt.close(fig)
    return path
