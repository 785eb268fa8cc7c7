"""Pythia 8 settings ("cards") of the backgrounds, the signals and the minimum-bias pileup pool.

All at sqrt(s) = 13 TeV. Multi-parton interactions (MPI, the underlying event) are an option: on they
cost ~5-7 ms per event, off ~1 ms; the minimum-bias pool always has MPI on (it *is* MPI).

QCD enrichment (documented choice): inclusive QCD passes the 23 GeV isolated-lepton pre-filter at
~1e-4, so the QCD sample is heavy-flavour production (``HardQCD:hardbbbar``: gg -> bb, qq -> bb) with
``pTHatMin = 30 GeV`` and the B hadrons (B0, B+, Bs, Lambda_b) forced to semileptonic decays (e or mu).
It stands for "QCD events that fire the single-lepton pre-filter"; like the fast generator, the
background mixture is then fixed by *event counts* (W 59.2%, QCD 33.8%, Z 6.7%, ttbar 0.3%,
:data:`l1ad.events.generator.BACKGROUND_FRACTIONS`), not by cross sections.
"""

from __future__ import annotations

COMMON = (
    "Beams:eCM = 13000",
    "Next:numberCount = 0",
    "Next:numberShowEvent = 0",
    "Next:numberShowInfo = 0",
    "Next:numberShowProcess = 0",
    "Init:showChangedSettings = off",
    "Init:showProcesses = off",
    "Init:showChangedParticleData = off",
    "Print:quiet = on",
    "Random:setSeed = on",
)

_B_HADRONS = (511, 521, 531, 5122)

CARDS: dict[str, tuple[str, ...]] = {
    "W": ("WeakSingleBoson:ffbar2W = on", "24:onMode = off", "24:onIfAny = 11 13 15"),
    "QCD": (
        "HardQCD:hardbbbar = on",
        "PhaseSpace:pTHatMin = 30",
        *(s for b in _B_HADRONS for s in (f"{b}:onMode = off", f"{b}:onIfAny = 11 13")),
    ),
    "Z": (
        "WeakSingleBoson:ffbar2gmZ = on",
        "PhaseSpace:mHatMin = 50",
        "23:onMode = off",
        "23:onIfAny = 11 13 15",
    ),
    "ttbar": ("Top:gg2ttbar = on", "Top:qqbar2ttbar = on"),
    "Ato4l": (
        "Higgs:useBSM = on",
        "HiggsBSM:gg2A3 = on",
        "HiggsA3:coup2Z = 1",  # without it the A3 -> ZZ* width and the cross section vanish
        "36:m0 = 50",
        "36:onMode = off",
        "36:onIfMatch = 23 23",
        "23:onMode = off",
        "23:onIfAny = 11 13",
        "23:mMin = 4",
    ),
    "leptoquark": ("LeptoQuark:all = on", "42:m0 = 80", "42:0:products = 5 15"),
    "hToTauTau": ("HiggsSM:gg2H = on", "25:m0 = 60", "25:onMode = off", "25:onIfMatch = 15 -15"),
    "hChToTauNu": (
        "Higgs:useBSM = on",
        "HiggsBSM:ffbar2H+- = on",
        "37:m0 = 60",
        "37:onMode = off",
        "37:onIfMatch = 15 16",
    ),
}
MINBIAS = ("SoftQCD:nonDiffractive = on",)

#: All Pythia processes, in the order of the fast generator (seed streams use this index).
PROCESSES: tuple[str, ...] = ("W", "QCD", "Z", "ttbar", "Ato4l", "leptoquark", "hToTauTau", "hChToTauNu")


def settings(process: str, seed: int, mpi: bool) -> list[str]:
    """Full Pythia settings of a process (``"minbias"`` for the pileup pool); ``seed`` in [1, 9e8]."""
    if process == "minbias":
        body, mpi = MINBIAS, True
    elif process in CARDS:
        body = CARDS[process]
    else:
        raise ValueError(f"unknown Pythia process {process!r}; expected one of {PROCESSES}")
    if not 0 < seed <= 900_000_000:
        raise ValueError(f"Pythia seed must be in [1, 900000000], got {seed}")
    return [*COMMON, f"Random:seed = {seed}", f"PartonLevel:MPI = {'on' if mpi else 'off'}", *body]


def make_pythia(process: str, seed: int, mpi: bool):
    """An initialized ``pythia8mc.Pythia`` for ``process``; raises ``RuntimeError`` if init fails."""
    from . import require_pythia

    pythia8mc = require_pythia()
    py = pythia8mc.Pythia("", False)
    for s in settings(process, seed, mpi):
        if not py.readString(s):
            raise RuntimeError(f"Pythia rejected the setting {s!r} ({process})")
    if not py.init():
        raise RuntimeError(
            f"Pythia initialization failed for {process} (settings: {settings(process, seed, mpi)})"
        )
    return py
