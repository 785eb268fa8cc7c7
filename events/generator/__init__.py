"""Fast, vectorized physics generator of L1-format events (the embedded default data).

Events follow :mod:`l1ad.events.schema` (19 slots x ``[pT, eta, phi, class]``, float32). Modules:

* :mod:`.kinematics` -- four-vectors, boosts, two-body decays, line shapes and production spectra;
* :mod:`.decays` -- routing of final-state fermions, tau decays, initial-state recoil;
* :mod:`.processes` -- W, Z/gamma*, ttbar and lepton-enriched QCD backgrounds;
* :mod:`.signals` -- A -> 4l, leptoquark -> b tau, h0 -> tau tau, h+- -> tau nu;
* :mod:`.detector` -- resolutions, pileup, MET, pre-filter, acceptance and slot filling;
* :mod:`.api` -- seeding, batching and the public functions re-exported here.
"""

from .api import (
    BACKGROUND_FRACTIONS,
    BACKGROUND_PROCESSES,
    PROCESSES,
    generate_background,
    generate_process,
    generate_signal,
    mixture_counts,
)

__all__ = [
    "BACKGROUND_FRACTIONS",
    "BACKGROUND_PROCESSES",
    "PROCESSES",
    "generate_background",
    "generate_process",
    "generate_signal",
    "mixture_counts",
]
