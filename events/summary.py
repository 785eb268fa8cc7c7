"""Summaries of L1 event files: counts, per-object occupancy, feature ranges, key distributions.

Statistics accumulate chunk by chunk (:class:`SummaryAccumulator`), so a multi-million-event file is
summarized with flat memory.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from l1ad.events import schema
from l1ad.events.io import DEFAULT_CHUNK, iter_chunks
from l1ad.events.validate import RULES, find_problems

log = logging.getLogger(__name__)


class SummaryAccumulator:
    """Streaming counts, occupancy and min/max/mean of pT, eta, phi per object type."""

    def __init__(self) -> None:
        self.n = 0
        self.occupancy = np.zeros(schema.N_OBJECTS, dtype=np.int64)
        self.multiplicity = {t.name: np.zeros(t.n_slots + 1, dtype=np.int64) for t in schema.OBJECT_TYPES}
        self.sums = np.zeros((len(schema.OBJECT_TYPES), 3))
        self.mins = np.full((len(schema.OBJECT_TYPES), 3), np.inf)
        self.maxs = np.full((len(schema.OBJECT_TYPES), 3), -np.inf)
        self.counts = np.zeros(len(schema.OBJECT_TYPES), dtype=np.int64)
        self.invalid = dict.fromkeys(RULES, 0)

    def add(self, particles: np.ndarray) -> None:
        self.n += len(particles)
        present = schema.present(particles)
        self.occupancy += present.sum(axis=0)
        for j, t in enumerate(schema.OBJECT_TYPES):
            mult = present[:, t.slots].sum(axis=1)
            self.multiplicity[t.name] += np.bincount(mult, minlength=t.n_slots + 1)
            vals = particles[:, t.slots, :3][present[:, t.slots]].astype(np.float64)
            if len(vals):
                self.sums[j] += vals.sum(axis=0)
                self.mins[j] = np.minimum(self.mins[j], vals.min(axis=0))
                self.maxs[j] = np.maximum(self.maxs[j], vals.max(axis=0))
                self.counts[j] += len(vals)
        for rule, mask in find_problems(particles).items():
            self.invalid[rule] += int(mask.sum())

    def result(self) -> dict:
        names = schema.slot_names()
        types = {}
        for j, t in enumerate(schema.OBJECT_TYPES):
            c = self.counts[j]
            types[t.name] = {
                "label": t.label,
                "objects": int(c),
                "mean_multiplicity": float(c / self.n) if self.n else 0.0,
                "multiplicity_histogram": [int(v) for v in self.multiplicity[t.name]],
                **{
                    k: {
                        "min": float(self.mins[j, q]) if c else None,
                        "max": float(self.maxs[j, q]) if c else None,
                        "mean": float(self.sums[j, q] / c) if c else None,
                    }
                    for q, k in enumerate(schema.KINEMATIC_NAMES)
                },
            }
        return {
            "n_events": int(self.n),
            "occupancy": {
                names[s]: float(self.occupancy[s] / self.n) if self.n else 0.0
                for s in range(schema.N_OBJECTS)
            },
            "objects": types,
            "invalid_rows_by_rule": self.invalid,
            "valid": not any(self.invalid.values()),
        }


def summarize_file(path: str | Path, chunk_size: int = DEFAULT_CHUNK) -> dict:
    """Summary of one file; invalid rows are counted per rule instead of raising."""
    acc = SummaryAccumulator()
    for _, block in iter_chunks(path, chunk_size, check=False):
        acc.add(block)
    out = acc.result()
    out["file"] = str(path)
    return out


def format_summary(s: dict) -> str:
    """Human-readable text of :func:`summarize_file`'s result."""
    lines = [f"{s.get('file', '<array>')}: {s['n_events']} events, {'valid' if s['valid'] else 'INVALID'}"]
    lines.append(
        f"{'type':8s} {'objects':>10s} {'<mult>':>7s}  {'pT min..max (mean)':>28s}  {'eta min..max':>14s}  {'phi min..max':>14s}"
    )
    for name, t in s["objects"].items():
        if t["objects"] == 0:
            lines.append(f"{name:8s} {0:10d} {0.0:7.2f}  (none)")
            continue
        pt, eta, phi = t["pT"], t["eta"], t["phi"]
        lines.append(
            f"{name:8s} {t['objects']:10d} {t['mean_multiplicity']:7.2f}  "
            f"{pt['min']:8.2f}..{pt['max']:8.2f} ({pt['mean']:7.2f})  "
            f"{eta['min']:6.2f}..{eta['max']:6.2f}  {phi['min']:6.2f}..{phi['max']:6.2f}"
        )
    occ = s["occupancy"]
    lines.append("occupancy per slot: " + " ".join(f"{k}={v:.3f}" for k, v in occ.items()))
    bad = {k: v for k, v in s["invalid_rows_by_rule"].items() if v}
    if bad:
        lines.append("invalid rows by rule: " + ", ".join(f"{k}={v}" for k, v in bad.items()))
    return "\n".join(lines)


def physics_quantities(particles: np.ndarray) -> dict[str, np.ndarray]:
    """Per-event quantities physicists look at first: MET, HT, leading lepton pT, multiplicities."""
    present = schema.present(particles)
    return {
        "MET [GeV]": schema.met(particles),
        "HT [GeV]": schema.ht(particles),
        "leading lepton pT [GeV]": schema.leading_lepton_pt(particles),
        "n leptons": present[:, schema.LEPTON_SLOTS].sum(axis=1),
        "n jets": present[:, schema.JET.slots].sum(axis=1),
    }


def plot_distributions(samples: dict[str, np.ndarray], path: str | Path) -> Path:
    """One panel per physics quantity, one normalized histogram per sample; saved atomically."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from l1ad.core.files import save_figure

    quantities = {name: physics_quantities(p) for name, p in samples.items()}
    keys = list(next(iter(quantities.values())))
    fig, axes = plt.subplots(1, len(keys), figsize=(4 * len(keys), 3.5))
    for ax, key in zip(axes, keys, strict=True):
        integer = key.startswith("n ")
        hi = max(float(np.percentile(q[key], 99.9)) for q in quantities.values())
        bins = np.arange(-0.5, hi + 1.5) if integer else np.linspace(0, max(hi, 1.0), 60)
        for name, q in quantities.items():
            ax.hist(q[key], bins=bins, histtype="step", density=True, label=name)
        ax.set_xlabel(key)
        ax.set_yscale("log")
    axes[0].set_ylabel("normalized events")
    axes[-1].legend(fontsize=7)
    fig.tight_layout()
    return save_figure(fig, path, dpi=90)
