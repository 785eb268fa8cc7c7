"""Writing files so that nobody ever sees half of one: the one home of atomic writes.

Every file l1ad writes goes through :func:`atomic_path`: a temporary file in the destination folder,
renamed onto the destination only when the writer succeeded. The finished file gets the permissions
the user's umask gives a newly created file (``0o666 & ~umask``: 0644 under the usual 0022), not the
0600 of a temporary file, so a colleague on a shared filesystem can read a run.

Directories (generated HLS projects) are swapped in by :func:`replace_dir`: on Linux with one
``renameat2(RENAME_EXCHANGE)`` call, so the destination always holds either the old or the new
project, never nothing; elsewhere by two renames.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import hashlib
import logging
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process umask (read without changing it where /proc allows, else set-and-restore)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    except OSError:
        pass
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def new_file_mode() -> int:
    """Mode of a newly created regular file under the current umask."""
    return 0o666 & ~current_umask()


@contextmanager
def atomic_path(path: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds.

    The block may write the temporary file itself or replace it (``model.save(tmp)``); either way the
    result gets :func:`new_file_mode` before the rename. On failure the temporary file is removed and
    ``path`` is untouched.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=suffix or path.suffix, dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        os.chmod(tmp, new_file_mode())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (see :func:`atomic_path`)."""
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)
    return Path(path)


def atomic_write_with(path: str | Path, write: Any, suffix: str | None = None) -> Path:
    """Call ``write(str(tmp))`` on a temporary file beside ``path``, then rename it into place."""
    with atomic_path(path, suffix=suffix) as tmp:
        write(str(tmp))
    return Path(path)


def save_figure(fig: Any, path: str | Path, dpi: int = 110) -> Path:
    """Save a matplotlib figure atomically as PNG, then close it."""
    import matplotlib.pyplot as plt

    try:
        with atomic_path(path, suffix=".png") as tmp:
            fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
    finally:
        plt.close(fig)
    logger.info("wrote %s", path)
    return Path(path)


def sha256_file(path: str | Path) -> str:
    """sha256 hex digest of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def staging_dir(final: str | Path) -> Path:
    """A fresh, empty directory ``.<name>.partial`` beside ``final`` to build into, for :func:`replace_dir`.

    The name is fixed (generated files that embed their own path stay byte-reproducible); a leftover
    of an interrupted build is removed first.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.partial"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    return tmp


_RENAME_EXCHANGE = 2
_AT_FDCWD = -100


def _exchange(a: Path, b: Path) -> bool:
    """Atomically swap two existing paths (Linux ``renameat2``); False where unsupported."""
    libc_name = ctypes.util.find_library("c")
    if not libc_name:
        return False
    libc = ctypes.CDLL(libc_name, use_errno=True)
    fn = getattr(libc, "renameat2", None)
    if fn is None:
        return False
    rc = fn(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE)
    if rc != 0:
        logger.debug("renameat2(RENAME_EXCHANGE) failed: %s", os.strerror(ctypes.get_errno()))
        return False
    return True


def replace_dir(new: str | Path, final: str | Path) -> Path:
    """Put the directory ``new`` at ``final`` (same filesystem), replacing any old one, then delete the old.

    With ``RENAME_EXCHANGE`` a reader of ``final`` sees the old or the new tree, never none; without it
    the old tree is renamed aside first (a moment with no ``final``, never a half-written one).
    """
    new, final = Path(new), Path(final)
    if not final.exists():
        os.replace(new, final)
        return final
    if _exchange(new, final):
        shutil.rmtree(new)  # `new` now holds the old tree
        return final
    old = final.parent / f".{final.name}.old"
    if old.exists():
        shutil.rmtree(old)
    os.replace(final, old)
    os.replace(new, final)
    shutil.rmtree(old)
    return final
