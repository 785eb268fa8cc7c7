"""Firmware targets: one small YAML file per firmware build, ``firmware_projects/<name>.yaml``.

A target names the model to put in firmware and how: backend, FPGA part, clock, hls4ml strategy,
and the budgets the design must meet (40 MHz bunch crossing: a new event every 25 ns, a fixed
latency allowance).

Where things are found and written (:func:`find_target`, :func:`project_dir`): a target name is
looked up as ``./firmware_projects/<name>.yaml`` in the current directory, then among the targets
shipped in the package (``l1ad/firmware_projects/``); a path is used as given. Relative paths inside
a target resolve from the current directory (or the ``--run-dir``). The generated HLS project goes
to ``./firmware_projects/<name>/`` under the current directory (or beside a target file given by
path, or ``--project DIR``), never into the installed package.

Example::

    model: runs/default/ae_compact-hgq     # model dir, relative to the current directory or absolute
    backend: Vitis                          # Vitis | Vivado
    part: xcvu13p-flga2577-2-e
    clock_period_ns: 6.25                   # 160 MHz algorithm clock
    strategy: Latency                       # Latency | distributed_arithmetic
    reuse_factor: 1
    io_type: io_parallel
    ii_budget_ns: 25                        # a new event every bunch crossing
    latency_budget_ns: 50                   # 2 BX
    resource_budget_fraction: 0.02          # of the part's LUTs
    require_zero_dsp: false
    thresholds_from: runs/default/evaluation.json
    events: runs/default/data/background_test.h5
    latency_cutoff: 8                       # da4ml delay units per pipeline stage (DA only; null: clock_period_ns)
    da_delay_constraint: 0                  # da4ml hard_dc: extra adder depth per CMVM (DA only; null: none)

``latency_cutoff`` and ``da_delay_constraint`` only shape the da4ml Verilog of
``distributed_arithmetic`` targets (:mod:`l1ad.hls.rtl`). A da4ml delay unit is one adder level (da4ml's
default latency model, ``HWConfig(1, -1, -1)``: every addition costs one unit whatever its width, a
``b``-bit multiplication ``b`` units); a stage of ``latency_cutoff`` units must fit the clock period.
``da_delay_constraint`` is da4ml's ``hard_dc``: the adder depth each constant-matrix multiplication may
exceed its minimum by (``0``: minimal depth; ``null``: da4ml's default, no constraint).

Unknown keys and wrong types raise ``ValueError`` naming the file and the key.
"""

from __future__ import annotations

import dataclasses
import logging
import math
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from l1ad.core.files import atomic_write_text

logger = logging.getLogger(__name__)

#: The target files shipped with the package (package data).
PACKAGE_TARGETS_DIR = Path(__file__).resolve().parent.parent / "firmware_projects"
#: Folder, relative to the current directory, of a user's target files and of generated projects.
LOCAL_TARGETS = Path("firmware_projects")

BACKENDS = ("Vitis", "Vivado")
STRATEGIES = ("Latency", "distributed_arithmetic")
IO_TYPES = ("io_parallel",)

_NAME = re.compile(r"[A-Za-z][A-Za-z0-9_.-]*")
_CPP_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def default_namespace(name: str) -> str:
    """C++ namespace derived from a target name: ``ae-compact.v2`` -> ``l1ad_ae_compact_v2``."""
    return "l1ad_" + re.sub(r"[^A-Za-z0-9_]", "_", name)


@dataclass(frozen=True)
class FirmwareTarget:
    """One firmware build: model, implementation choices and budgets (see the module docstring)."""

    name: str
    model: str
    backend: str = "Vitis"
    part: str = "xcvu13p-flga2577-2-e"
    clock_period_ns: float = 6.25
    strategy: str = "Latency"
    reuse_factor: int = 1
    io_type: str = "io_parallel"
    namespace: str = ""
    ii_budget_ns: float = 25.0
    latency_budget_ns: float = 50.0
    resource_budget_fraction: float = 0.02
    require_zero_dsp: bool = False
    thresholds_from: str | None = None
    events: str | None = None
    tb_events: int = 128
    latency_cutoff: float | None = None
    da_delay_constraint: int | None = None

    def __post_init__(self) -> None:
        if not self.namespace:
            object.__setattr__(self, "namespace", default_namespace(self.name))
        _validate(self, where=f"target {self.name!r}")

    # -- derived ---------------------------------------------------------------------------
    @property
    def project_name(self) -> str:
        """hls4ml project name (the top function, ``<project>.cpp``): the namespace plus ``_top``."""
        return f"{self.namespace}_top"

    def resolve(self, path: str | None, run_dir: Path | None = None) -> Path | None:
        """A path of the target: absolute as is, else relative to the current directory.

        With ``run_dir`` (``l1ad firmware ... --run-dir DIR``) a relative path is taken inside that run
        directory instead: ``runs/default/ae_compact-hgq`` -> ``DIR/ae_compact-hgq`` (the leading
        ``runs/<name>/`` is dropped), ``evaluation.json`` -> ``DIR/evaluation.json``.
        """
        if path is None:
            return None
        p = Path(path).expanduser()
        if p.is_absolute():
            return p
        if run_dir is None:
            return Path.cwd() / p
        parts = p.parts[2:] if len(p.parts) > 2 and p.parts[0] == "runs" else p.parts
        return Path(run_dir).joinpath(*parts)

    def to_dict(self) -> dict[str, Any]:
        """The YAML content (everything except ``name``, which is the file name)."""
        d = dataclasses.asdict(self)
        d.pop("name")
        return d

    def save(self, path: str | Path) -> Path:
        """Write ``<dir>/<name>.yaml`` when ``path`` is a directory, else ``path`` (stem must be the name)."""
        p = Path(path)
        if p.is_dir():
            p = p / f"{self.name}.yaml"
        if p.stem != self.name:
            raise ValueError(f"{p}: a target file must be named after the target ({self.name}.yaml)")
        atomic_write_text(p, yaml.safe_dump(self.to_dict(), sort_keys=False))
        return p

    @classmethod
    def load(cls, path: str | Path) -> FirmwareTarget:
        """Read and validate a target file; the target name is the file stem."""
        p = Path(path)
        try:
            data = yaml.safe_load(p.read_text())
        except yaml.YAMLError as exc:
            raise ValueError(f"{p}: not valid YAML ({exc})") from None
        if not isinstance(data, dict):
            raise ValueError(f"{p}: a target file must be a mapping of keys to values")
        return cls.from_dict(data, name=p.stem, where=str(p))

    @classmethod
    def from_dict(cls, data: dict[str, Any], name: str, where: str = "target") -> FirmwareTarget:
        known = {f.name for f in dataclasses.fields(cls)} - {"name"}
        for key in data:
            if key not in known:
                raise ValueError(f"{where}: unknown key {key!r} (known: {', '.join(sorted(known))})")
        if "model" not in data:
            raise ValueError(f"{where}: missing required key 'model'")
        values = dict(data)
        for key in (
            "clock_period_ns",
            "ii_budget_ns",
            "latency_budget_ns",
            "resource_budget_fraction",
            "latency_cutoff",
        ):
            if isinstance(values.get(key), int) and not isinstance(values.get(key), bool):
                values[key] = float(values[key])  # YAML '25' means 25.0
        if values.get("namespace") is None:
            values["namespace"] = ""
        try:
            return cls(name=name, **values)
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None


def _validate(t: FirmwareTarget, where: str) -> None:
    """Check types and values of every field; raise ValueError naming the key."""

    def bad(key: str, msg: str) -> ValueError:
        return ValueError(f"{where}: key {key!r}: {msg}, got {getattr(t, key)!r}")

    if not isinstance(t.name, str) or not _NAME.fullmatch(t.name):
        raise bad("name", "must start with a letter and use letters, digits, '_', '-', '.'")
    for key in ("model", "part"):
        if not isinstance(getattr(t, key), str) or not getattr(t, key).strip():
            raise bad(key, "must be a non-empty string")
    for key, choices in (("backend", BACKENDS), ("strategy", STRATEGIES), ("io_type", IO_TYPES)):
        if getattr(t, key) not in choices:
            raise bad(key, f"must be one of {', '.join(choices)}")
    for key in ("reuse_factor", "tb_events"):
        value = getattr(t, key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise bad(key, "must be an integer >= 1")
    for key in ("clock_period_ns", "ii_budget_ns", "latency_budget_ns", "resource_budget_fraction"):
        value = getattr(t, key)
        if not isinstance(value, float) or not math.isfinite(value) or value <= 0:
            raise bad(key, "must be a positive number")
    if t.resource_budget_fraction > 1:
        raise bad("resource_budget_fraction", "must be a fraction of the part (0 < x <= 1)")
    if not isinstance(t.require_zero_dsp, bool):
        raise bad("require_zero_dsp", "must be true or false")
    if not isinstance(t.namespace, str) or not _CPP_IDENT.fullmatch(t.namespace) or t.namespace == "nnet":
        raise bad("namespace", "must be a C++ identifier other than 'nnet'")
    for key in ("thresholds_from", "events"):
        value = getattr(t, key)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            raise bad(key, "must be a path or null")
    cutoff = t.latency_cutoff
    if cutoff is not None and (not isinstance(cutoff, float) or not math.isfinite(cutoff) or cutoff < 1):
        raise bad("latency_cutoff", "must be a number of da4ml delay units >= 1, or null")
    dc = t.da_delay_constraint
    if dc is not None and (not isinstance(dc, int) or isinstance(dc, bool) or dc < 0):
        raise bad("da_delay_constraint", "must be an integer >= 0 (extra adder depth), or null")


def find_target(spec: str | Path) -> Path:
    """Target file from a name (``ae_compact_vu13p``: ``./firmware_projects/<name>.yaml``, else the
    package's) or a path."""
    p = Path(spec)
    if p.suffix in (".yaml", ".yml") or p.exists():
        if not p.is_file():
            raise FileNotFoundError(f"target file {p} does not exist")
        return p
    for folder in (Path.cwd() / LOCAL_TARGETS, PACKAGE_TARGETS_DIR):
        candidate = folder / f"{spec}.yaml"
        if candidate.is_file():
            return candidate
    known = sorted(
        {q.stem for d in (Path.cwd() / LOCAL_TARGETS, PACKAGE_TARGETS_DIR) for q in d.glob("*.yaml")}
    )
    raise FileNotFoundError(
        f"no target {spec!r} (looked in {LOCAL_TARGETS}/ and the package's targets); known: {', '.join(known) or 'none'}"
    )


def load_target(spec: str | Path) -> tuple[FirmwareTarget, Path]:
    """``(target, target_file)`` for a target name or path."""
    path = find_target(spec)
    return FirmwareTarget.load(path), path


def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def project_dir(target: FirmwareTarget, target_file: Path | None = None) -> Path:
    """Generated project directory: ``./firmware_projects/<name>/`` under the current directory, or
    ``<dir of the target file>/<name>/`` for a target file outside the package and outside ``./firmware_projects``."""
    local = Path.cwd() / LOCAL_TARGETS
    if target_file is None or _inside(target_file, PACKAGE_TARGETS_DIR) or _inside(target_file, local):
        return local / target.name
    return Path(target_file).parent / target.name
