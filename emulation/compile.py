"""Compile generated C++ into a shared library, cached by content: the one home of the emulators'
g++ builds (:mod:`l1ad.emulation.fast`, :mod:`l1ad.emulation.trigger`)."""

from __future__ import annotations

import hashlib
import logging
import subprocess
from pathlib import Path

from l1ad.core.files import atomic_path

logger = logging.getLogger(__name__)

CXX = "g++"


def _compiler_id() -> str:
    out = subprocess.run([CXX, "--version"], capture_output=True, text=True, check=True).stdout
    return out.splitlines()[0] if out else CXX


def build_shared(
    sources: dict[str, str],
    files: list[Path],
    flags: tuple[str, ...],
    lib_dir: Path,
    includes: list[Path],
    hashed: list[Path] | None = None,
) -> Path:
    """Compile generated ``sources`` (name -> text) and ``files`` into one shared library, cached by content.

    The name hashes the compiler, the flags (a ``-march`` level among them), the generated sources and every
    source file under ``hashed`` (default: the ``includes``); it is linked under a temporary name and
    renamed into place, and older libraries in ``lib_dir`` are removed.
    """
    h = hashlib.sha256("\0".join((_compiler_id(), *flags)).encode())
    for name, text in sorted(sources.items()):
        h.update(name.encode() + text.encode())
    for root in [*(includes if hashed is None else hashed), *files]:
        paths = (
            sorted(p for p in Path(root).rglob("*") if p.is_file()) if Path(root).is_dir() else [Path(root)]
        )
        for p in paths:
            if p.suffix in (".h", ".hh", ".hpp", ".cpp", ".cc"):
                h.update(str(p.relative_to(root) if p != root else p.name).encode() + p.read_bytes())
    lib = lib_dir / f"libl1ad_fast_{h.hexdigest()[:16]}.so"
    if lib.is_file():
        return lib
    lib_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in sources.items():
        (lib_dir / name).write_text(text)
        written.append(str(lib_dir / name))
    inc = [a for d in includes for a in ("-I", str(d))]
    with atomic_path(lib, suffix=".so.partial") as tmp:
        cmd = [CXX, *flags, *inc, *written, *map(str, files), "-o", str(tmp)]
        logger.info("compiling %s", lib.name)
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            raise RuntimeError(f"fast emulator compilation failed:\n{(proc.stdout + proc.stderr)[-4000:]}")
    for stale in lib_dir.glob("libl1ad_fast_*.so"):
        if stale != lib:
            stale.unlink(missing_ok=True)
    return lib
