"""core.files: atomic writes leave nothing half-written and give the umask's permissions; directory swap."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest

from l1ad.core.files import atomic_path, atomic_write_bytes, atomic_write_text, replace_dir, staging_dir
from l1ad.core.versions import l1ad_version, tool_versions


def _mode(p: Path) -> int:
    return stat.S_IMODE(p.stat().st_mode)


@pytest.fixture
def umask():
    def set_(mask: int) -> None:
        os.umask(mask)

    old = os.umask(0o022)
    os.umask(old)
    yield set_
    os.umask(old)


@pytest.mark.parametrize("mask", [0o022, 0o027, 0o002])
def test_atomic_files_get_the_umask_permissions(tmp_path: Path, umask, mask: int) -> None:
    umask(mask)
    a = atomic_write_text(tmp_path / "a.json", "{}")
    b = atomic_write_bytes(tmp_path / "b.bin", b"\x00")
    with atomic_path(tmp_path / "c.npy", suffix=".npy") as tmp:
        np.save(tmp, np.arange(3))
    for p in (a, b, tmp_path / "c.npy"):
        assert _mode(p) == 0o666 & ~mask, (p, oct(_mode(p)))


def test_run_files_are_readable_by_colleagues(tmp_path: Path, umask) -> None:
    """What the trainers and the event writer produce is not 0600 (the temporary file's mode)."""
    from l1ad.events.io import write_events
    from l1ad.models.ebm.toydata import toy_events

    umask(0o022)
    path = write_events(tmp_path / "bkg.h5", toy_events(10, seed=0))
    assert _mode(path) == 0o644


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = atomic_write_text(tmp_path / "x.txt", "old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("boom")
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.txt"]


def test_replace_dir_swaps_and_removes_the_old_tree(tmp_path: Path) -> None:
    final = tmp_path / "proj"
    first = staging_dir(final)
    (first / "a").write_text("1")
    replace_dir(first, final)
    assert (final / "a").read_text() == "1" and not first.exists()
    second = staging_dir(final)
    (second / "b").write_text("2")
    replace_dir(second, final)
    assert sorted(p.name for p in final.iterdir()) == ["b"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["proj"]  # no staging or old tree left


def test_tool_versions_names_absent_tools() -> None:
    v = tool_versions(("numpy", "surely-not-installed-dist"))
    assert v["numpy"] == np.__version__ and v["surely-not-installed-dist"] == "absent"
    assert l1ad_version().count(".") >= 1
