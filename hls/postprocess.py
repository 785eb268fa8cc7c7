"""Small pure fixes applied to the files hls4ml 1.3 writes, so that projects are reproducible and compile.

* ``build_lib.sh`` and ``hls4ml_config.yml`` carry a random ``uuid4`` stamp (hls4ml ``make_stamp``):
  replaced by a content hash of the project, so the same model and target give byte-identical projects.
* ``hls4ml_config.yml`` records the absolute output directory and a path to ``keras_model.keras``
  (a zip with timestamps, removed): both replaced by project-relative names.
* With a ``namespace``, hls4ml renames ``namespace nnet`` to the project namespace in
  ``nnet_code_gen.h`` (distributed-arithmetic code), where the generated code then cannot see
  ``nnet::bit_shift``: a ``using namespace nnet;`` is added inside the project namespace.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

#: Files of an hls4ml project that are not reproducible and are removed after writing.
REMOVED_FILES = ("keras_model.keras",)
#: Directories created by compiling or running a project (excluded from content hashes).
BUILD_ARTIFACTS = ("csim", "rtl", "yosys", "__pycache__")


def fix_stamp(build_lib: str, stamp: str) -> str:
    """Replace the ``LIB_STAMP=...`` of hls4ml's ``build_lib.sh`` by ``stamp``."""
    text, n = re.subn(r"^LIB_STAMP=.*$", f"LIB_STAMP={stamp}", build_lib, flags=re.MULTILINE)
    if n != 1:
        raise ValueError("build_lib.sh: expected exactly one LIB_STAMP= line")
    return text


def fix_code_gen_namespace(code_gen: str, namespace: str) -> str:
    """Make ``nnet::`` helpers visible to generated DA code that hls4ml put in ``namespace``."""
    opening = f"namespace {namespace} {{\n"
    marker = "using namespace nnet; // added by l1ad"
    if marker in code_gen or opening not in code_gen:
        return code_gen
    return code_gen.replace(opening, f"{opening}\n{marker}\n", 1)


def fix_config_yml(text: str, output_dir: str) -> str:
    """Project-relative paths in ``hls4ml_config.yml`` (no absolute output dir, no model file)."""
    lines = []
    for line in text.splitlines(keepends=True):
        if line.startswith("Stamp:"):
            line = "Stamp: STAMP\n"  # the content hash, filled in by postprocess_project
        elif line.startswith("OutputDir:"):
            line = "OutputDir: .\n"
        elif line.startswith("KerasModel:"):
            line = "KerasModel: null  # see metadata.json (model_file, model_sha256)\n"
        elif line.startswith("InputData:") and "null" not in line:
            line = "InputData: tb_data/tb_input_features.dat\n"
        elif line.startswith("OutputPredictions:") and "null" not in line:
            line = "OutputPredictions: tb_data/tb_output_predictions.dat\n"
        lines.append(line.replace(output_dir, "."))
    return "".join(lines)


def content_hash(project_dir: Path, exclude: tuple[str, ...] = ("build_lib.sh",)) -> str:
    """sha256 over the relative paths and bytes of the project's files (build artifacts excluded)."""
    h = hashlib.sha256()
    for path in sorted(p for p in project_dir.rglob("*") if p.is_file()):
        rel = path.relative_to(project_dir)
        if rel.parts[0] in BUILD_ARTIFACTS or rel.as_posix() in exclude or path.suffix in (".so", ".o"):
            continue
        h.update(rel.as_posix().encode() + b"\0")
        h.update(path.read_bytes())
        h.update(b"\0")
    return h.hexdigest()


def postprocess_project(project_dir: Path, namespace: str) -> str:
    """Apply every fix in place; return the deterministic stamp written into ``build_lib.sh``."""
    for name in REMOVED_FILES:
        (project_dir / name).unlink(missing_ok=True)
    yml = project_dir / "hls4ml_config.yml"
    if yml.is_file():
        yml.write_text(fix_config_yml(yml.read_text(), str(project_dir)))
    code_gen = project_dir / "firmware" / "nnet_utils" / "nnet_code_gen.h"
    if code_gen.is_file():
        code_gen.write_text(fix_code_gen_namespace(code_gen.read_text(), namespace))
    for so in (project_dir / "firmware").glob("*.so"):
        so.unlink()
    stamp = content_hash(project_dir)[:8]
    build_lib = project_dir / "build_lib.sh"
    if build_lib.is_file():
        build_lib.write_text(fix_stamp(build_lib.read_text(), stamp))
    if yml.is_file():
        yml.write_text(yml.read_text().replace("Stamp: STAMP\n", f"Stamp: {stamp}\n"))
    return stamp
