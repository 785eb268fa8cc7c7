"""The fixed-point vocabulary of l1ad, shared by training, conversion and emulation.

Glossary (the HGQ2 / hls4ml convention, used everywhere in this project):

``k``
    keep_negative: 1 for a signed type (it has a sign bit), 0 for unsigned.
``i``
    integer bits, *excluding* the sign bit.
``f``
    fractional bits; the LSB (quantization step) is ``2**-f``.
width
    ``k + i + f``. hls4ml's ``ap_fixed<W, I>`` has ``W = k + i + f`` and ``I = k + i``
    (its integer count includes the sign). Representable values: ``[-k * 2**i, 2**i - 2**-f]``.
overflow
    ``WRAP`` (two's-complement wrap-around, ``AP_WRAP``) or ``SAT`` (clip to the range, ``AP_SAT``).
rounding
    ``TRN`` (truncate towards minus infinity, ``AP_TRN``) or ``RND`` (round half up, ``AP_RND``).

QKeras's ``quantized_bits(bits, integer, keep_negative)`` excludes the sign bit from ``integer``:
it is ``k = keep_negative, i = integer, f = bits - integer - keep_negative``. The conversion lives in
:meth:`FixedPoint.from_qkeras` and nowhere else.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

import numpy as np

OVERFLOW_MODES = ("WRAP", "SAT")
ROUNDING_MODES = ("TRN", "RND")


@dataclass(frozen=True)
class FixedPoint:
    """A fixed-point type ``(k, i, f)`` with explicit overflow and rounding modes."""

    k: int
    i: int
    f: int
    overflow: str = "WRAP"
    rounding: str = "TRN"

    def __post_init__(self) -> None:
        if self.k not in (0, 1):
            raise ValueError(f"keep_negative k must be 0 or 1, got {self.k}")
        if self.width < 1:
            raise ValueError(f"fixed-point width k+i+f must be >= 1, got k={self.k} i={self.i} f={self.f}")
        if self.overflow not in OVERFLOW_MODES:
            raise ValueError(f"overflow must be one of {OVERFLOW_MODES}, got {self.overflow!r}")
        if self.rounding not in ROUNDING_MODES:
            raise ValueError(f"rounding must be one of {ROUNDING_MODES}, got {self.rounding!r}")

    # -- derived quantities -------------------------------------------------------------------
    @property
    def width(self) -> int:
        return self.k + self.i + self.f

    @property
    def integer(self) -> int:
        """hls4ml's ``I``: integer bits including the sign bit."""
        return self.k + self.i

    @property
    def lsb(self) -> float:
        return 2.0**-self.f

    @property
    def int_min(self) -> int:
        return -self.k * 2 ** (self.i + self.f)

    @property
    def int_max(self) -> int:
        return 2 ** (self.i + self.f) - 1

    @property
    def min(self) -> float:
        return self.int_min * self.lsb

    @property
    def max(self) -> float:
        return self.int_max * self.lsb

    # -- conversions ---------------------------------------------------------------------------
    def to_int(self, x: np.ndarray | float) -> np.ndarray:
        """Integer representation (``value / lsb``) of ``x`` after rounding and overflow."""
        v = np.asarray(x, dtype=np.float64) * 2.0**self.f
        n = np.floor(v + 0.5) if self.rounding == "RND" else np.floor(v)
        if self.overflow == "SAT":
            n = np.clip(n, self.int_min, self.int_max)
        else:
            span = 2.0**self.width
            n = np.mod(n - self.int_min, span) + self.int_min
        return n.astype(np.int64)

    def from_int(self, n: np.ndarray | int) -> np.ndarray:
        return np.asarray(n, dtype=np.int64).astype(np.float64) * self.lsb

    def quantize(self, x: np.ndarray | float) -> np.ndarray:
        """Round ``x`` onto this type's grid (float64 values that the type represents exactly)."""
        return self.from_int(self.to_int(x))

    def representable(self, x: np.ndarray) -> np.ndarray:
        """Boolean mask: ``x`` lies exactly on the grid and inside the range."""
        x = np.asarray(x, dtype=np.float64)
        scaled = x * 2.0**self.f
        return (scaled == np.floor(scaled)) & (x >= self.min) & (x <= self.max)

    # -- hls4ml / QKeras spelling ---------------------------------------------------------------
    def hls(self) -> str:
        """The ``ap_fixed``/``ap_ufixed`` spelling used by hls4ml configs and generated C++."""
        base = "ap_fixed" if self.k else "ap_ufixed"
        rnd = "AP_RND" if self.rounding == "RND" else "AP_TRN"
        sat = "AP_SAT" if self.overflow == "SAT" else "AP_WRAP"
        if rnd == "AP_TRN" and sat == "AP_WRAP":
            return f"{base}<{self.width},{self.integer}>"
        return f"{base}<{self.width},{self.integer},{rnd},{sat}>"

    @classmethod
    def from_qkeras(cls, bits: int, integer: int, keep_negative: bool = True, **modes: str) -> FixedPoint:
        """QKeras ``quantized_bits(bits, integer, keep_negative)``: ``integer`` excludes the sign."""
        k = int(bool(keep_negative))
        return cls(k=k, i=integer, f=bits - integer - k, **modes)

    def qkeras_args(self) -> dict:
        """Arguments of QKeras ``quantized_bits`` describing this type."""
        return {"bits": self.width, "integer": self.i, "keep_negative": bool(self.k)}

    @classmethod
    def parse(cls, text: str) -> FixedPoint:
        """Parse ``ap_fixed<W,I[,Q[,O]]>`` / ``ap_ufixed<...>``."""
        m = re.fullmatch(r"\s*(ap_u?fixed)\s*<\s*(-?\d+)\s*,\s*(-?\d+)\s*((?:,\s*\w+\s*)*)>\s*", text)
        if not m:
            raise ValueError(f"not an ap_fixed/ap_ufixed type: {text!r}")
        k = 0 if m.group(1) == "ap_ufixed" else 1
        width, integer = int(m.group(2)), int(m.group(3))
        modes = [s.strip() for s in m.group(4).split(",") if s.strip()]
        rounding = "RND" if modes and modes[0] == "AP_RND" else "TRN"
        if modes and modes[0] not in ("AP_RND", "AP_TRN"):
            raise ValueError(f"unsupported rounding mode {modes[0]!r} in {text!r} (use AP_RND or AP_TRN)")
        overflow = "SAT" if len(modes) > 1 and modes[1] == "AP_SAT" else "WRAP"
        if len(modes) > 1 and modes[1] not in ("AP_SAT", "AP_WRAP"):
            raise ValueError(f"unsupported overflow mode {modes[1]!r} in {text!r} (use AP_SAT or AP_WRAP)")
        return cls(k=k, i=integer - k, f=width - integer, overflow=overflow, rounding=rounding)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> FixedPoint:
        unknown = set(d) - {"k", "i", "f", "overflow", "rounding"}
        if unknown:
            raise ValueError(f"unknown fixed-point keys: {sorted(unknown)}")
        return cls(**d)

    def __str__(self) -> str:
        return self.hls()
