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
overflow (``AP_<mode>`` in C++)
    ``WRAP`` (two's-complement wrap-around), ``SAT`` (clip to ``[min, max]``) or ``SAT_SYM`` (clip to
    ``[-k * max, max]``: a signed type loses its most negative value).
rounding (``AP_<mode>`` in C++), on ``v = x * 2**f``
    ``TRN`` floor (towards minus infinity), ``TRN_ZERO`` towards zero, ``RND`` half up (towards plus
    infinity), ``RND_ZERO`` half towards zero, ``RND_INF`` half away from zero, ``RND_MIN_INF`` half
    down (towards minus infinity), ``RND_CONV`` half to even (convergent).

Rounding happens before overflow. The semantics are exactly those of HGQ2's ``quantizers`` package
(``quantizers.get_fixed_quantizer_np``) and of the ``ap_fixed`` C++ types; ``ap_int<N>``/``ap_uint<N>``
are ``f = 0`` types with the C++ integer conversion: ``TRN_ZERO`` and ``WRAP``.

QKeras's ``quantized_bits(bits, integer, keep_negative)`` excludes the sign bit from ``integer``:
it is ``k = keep_negative, i = integer, f = bits - integer - keep_negative``. The conversion lives in
:meth:`FixedPoint.from_qkeras` and nowhere else.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

import numpy as np

OVERFLOW_MODES = ("WRAP", "SAT", "SAT_SYM")
ROUNDING_MODES = ("TRN", "RND", "RND_CONV", "TRN_ZERO", "RND_ZERO", "RND_INF", "RND_MIN_INF")


def _round(v: np.ndarray, mode: str) -> np.ndarray:
    """``v`` (float64, the value in LSB units) rounded to an integer-valued float with ``mode``."""
    if mode == "TRN":
        return np.floor(v)
    if mode == "RND":
        return np.floor(v + 0.5)
    if mode == "RND_CONV":
        return np.round(v)  # numpy rounds half to even
    if mode == "TRN_ZERO":
        return np.trunc(v)
    if mode == "RND_ZERO":
        return np.where(v >= 0, np.ceil(v - 0.5), np.floor(v + 0.5))
    if mode == "RND_INF":
        return np.where(v >= 0, np.floor(v + 0.5), np.ceil(v - 0.5))
    if mode == "RND_MIN_INF":
        return np.ceil(v - 0.5)
    raise ValueError(f"rounding must be one of {ROUNDING_MODES}, got {mode!r}")


_AP_INT = re.compile(r"\s*ap_(u?)int\s*<\s*(\d+)\s*>\s*")
_AP_FIXED = re.compile(r"\s*ap_(u?)fixed\s*<\s*(-?\d+)\s*,\s*(-?\d+)\s*((?:,[^,<>]*)*)>\s*")


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
        n = _round(np.asarray(x, dtype=np.float64) * 2.0**self.f, self.rounding)
        if self.overflow == "SAT":
            n = np.clip(n, self.int_min, self.int_max)
        elif self.overflow == "SAT_SYM":
            n = np.clip(n, -self.k * self.int_max, self.int_max)
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
        if self.rounding == "TRN" and self.overflow == "WRAP":
            return f"{base}<{self.width},{self.integer}>"
        return f"{base}<{self.width},{self.integer},AP_{self.rounding},AP_{self.overflow}>"

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
        """Parse a C++ type: ``ap_[u]fixed<W,I[,Q[,O[,N]]]>`` or ``ap_[u]int<W>``; ValueError otherwise.

        ``Q``/``O`` are ``AP_<rounding>``/``AP_<overflow>`` of this module's modes; the saturation-bit
        count ``N`` must be 0 (the only value FixedPoint describes). ``ap_int<W>`` is
        ``(k=1, i=W-1, f=0)`` with ``TRN_ZERO``/``WRAP``, the C++ conversion of a value to an integer.
        """
        m = _AP_INT.fullmatch(text)
        if m:
            k, width = (0 if m.group(1) else 1), int(m.group(2))
            return cls(k=k, i=width - k, f=0, overflow="WRAP", rounding="TRN_ZERO")
        m = _AP_FIXED.fullmatch(text)
        if not m:
            raise ValueError(f"not an ap_fixed/ap_ufixed/ap_int/ap_uint type: {text!r}")
        k = 0 if m.group(1) else 1
        width, integer = int(m.group(2)), int(m.group(3))
        modes = [s.strip() for s in m.group(4).split(",")[1:]] if m.group(4) else []
        if len(modes) > 3 or any(not s for s in modes):
            raise ValueError(f"malformed template arguments in {text!r}")
        rounding, overflow = "TRN", "WRAP"
        if modes:
            rounding = modes[0].removeprefix("AP_")
            if not modes[0].startswith("AP_") or rounding not in ROUNDING_MODES:
                raise ValueError(f"unsupported rounding mode {modes[0]!r} in {text!r}")
        if len(modes) > 1:
            overflow = modes[1].removeprefix("AP_")
            if not modes[1].startswith("AP_") or overflow not in OVERFLOW_MODES:
                raise ValueError(f"unsupported overflow mode {modes[1]!r} in {text!r}")
        if len(modes) > 2 and modes[2] != "0":
            raise ValueError(f"saturation bits {modes[2]!r} in {text!r}: only 0 is supported")
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
