"""Install a trigger menu (rate-table thresholds) into a built project: the thresholds header and
``metadata.json``'s ``thresholds``, rewritten together.

The build writes the header from the target's ``thresholds_from`` when it has one; ``l1ad firmware
calibrate`` (:mod:`l1ad.emulation.calibrate`) calibrates the thresholds on validation background with
the project's own firmware scores and installs them here. In the L1 trigger the thresholds are the
menu, set after the algorithm is built; here too they change no other file of the project.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any

from l1ad.core.files import atomic_write_text
from l1ad.core.fixed_point import FixedPoint
from l1ad.hls.metadata import METADATA_FILE, read_metadata
from l1ad.hls.thresholds import Threshold, make_thresholds, thresholds_header

logger = logging.getLogger(__name__)


def header_path(project_dir: str | Path, namespace: str) -> Path:
    """``<project>/firmware/<ns>_thresholds.h``: the one place a project's thresholds header lives."""
    return Path(project_dir) / "firmware" / f"{namespace}_thresholds.h"


def install_thresholds(
    project_dir: str | Path, rate_table: list[dict[str, Any]], source: dict[str, Any]
) -> tuple[Threshold, ...]:
    """Write the header of ``rate_table`` (rows ``{target_rate_khz, threshold, resolved}``) into the
    project and record the thresholds and their ``source`` in ``metadata.json`` (both atomic)."""
    project = Path(project_dir)
    meta = read_metadata(project)
    if meta["output"]["size"] != 1:
        raise ValueError(f"{project}: the firmware output has {meta['output']['size']} values, not a score")
    score_type = FixedPoint.from_dict(meta["output"]["fixed_point"])
    trigger = make_thresholds(rate_table, score_type)
    if not trigger:
        raise ValueError(f"{project}: no resolved threshold in the rate table: nothing to install")
    path = header_path(project, meta["namespace"])
    atomic_write_text(path, thresholds_header(trigger, score_type, meta["namespace"]))
    rows = {float(r["target_rate_khz"]): r for r in rate_table}
    meta["thresholds"] = [_with_calibration(t, rows.get(t.rate_khz)) for t in trigger]
    meta["thresholds_header"] = path.relative_to(project).as_posix()
    meta["thresholds_source"] = source
    path_meta = project / METADATA_FILE
    built = path_meta.stat()
    atomic_write_text(path_meta, json.dumps(meta, indent=1, sort_keys=True) + "\n")
    # metadata.json's mtime is the build time vendor reports must be newer than (reports.budget): the
    # menu is not a rebuild, so it keeps it
    os.utime(path_meta, ns=(built.st_atime_ns, built.st_mtime_ns))
    logger.info("installed %d thresholds in %s (%s)", len(trigger), path, source.get("kind"))
    return trigger


def _with_calibration(t: Threshold, row: dict[str, Any] | None) -> dict[str, Any]:
    """A threshold's metadata entry with the rate it achieved on the calibration background."""
    d = t.to_dict()
    if row is not None and row.get("achieved_rate_khz") is not None:
        d["calibration"] = {
            "achieved_rate_khz": float(row["achieved_rate_khz"]),
            "achieved_rate_err_khz": float(row["achieved_rate_err_khz"]),
        }
    return d
