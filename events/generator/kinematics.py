"""Relativistic kinematics on structure-of-arrays four-vectors (one numpy array per component).

Every function acts on a whole batch at once: a :class:`P4` holds ``(E, px, py, pz)`` as four
float32 arrays of equal shape, so boosts and decays are a handful of elementwise numpy operations.

Physics building blocks used by the process generators:

* resonance production: the resonance four-momentum from its mass, a falling transverse-momentum
  spectrum ``f(pT) ~ pT (1 + pT^2/p0^2)^-a`` (peak at a few GeV, power-law tail ``pT^(1-2a)``) and a
  rapidity distribution with a central plateau and Gaussian shoulders, limited by ``ln(sqrt(s)/mT)``;
* line shapes: a (non-relativistic) Breit-Wigner sampled by inverting its CDF on a mass window;
* two-body decays: daughters generated in the parent rest frame (isotropic, V-A ``(1 +- cos)^2`` or
  vector ``1 + cos^2``, angles measured from the beam axis) and boosted to the lab frame.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

SQRT_S = 13000.0  # GeV, LHC Run 2
#: Working precision of the generator: float32 (the stored precision; numpy's float32 transcendentals
#: are several times faster than float64 ones). Python-float constants keep arrays in float32.
F32 = np.float32


def uniform(rng: np.random.Generator, n: int, lo: float = 0.0, hi: float = 1.0) -> np.ndarray:
    """float32 uniform numbers in ``[lo, hi)``."""
    u = rng.random(n, dtype=F32)
    return u if (lo, hi) == (0.0, 1.0) else F32(lo) + F32(hi - lo) * u


def normal(rng: np.random.Generator, n: int) -> np.ndarray:
    """float32 standard normal numbers."""
    return rng.standard_normal(n, dtype=F32)


class P4(NamedTuple):
    """A batch of four-momenta ``(E, px, py, pz)`` in GeV (each a float32 array)."""

    e: np.ndarray
    px: np.ndarray
    py: np.ndarray
    pz: np.ndarray

    def __add__(self, other: P4) -> P4:  # type: ignore[override]
        return P4(self.e + other.e, self.px + other.px, self.py + other.py, self.pz + other.pz)

    def scaled(self, factor: np.ndarray | float) -> P4:
        return P4(self.e * factor, self.px * factor, self.py * factor, self.pz * factor)

    @property
    def pt(self) -> np.ndarray:
        return np.hypot(self.px, self.py)

    @property
    def phi(self) -> np.ndarray:
        return np.arctan2(self.py, self.px)

    @property
    def eta(self) -> np.ndarray:
        """Pseudorapidity ``asinh(pz / pT)`` (finite for any pT > 0)."""
        return np.arcsinh(self.pz / np.maximum(self.pt, 1e-9))

    @property
    def mass(self) -> np.ndarray:
        m2 = self.e**2 - self.px**2 - self.py**2 - self.pz**2
        return np.sqrt(np.maximum(m2, 0.0))


def from_m_pt_y_phi(m: np.ndarray, pt: np.ndarray, y: np.ndarray, phi: np.ndarray) -> P4:
    """Four-momentum from mass, transverse momentum, rapidity and azimuth."""
    mt = np.sqrt(m * m + pt * pt)
    return P4(mt * np.cosh(y), pt * np.cos(phi), pt * np.sin(phi), mt * np.sinh(y))


def from_pt_eta_phi(pt: np.ndarray, eta: np.ndarray, phi: np.ndarray) -> P4:
    """Massless four-momentum from ``pT, eta, phi``."""
    pz = pt * np.sinh(eta)
    return P4(np.sqrt(pt * pt + pz * pz), pt * np.cos(phi), pt * np.sin(phi), pz)


def wrap_phi(phi: np.ndarray) -> np.ndarray:
    """Azimuth wrapped into ``[-pi, pi)``."""
    return np.mod(phi + np.pi, 2.0 * np.pi) - np.pi


def invariant_mass(pt: np.ndarray, eta: np.ndarray, phi: np.ndarray, axis: int = -1) -> np.ndarray:
    """Invariant mass of massless objects summed along ``axis`` (objects with pT = 0 contribute nothing)."""
    p = from_pt_eta_phi(pt, eta, phi)
    tot = P4(*(c.sum(axis=axis) for c in p))
    return tot.mass


def transverse_mass(pt1: np.ndarray, phi1: np.ndarray, pt2: np.ndarray, phi2: np.ndarray) -> np.ndarray:
    """``mT = sqrt(2 pT1 pT2 (1 - cos dphi))`` of two massless objects (e.g. lepton and MET)."""
    return np.sqrt(np.maximum(2.0 * pt1 * pt2 * (1.0 - np.cos(phi1 - phi2)), 0.0))


# --------------------------------------------------------------------------------------------- sampling
def breit_wigner(
    rng: np.random.Generator, n: int, mass: float, width: float, lo: float, hi: float
) -> np.ndarray:
    """Breit-Wigner (Cauchy) masses restricted to ``[lo, hi]`` by inverting the CDF."""
    half = 0.5 * width
    a, b = float(np.arctan((lo - mass) / half)), float(np.arctan((hi - mass) / half))
    return mass + half * np.tan(a + (b - a) * uniform(rng, n))


def falling_pt(rng: np.random.Generator, n: int, p0: float, power: float, pt_max: float) -> np.ndarray:
    """Resonance pT from ``f(pT) ~ pT (1 + pT^2/p0^2)^-power``, truncated at ``pt_max``.

    The CDF is ``1 - (1 + pT^2/p0^2)^(1-power)``; the mode is at ``p0 / sqrt(2 power - 1)`` and the tail
    falls as ``pT^(1 - 2 power)``.
    """
    c_max = 1.0 - (1.0 + (pt_max / p0) ** 2) ** (1.0 - power)
    u = uniform(rng, n) * c_max
    return p0 * np.sqrt((1.0 - u) ** (1.0 / (1.0 - power)) - 1.0)


def power_law(rng: np.random.Generator, n: int, pt_min: float, index: float, pt_max: float) -> np.ndarray:
    """``f(pT) ~ pT^-index`` on ``[pt_min, pt_max]`` (steeply falling jet spectra)."""
    k = 1.0 - index
    lo, hi = pt_min**k, pt_max**k
    return (lo + (hi - lo) * uniform(rng, n)) ** (1.0 / k)


def rapidity(
    rng: np.random.Generator, n: int, plateau: float, shoulder: float, mt: np.ndarray | float
) -> np.ndarray:
    """Rapidity: uniform plateau ``|y| < plateau`` convolved with a Gaussian of width ``shoulder``.

    Clipped to the kinematic limit ``|y| < ln(sqrt(s) / mT)``.
    """
    y = plateau * (2.0 * uniform(rng, n) - 1.0) + shoulder * normal(rng, n)
    y_max = np.log(SQRT_S / np.maximum(mt, 1.0)) if isinstance(mt, np.ndarray) else float(np.log(SQRT_S / mt))
    return np.clip(y, -y_max, y_max)


def resonance(
    rng: np.random.Generator,
    m: np.ndarray,
    p0: float,
    power: float,
    plateau: float = 1.8,
    shoulder: float = 1.0,
) -> P4:
    """Lab four-momenta of resonances of masses ``m`` with a falling pT spectrum and rapidity plateau."""
    n = len(m)
    pt = falling_pt(rng, n, p0, power, pt_max=2000.0)
    mt = np.sqrt(m * m + pt * pt)
    y = rapidity(rng, n, plateau, shoulder, mt)
    phi = uniform(rng, n, -np.pi, np.pi)
    return from_m_pt_y_phi(m, pt, y, phi)


def cos_isotropic(rng: np.random.Generator, n: int) -> np.ndarray:
    return 2.0 * uniform(rng, n) - 1.0


def cos_v_minus_a(rng: np.random.Generator, n: int) -> np.ndarray:
    """``cos(theta)`` from ``(1 + s cos)^2`` with a random sign ``s`` (W+/W- and quark-direction mix).

    CDF of ``(1 + c)^2`` on [-1, 1] is ``(1 + c)^3 / 8`` so ``c = 2 u^(1/3) - 1``.
    """
    c = 2.0 * np.cbrt(uniform(rng, n)) - 1.0
    return np.where(uniform(rng, n) < 0.5, c, -c)


def cos_vector(rng: np.random.Generator, n: int) -> np.ndarray:
    """``cos(theta)`` from ``1 + cos^2`` (Z/gamma* -> l l), by Cardano's formula on the cubic CDF."""
    q = 4.0 - 8.0 * uniform(rng, n)  # c^3 + 3c + q = 0
    d = np.sqrt(0.25 * q * q + 1.0)
    return np.cbrt(-0.5 * q + d) + np.cbrt(-0.5 * q - d)


# --------------------------------------------------------------------------------------------- decays
def boost_to_lab(p: P4, parent: P4, m_parent: np.ndarray) -> P4:
    """Boost ``p`` from the rest frame of ``parent`` (mass ``m_parent``) into the lab frame.

    Uses ``gamma = E/m`` and ``(gamma - 1)/beta^2 = gamma^2/(gamma + 1)``: no division by beta^2, exact
    for a parent at rest.
    """
    inv_m = 1.0 / m_parent
    gamma = parent.e * inv_m
    gx, gy, gz = parent.px * inv_m, parent.py * inv_m, parent.pz * inv_m  # gamma * beta
    gbp = gx * p.px + gy * p.py + gz * p.pz
    coef = gbp / (gamma + 1.0) + p.e
    return P4(gamma * p.e + gbp, p.px + coef * gx, p.py + coef * gy, p.pz + coef * gz)


def two_body(
    rng: np.random.Generator,
    parent: P4,
    m_parent: np.ndarray,
    m1: np.ndarray | float,
    m2: np.ndarray | float,
    cos_theta: np.ndarray | None = None,
) -> tuple[P4, P4]:
    """Decay ``parent -> 1 + 2`` (isotropic unless ``cos_theta`` is given, w.r.t. the beam axis)."""
    n = len(m_parent)
    m1 = np.broadcast_to(np.asarray(m1, dtype=F32), (n,))
    m2 = np.broadcast_to(np.asarray(m2, dtype=F32), (n,))
    mp2 = m_parent * m_parent
    lam = (mp2 - (m1 + m2) ** 2) * (mp2 - (m1 - m2) ** 2)
    p_star = np.sqrt(np.maximum(lam, 0.0)) / (2.0 * m_parent)
    c = cos_isotropic(rng, n) if cos_theta is None else cos_theta
    s = np.sqrt(np.maximum(1.0 - c * c, 0.0))
    phi = uniform(rng, n, -np.pi, np.pi)
    px, py, pz = p_star * s * np.cos(phi), p_star * s * np.sin(phi), p_star * c
    e1 = np.sqrt(p_star * p_star + m1 * m1)
    e2 = np.sqrt(p_star * p_star + m2 * m2)
    d1 = boost_to_lab(P4(e1, px, py, pz), parent, m_parent)
    d2 = boost_to_lab(P4(e2, -px, -py, -pz), parent, m_parent)
    return d1, d2


def tabulated_sampler(pdf_x: np.ndarray, pdf_y: np.ndarray):
    """Inverse-CDF sampler (``u -> x``) of a tabulated density, for ``np.interp``-speed sampling."""
    cdf = np.concatenate([[0.0], np.cumsum(0.5 * (pdf_y[1:] + pdf_y[:-1]) * np.diff(pdf_x))])
    cdf /= cdf[-1]

    def sample(rng: np.random.Generator, n: int) -> np.ndarray:
        return np.interp(uniform(rng, n), cdf, pdf_x).astype(F32)

    return sample


#: float32 just below pi: stored phi must satisfy |phi| <= pi after rounding to float32.
PI32 = np.nextafter(np.float32(np.pi), np.float32(0.0))
TWO_PI_32 = np.float32(2.0 * np.pi)


def wrap_phi32(phi: np.ndarray) -> np.ndarray:
    """float32 azimuth wrapped into ``[-pi, pi]`` and clipped so that ``|phi| <= pi`` survives rounding."""
    phi = phi - TWO_PI_32 * np.rint(phi / TWO_PI_32)
    return np.clip(phi, -PI32, PI32, out=phi)


def normal_f32(rng: np.random.Generator, shape) -> np.ndarray:
    return rng.standard_normal(shape, dtype=np.float32)


def smear(rng: np.random.Generator, pt, eta, phi, rel_sigma, angle: float):
    """Gaussian detector response: ``pT (1 + rel_sigma N)`` (not below 0), eta and phi + ``angle N``."""
    f = np.float32
    pt_s = pt * (f(1.0) + rel_sigma * normal_f32(rng, pt.shape))
    np.maximum(pt_s, f(0.0), out=pt_s)
    eta_s = eta + f(angle) * normal_f32(rng, eta.shape)
    phi_s = wrap_phi32(phi + f(angle) * normal_f32(rng, phi.shape))
    return pt_s, eta_s, phi_s
