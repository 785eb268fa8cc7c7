"""Versions of the tools a result depends on: the one place they are read (``meta.json``,
``metadata.json`` and reports record them through :func:`tool_versions`)."""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

#: The distributions each kind of artifact records.
KERAS_TOOLS = ("keras", "hgq2", "tensorflow-cpu", "numpy")
TORCH_TOOLS = ("torch", "numpy")
SKLEARN_TOOLS = ("scikit-learn", "numpy")
FIRMWARE_TOOLS = ("hls4ml", "hgq2", "da4ml", "keras")


def tool_versions(dists: tuple[str, ...] | list[str]) -> dict[str, str]:
    """``{distribution: version}`` for each name; ``"absent"`` for one that is not installed."""
    out = {}
    for dist in dists:
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "absent"
    return out


def l1ad_version() -> str:
    """The installed l1ad version (the package's ``__version__`` when running from a source tree)."""
    try:
        return version("l1ad")
    except PackageNotFoundError:
        from l1ad import __version__

        return __version__
