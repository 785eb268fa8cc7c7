"""Input encodings: the hardware (fixed-point) representation of L1 objects, and a float one.

Hardware encoding (used by every L1 model, by hls4ml conversion and by emulation)
---------------------------------------------------------------------------------
Each kinematic quantity arrives in the trigger as an integer on an L1 scale:

=====  ===================  =========================  =====================================
qty    LSB                  hardware integer            network input (after the shift)
=====  ===================  =========================  =====================================
pT     0.5 GeV              unsigned 12 bit, SAT        ``pT_hw >> 7``: 1.0 = 64 GeV, ufixed<12,5>
eta    0.087/2 = 0.0435     signed 8 bit, SAT           ``eta_hw >> 5``: 1.0 = 1.392, fixed<8,3>
phi    2*pi/144 = 0.04363   signed 8 bit, SAT           ``phi_hw >> 5``: 1.0 = 1.396, fixed<8,3>
=====  ===================  =========================  =====================================

The normalization is an offset (zero here: eta and phi are centred, pT starts at 0) and a right
shift, which in firmware is only a move of the binary point: the network input *is* the hardware
integer reinterpreted with ``shift`` fractional bits. No multiplier is needed and the firmware input
type (:data:`INPUT_TYPES`) is exactly the type the model's input quantizer uses in training.
Values beyond the range saturate (pT above 2047.5 GeV reads as 2047.5 GeV).

Float encoding (full-precision PyTorch models)
----------------------------------------------
:class:`Standardizer`: per-input mean/std over *live* inputs of a background sample, in one of the
representations of :mod:`l1ad.events.representations`; inputs that are not live stay exactly 0 so
models can mask them.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from l1ad.core.fixed_point import FixedPoint
from l1ad.events import representations, schema
from l1ad.events.representations import Representation


@dataclass(frozen=True)
class FeatureScale:
    """Hardware scale of one kinematic quantity: ``hw = sat(round(x / lsb))``, input = hw >> shift."""

    name: str
    lsb: float
    hw: FixedPoint  # the hardware integer type (f = 0)
    shift: int

    @property
    def input_type(self) -> FixedPoint:
        """The network input type: the hardware integer with ``shift`` fractional bits."""
        return FixedPoint(k=self.hw.k, i=self.hw.i - self.shift, f=self.shift, overflow="SAT", rounding="RND")

    @property
    def unit(self) -> float:
        """Physical value of 1.0 at the network input."""
        return self.lsb * 2**self.shift


PT_SCALE = FeatureScale("pT", 0.5, FixedPoint(k=0, i=12, f=0, overflow="SAT", rounding="RND"), shift=7)
ETA_SCALE = FeatureScale("eta", 0.087 / 2, FixedPoint(k=1, i=7, f=0, overflow="SAT", rounding="RND"), shift=5)
PHI_SCALE = FeatureScale(
    "phi", 2 * math.pi / 144, FixedPoint(k=1, i=7, f=0, overflow="SAT", rounding="RND"), shift=5
)
SCALES = (PT_SCALE, ETA_SCALE, PHI_SCALE)

#: Input type of each of the 57 model inputs (slot-major, [pT, eta, phi] per slot).
INPUT_TYPES: tuple[FixedPoint, ...] = tuple(s.input_type for _ in range(schema.N_OBJECTS) for s in SCALES)

#: The one type that holds every input type exactly (fixed<13,6>, SAT, RND): the common input grid of
#: styles with one input quantizer for all 57 inputs, and the reconstruction grid of the autoencoders.
INPUT_COMMON_TYPE = FixedPoint(
    k=max(t.k for t in INPUT_TYPES),
    i=max(t.i for t in INPUT_TYPES),
    f=max(t.f for t in INPUT_TYPES),
    overflow="SAT",
    rounding="RND",
)


def encode_hw(particles: np.ndarray) -> np.ndarray:
    """(N, 19, 4) particles -> (N, 57) int64 hardware integers on the L1 scales (saturated)."""
    out = np.empty((len(particles), schema.N_OBJECTS, 3), dtype=np.int64)
    for j, scale in enumerate(SCALES):
        out[:, :, j] = scale.hw.to_int(np.asarray(particles[:, :, j], dtype=np.float64) / scale.lsb)
    return out.reshape(len(particles), schema.N_INPUTS)


def encode(particles: np.ndarray) -> np.ndarray:
    """(N, 19, 4) particles -> (N, 57) float32 network inputs, exactly on the input grid.

    float32 holds every value exactly (at most 12 significant bits), so Keras, hls4ml and the
    emulator see identical numbers.
    """
    hw = encode_hw(particles).reshape(len(particles), schema.N_OBJECTS, 3)
    out = np.empty(hw.shape, dtype=np.float32)
    for j, scale in enumerate(SCALES):
        out[:, :, j] = hw[:, :, j] * 2.0**-scale.shift
    return out.reshape(len(particles), schema.N_INPUTS)


def decode(x: np.ndarray) -> np.ndarray:
    """(N, 57) network inputs -> (N, 19, 3) physical [pT, eta, phi] (GeV, rad)."""
    x = np.asarray(x, dtype=np.float64).reshape(len(x), schema.N_OBJECTS, 3)
    return x * np.array([s.unit for s in SCALES])


def describe() -> dict:
    """JSON-serializable description of the hardware encoding (for metadata files)."""
    return {
        s.name: {"lsb": s.lsb, "hw_type": s.hw.hls(), "shift": s.shift, "input_type": s.input_type.hls()}
        for s in SCALES
    }


@dataclass(frozen=True)
class Standardizer:
    """Float standardization of a model's inputs over live entries; entries not live map to exactly 0.

    ``representation`` names how the event is written (:mod:`l1ad.events.representations`; ``l1``:
    the 57 kinematics).
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]
    representation: str = "l1"

    @property
    def rep(self) -> Representation:
        return representations.get(self.representation)

    @classmethod
    def fit(cls, particles: np.ndarray, representation: str = "l1") -> Standardizer:
        rep = representations.get(representation)
        x, mask = rep.values_and_mask(particles)
        count = np.maximum(mask.sum(axis=0), 1)
        mean = np.where(mask, x, 0.0).sum(axis=0) / count
        var = np.where(mask, (x - mean) ** 2, 0.0).sum(axis=0) / count
        std = np.sqrt(var)
        std = np.where(std > 1e-6, std, 1.0)
        return cls(tuple(float(v) for v in mean), tuple(float(v) for v in std), rep.name)

    def mask(self, particles: np.ndarray) -> np.ndarray:
        """(N, n_inputs) boolean live mask of the representation."""
        return self.rep.mask(particles)

    def transform(self, particles: np.ndarray) -> np.ndarray:
        """(N, 19, 4) -> (N, n_inputs) float32 standardized inputs, zero where not live."""
        return self.transform_with_mask(particles)[0]

    def transform_with_mask(self, particles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`transform` and :meth:`mask` of the same events, the mask computed once."""
        x, mask = self.rep.values_and_mask(particles)
        z = (x - np.asarray(self.mean)) / np.asarray(self.std)
        return np.where(mask, z, 0.0).astype(np.float32), mask

    def save(self, path: str | Path) -> None:
        from l1ad.core.files import atomic_write_text

        d: dict = {"mean": self.mean, "std": self.std}
        if self.representation != "l1":  # l1 files stay as they were written before the option existed
            d["representation"] = self.representation
        atomic_write_text(Path(path), json.dumps(d, indent=1))

    @classmethod
    def load(cls, path: str | Path) -> Standardizer:
        d = json.loads(Path(path).read_text())
        unknown = set(d) - {"mean", "std", "representation"}
        rep = representations.get(d.get("representation"))
        n = rep.n_inputs
        if unknown or len(d.get("mean", ())) != n or len(d.get("std", ())) != n:
            raise ValueError(
                f"{path}: not a standardizer file (need {n} 'mean' and 'std' values for representation "
                f"{rep.name!r}{'; unknown keys ' + ', '.join(sorted(unknown)) if unknown else ''})"
            )
        return cls(tuple(d["mean"]), tuple(d["std"]), rep.name)
