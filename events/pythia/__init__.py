"""Realistic L1 events from Pythia 8 (optional extra ``pythia``: pythia8mc + fastjet).

* :mod:`.processes` -- Pythia settings of the backgrounds, signals and the minimum-bias pool;
* :mod:`.detector` -- the L1 detector emulation (pileup overlay, e/gamma, muons, towers, jets, MET);
* :mod:`.run` -- chunked, resumable, parallel generation and the ADC2021-layout data set.

Nothing here imports Pythia or fastjet at module level; :func:`require_pythia` names the extra.
"""

from __future__ import annotations

EXTRA_HINT = "pip install 'l1ad[pythia]'  (pythia8mc==8.317.2, fastjet==3.5.2.0)"


def require_pythia():
    """Import and return ``pythia8mc`` (and check fastjet), or raise ImportError naming the extra."""
    try:
        import fastjet  # noqa: F401
        import pythia8mc
    except ImportError as e:
        raise ImportError(f"--engine pythia needs the optional extra 'pythia': {EXTRA_HINT} ({e})") from e
    return pythia8mc
