"""Export a generated HLS project as the emulator library CMS L1 software loads (``hls4mlEmulatorExtras``).

:func:`export_emulator` writes, into ``DIR`` (replaced as a whole)::

    Makefile                 builds <Name>_v<N>.so (make [-j2]; see the Makefile's CMSSW line)
    <Name>_v<N>.cpp          the hls4mlEmulator::Model, the input encoding, create_model/destroy_model
    <Name>_v<N>.map          version script: only create_model and destroy_model are exported
    include/hls4ml/emulator.h  the interface (hls4mlEmulatorExtras' header can replace it)
    firmware/                the project's firmware sources, re-namespaced to <Name>_v<N>
    emulator.json            name, version, namespace, types, encoding, thresholds, source project hashes

and builds ``<Name>_v<N>.so`` with it. What ``prepare_input``/``read_result`` take is described in
:mod:`l1ad.emulation.cmssw_sources`.

Two versions of one model must load into one process (CMSSW ``dlopen``-s with ``RTLD_GLOBAL``): with
identical layer names, a default-visibility weight array ``w4`` of the second library binds to the
first one's, and the second model silently computes the first model's scores (cmssw#44435). Two
defences, each enough alone: every name of the project moves into the versioned namespace
``<Name>_v<N>`` (:func:`rename_namespace`, on the copied sources) and nothing but the two ``extern "C"``
factory functions is exported (hidden visibility and a version script, which also hides the weak
``std::``/``nnet::`` template instantiations). :func:`exported_symbol_problems` checks the built library
with ``nm -D``. ``isolate=False`` builds without both defences, to show the clash in tests.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any

from l1ad.core.files import atomic_write_text, replace_dir, staging_dir
from l1ad.emulation import cmssw_sources as src
from l1ad.events.encoding import describe as describe_encoding
from l1ad.hls.metadata import read_metadata

logger = logging.getLogger(__name__)

EXPORT_FILE = "emulator.json"
_IDENT = re.compile(r"[A-Za-z][A-Za-z0-9_]*")
_RESERVED = {"nnet", "std", "hls4mlEmulator", "hls", "ap_fixed", "ap_int"}
#: Prefixes ``nm -C`` puts before the C++ name of special symbols (vtables, typeinfo, thunks, guards).
_SPECIAL = ("vtable for ", "typeinfo for ", "typeinfo name for ", "VTT for ", "construction vtable for ",
            "guard variable for ", "non-virtual thunk to ", "virtual thunk to ")  # fmt: skip
#: Project files copied into the export (the rest of an HLS project is synthesis scripts and test data).
_SOURCE_SUFFIXES = (".h", ".hh", ".hpp", ".cpp", ".cc")


def default_name(target: str) -> str:
    """Library name of a target: ``ae_compact-vu13p`` -> ``L1AD_ae_compact_vu13p`` (a C++ identifier)."""
    return "L1AD_" + re.sub(r"[^A-Za-z0-9_]", "_", target)


def library_namespace(name: str, version: int) -> str:
    """The versioned namespace and library stem, ``<Name>_v<N>``; ValueError for a bad name or version."""
    if not isinstance(name, str) or not _IDENT.fullmatch(name) or name in _RESERVED:
        raise ValueError(f"library name must be a C++ identifier (letters, digits, '_'), got {name!r}")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError(f"version must be an integer >= 1, got {version!r}")
    return f"{name}_v{version}"


def rename_namespace(text: str, old: str, new: str) -> str:
    """Every C++ token ``old`` in ``text`` renamed to ``new`` (``old_top``, ``OLD_H_`` are other tokens)."""
    return re.sub(rf"\b{re.escape(old)}\b", new, text)


def exported_symbol_problems(nm_demangled: str, namespace: str) -> list[str]:
    """Exported symbols of ``nm -DC --defined-only`` output that are neither a factory function nor in
    ``namespace`` (special symbols such as ``vtable for X`` are judged by ``X``); empty when clean."""
    problems = []
    for line in nm_demangled.splitlines():
        parts = line.split(maxsplit=2)
        if len(parts) < 3:
            continue
        name = parts[2]
        if name in src.FACTORY_SYMBOLS:
            continue
        bare = next((name[len(p) :] for p in _SPECIAL if name.startswith(p)), name)
        if not bare.startswith(f"{namespace}::"):
            problems.append(name)
    return problems


def dynamic_symbols(library: Path) -> str:
    """``nm -DC --defined-only`` of a library (the symbols ``dlopen`` can bind to other libraries)."""
    out = subprocess.run(
        ["nm", "-DC", "--defined-only", str(library)], capture_output=True, text=True, check=True
    )
    return out.stdout


def export_metadata(
    meta: dict[str, Any], name: str, version: int, namespace: str, isolate: bool
) -> dict[str, Any]:
    """``emulator.json``: what the library is, what it takes and returns, and which project it came from."""
    return {
        "name": name,
        "version": version,
        "namespace": namespace,
        "library": f"{namespace}.so",
        "isolated": isolate,
        "target": meta["target"],
        "source_namespace": meta["namespace"],
        "model": meta.get("model"),
        "quantization": meta.get("quantization"),
        "model_sha256": meta.get("model_sha256"),
        "weights_sha256": meta.get("weights_sha256"),
        "lib_stamp": meta.get("lib_stamp"),
        "input": meta["input"],
        "output": meta["output"],
        "postprocessing": meta.get("postprocessing"),
        "encoding": describe_encoding(),
        "prepare_input": {
            "const float*": "76 floats: 19 objects [pT GeV, eta, phi rad, class], ADC2021 order",
            "const int*": "57 hardware integers [pT_hw, eta_hw, phi_hw] per object",
        },
        "read_result": {
            "double*": f"{meta['output']['size']} outputs",
            f"{meta['output']['cpp']}*": f"{meta['output']['size']} raw outputs",
            "bool*": f"{len(meta.get('thresholds') or [])} trigger decisions (score > threshold)",
        },
        "thresholds": meta.get("thresholds") or [],
        "versions": meta.get("versions"),
    }


def _copy_sources(project: Path, out: Path, old: str, new: str | None) -> None:
    """Copy ``project/firmware`` sources to ``out/firmware``, renaming namespace ``old`` to ``new``."""
    fw = project / "firmware"
    for path in sorted(p for p in fw.rglob("*") if p.is_file() and p.suffix in _SOURCE_SUFFIXES):
        rel = path.relative_to(project)
        dest = out / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        if new is None or rel.parts[1] == "ap_types":
            shutil.copyfile(path, dest)
            continue
        text = path.read_text()
        if re.search(rf"\b{re.escape(new)}\b", text):
            raise ValueError(f"{rel}: already uses the name {new!r}; choose another --name or --version")
        dest.write_text(rename_namespace(text, old, new))


def _check_out_dir(out_dir: Path) -> None:
    """Refuse to replace a directory that is not an earlier export (``DIR`` is replaced as a whole)."""
    if out_dir.exists() and any(out_dir.iterdir()) and not (out_dir / EXPORT_FILE).is_file():
        raise FileExistsError(
            f"{out_dir} exists and is not an emulator export ({EXPORT_FILE} missing): not replacing it"
        )


def build(out_dir: Path, jobs: int = 2) -> float:
    """``make -C out_dir -jJOBS``; seconds taken. RuntimeError with the compiler's output on failure."""
    t0 = time.perf_counter()
    proc = subprocess.run(["make", "-C", str(out_dir), f"-j{jobs}"], capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(
            f"building the emulator library in {out_dir} failed:\n{(proc.stdout + proc.stderr)[-4000:]}"
        )
    return time.perf_counter() - t0


def export_emulator(
    project_dir: Path,
    out_dir: Path,
    name: str | None = None,
    version: int = 1,
    build_library: bool = True,
    jobs: int = 2,
    isolate: bool = True,
) -> Path:
    """Write the CMSSW emulator library of a generated project into ``out_dir`` (replaced) and build it.

    ``name`` defaults to :func:`default_name` of the project's target; the library is
    ``out_dir/<name>_v<version>.so`` (returned; not built with ``build_library=False``). With
    ``isolate=False`` (tests only) the project keeps its own namespace and every symbol is exported.
    The built library is checked with ``nm -D`` when ``nm`` exists: anything exported outside the
    versioned namespace is a RuntimeError.
    """
    project_dir, out_dir = Path(project_dir), Path(out_dir)
    meta = read_metadata(project_dir)
    name = name or default_name(meta["target"])
    namespace = library_namespace(name, version)
    _check_out_dir(out_dir)
    has_thresholds = (
        bool(meta.get("thresholds_header")) and (project_dir / meta["thresholds_header"]).is_file()
    )
    if has_thresholds and len(meta["thresholds"]) > 64:
        raise ValueError(f"{meta['target']}: {len(meta['thresholds'])} thresholds; at most 64 are supported")
    code_ns = namespace if isolate else meta["namespace"]
    stage = staging_dir(out_dir)
    try:
        _copy_sources(project_dir, stage, meta["namespace"], namespace if isolate else None)
        atomic_write_text(stage / src.INTERFACE_HEADER, src.interface_header())
        atomic_write_text(stage / f"{namespace}.cpp", src.emulator_source(meta, code_ns, has_thresholds))
        if isolate:
            atomic_write_text(stage / f"{namespace}.map", src.version_script())
        atomic_write_text(stage / "Makefile", src.makefile(namespace, meta["project_name"], isolate))
        info = export_metadata(meta, name, version, namespace, isolate)
        atomic_write_text(stage / EXPORT_FILE, json.dumps(info, indent=1, sort_keys=True) + "\n")
        library = stage / f"{namespace}.so"
        if build_library:
            seconds = build(stage, jobs)
            logger.info("built %s (%.0f kB) in %.1f s", library.name, library.stat().st_size / 1e3, seconds)
            if isolate and shutil.which("nm"):
                problems = exported_symbol_problems(dynamic_symbols(library), namespace)
                if problems:
                    raise RuntimeError(f"{library.name} exports symbols outside {namespace}: {problems[:10]}")
    except BaseException:
        shutil.rmtree(stage, ignore_errors=True)
        raise
    replace_dir(stage, out_dir)
    logger.info("wrote the emulator library %s of %s in %s", namespace, meta["target"], out_dir)
    return out_dir / f"{namespace}.so"
