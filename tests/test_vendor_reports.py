"""Vendor report parsers (l1ad.reports.vendor) and the part database, on real checked-in reports.

The expected values were read by eye from the files in tests/data/vendor_reports (see its README).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from l1ad.reports.parts import PARTS, PartResources, known_parts, part_resources
from l1ad.reports.vendor import (
    find_vendor_reports,
    parse_app,
    parse_csynth_rpt,
    parse_csynth_xml,
    parse_vivado_synth_rpt,
)

DATA = Path(__file__).parent / "data" / "vendor_reports"
VIVADO = DATA / "vivado_hls_2020.1"
VITIS = DATA / "vitis_hls_2024.1"
VITIS_XML = VITIS / "solution1" / "syn" / "report" / "Topo2A_AD_proj_csynth.xml"

VITIS_CSYNTH = {
    "tool_version": "2024.1",
    "top": "Topo2A_AD_proj",
    "part": "xcvu9p-flga2104-2-e",
    "product_family": "virtexuplus",
    "target_clock_ns": 25.0,
    "clock_uncertainty_ns": 6.75,
    "estimated_clock_ns": 17.294,
    "latency_best_cycles": 0,
    "latency_worst_cycles": 0,
    "interval_min": 1,
    "interval_max": 1,
    "pipeline_type": "yes",
    "resources": {"LUT": 44405, "FF": 838, "DSP": 42, "BRAM_18K": 0, "URAM": 0},
    "available": {"LUT": 1182240, "FF": 2364480, "DSP": 6840, "BRAM_18K": 4320, "URAM": 960},
}

VIVADO_CSYNTH = {
    "tool_version": "2020.1",
    "top": "myproject",
    "part": "xc7z020-clg400-1",
    "product_family": "zynq",
    "target_clock_ns": 5.0,
    "clock_uncertainty_ns": 0.62,
    "estimated_clock_ns": 4.049,
    "latency_best_cycles": 10,
    "latency_worst_cycles": 10,
    "interval_min": 8,
    "interval_max": 8,
    "pipeline_type": "dataflow",
    "resources": {"LUT": 2532, "FF": 7969, "DSP": 73, "BRAM_18K": 0, "URAM": 0},
    "available": {"LUT": 53200, "FF": 106400, "DSP": 220, "BRAM_18K": 280, "URAM": 0},
}

VIVADO_SYNTH = {
    "tool_version": "2020.1",
    "design": "myproject",
    "device": "7z020clg400-1",
    "resources": {
        "LUT": {"used": 1526, "available": 53200, "percent": 2.87},
        "FF": {"used": 2428, "available": 106400, "percent": 2.28},
        "BRAM_tile": {"used": 0, "available": 140, "percent": 0.0},
        "RAMB36": {"used": 0, "available": 140, "percent": 0.0},
        "RAMB18": {"used": 0, "available": 280, "percent": 0.0},
        "DSP": {"used": 66, "available": 220, "percent": 30.0},
        "BRAM_18K": {"used": 0, "available": 280, "percent": 0.0},
    },
}


def _read(path: Path) -> str:
    return path.read_text()


def _json_roundtrip(value: dict) -> dict:
    return json.loads(json.dumps(value))


# --------------------------------------------------------------------------- csynth
def test_vitis_2024_csynth_xml() -> None:
    parsed = parse_csynth_xml(_read(VITIS_XML))
    assert parsed == VITIS_CSYNTH
    assert _json_roundtrip(parsed) == parsed


@pytest.mark.parametrize(
    ("parser", "name"),
    [(parse_csynth_xml, "myproject_csynth.xml"), (parse_csynth_rpt, "myproject_csynth.rpt")],
)
def test_vivado_2020_csynth(parser, name: str) -> None:
    parsed = parser(_read(VIVADO / name))
    assert parsed == VIVADO_CSYNTH
    assert _json_roundtrip(parsed) == parsed


def test_vivado_2020_xml_and_rpt_agree() -> None:
    assert parse_csynth_xml(_read(VIVADO / "myproject_csynth.xml")) == parse_csynth_rpt(
        _read(VIVADO / "myproject_csynth.rpt")
    )


def test_dsp_key_normalized_across_versions() -> None:
    # Vivado HLS 2020.1 writes <DSP48E>, Vitis HLS 2024.1 writes <DSP>.
    assert "<DSP48E>" in _read(VIVADO / "myproject_csynth.xml")
    assert "<DSP48E>" not in _read(VITIS_XML)
    for path in (VIVADO / "myproject_csynth.xml", VITIS_XML):
        parsed = parse_csynth_xml(_read(path))
        assert (
            set(parsed["resources"]) == set(parsed["available"]) == {"LUT", "FF", "DSP", "BRAM_18K", "URAM"}
        )


# --------------------------------------------------------------------------- vivado_synth / app
def test_vivado_synth_rpt() -> None:
    parsed = parse_vivado_synth_rpt(_read(VIVADO / "vivado_synth.rpt"))
    assert parsed == VIVADO_SYNTH
    assert "URAM" not in parsed["resources"]  # 7-series device: no URAM row
    assert _json_roundtrip(parsed) == parsed


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        (
            VIVADO / "vivado_hls.app",
            {
                "tool": "Vivado HLS",
                "project": "myproject_prj",
                "top": "myproject",
                "part": None,
                "clock": None,
                "solutions": ["solution1"],
            },
        ),
        (
            VITIS / "hls.app",
            {
                "tool": "Vitis HLS",
                "project": "Topo2A_AD_proj_prj",
                "top": "Topo2A_AD_proj",
                "part": None,
                "clock": None,
                "solutions": ["solution1"],
            },
        ),
    ],
)
def test_parse_app(path: Path, expected: dict) -> None:
    assert parse_app(_read(path)) == expected


# --------------------------------------------------------------------------- file level
def test_find_vendor_reports_vitis_project_dir() -> None:
    found = find_vendor_reports(VITIS)
    assert found is not None
    assert found["source"] == "vendor"
    assert found["tool"] == "Vitis HLS"
    assert found["csynth"] == VITIS_CSYNTH
    assert found["vivado_synth"] is None
    assert found["files"] == [str(VITIS / "hls.app"), str(VITIS_XML)]
    assert _json_roundtrip(found) == found


def _hls4ml_vivado_layout(root: Path) -> Path:
    """The Vivado HLS files laid out as hls4ml writes them: <out>/myproject_prj/..., <out>/vivado_synth.rpt."""
    report = root / "myproject_prj" / "solution1" / "syn" / "report"
    report.mkdir(parents=True)
    shutil.copyfile(VIVADO / "vivado_hls.app", root / "myproject_prj" / "vivado_hls.app")
    for name in ("myproject_csynth.xml", "myproject_csynth.rpt"):
        shutil.copyfile(VIVADO / name, report / name)
    shutil.copyfile(VIVADO / "vivado_synth.rpt", root / "vivado_synth.rpt")
    return report


def test_find_vendor_reports_hls4ml_output_dir(tmp_path: Path) -> None:
    report = _hls4ml_vivado_layout(tmp_path)
    found = find_vendor_reports(tmp_path)
    assert found is not None
    assert found["tool"] == "Vivado HLS"
    assert found["csynth"] == VIVADO_CSYNTH
    assert found["vivado_synth"] == VIVADO_SYNTH
    assert found["files"] == [
        str(tmp_path / "myproject_prj" / "vivado_hls.app"),
        str(report / "myproject_csynth.xml"),
        str(report / "myproject_csynth.rpt"),
        str(tmp_path / "vivado_synth.rpt"),
    ]
    # The <prj> directory itself works too.
    assert find_vendor_reports(tmp_path / "myproject_prj")["csynth"] == VIVADO_CSYNTH


def test_find_vendor_reports_without_app_file(tmp_path: Path) -> None:
    # No hls.app: the top comes from the <top>_prj directory name, the tool from the report version.
    report = tmp_path / "Topo2A_AD_proj_prj" / "solution1" / "syn" / "report"
    report.mkdir(parents=True)
    shutil.copyfile(VITIS_XML, report / VITIS_XML.name)
    found = find_vendor_reports(tmp_path)
    assert found is not None
    assert (found["tool"], found["app"], found["csynth"]) == ("Vitis HLS", None, VITIS_CSYNTH)
    assert found["files"] == [str(report / VITIS_XML.name)]


def test_find_vendor_reports_none_when_absent(tmp_path: Path) -> None:
    assert find_vendor_reports(tmp_path) is None
    (tmp_path / "myproject_prj" / "solution1").mkdir(parents=True)
    assert find_vendor_reports(tmp_path) is None


def test_find_vendor_reports_malformed_file_names_it(tmp_path: Path) -> None:
    report = _hls4ml_vivado_layout(tmp_path)
    broken = report / "myproject_csynth.xml"
    broken.write_text(_read(VIVADO / "myproject_csynth.xml").replace("<LUT>2532</LUT>", ""))
    with pytest.raises(ValueError, match=r"myproject_csynth\.xml.*missing resource\(s\) LUT"):
        find_vendor_reports(tmp_path)


# --------------------------------------------------------------------------- malformed input
@pytest.mark.parametrize(
    ("parser", "text", "message"),
    [
        (parse_csynth_xml, "<profile><UserAssignments>", "not a valid csynth.xml XML document"),
        (parse_csynth_xml, "<report/>", "expected <profile>"),
        (parse_csynth_rpt, "hello", "Report for '<top>'"),
        (parse_vivado_synth_rpt, "", "not a Vivado report_utilization output"),
        (parse_app, "<project/>", "no 'top' attribute"),
        (parse_app, "not xml", "not a valid HLS .app XML document"),
    ],
)
def test_malformed_input_raises(parser, text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parser(text)


@pytest.mark.parametrize(
    ("drop", "message"),
    [
        ("<EstimatedClockPeriod>4.049</EstimatedClockPeriod>", "missing <PerformanceEstimates/"),
        ("<Part>xc7z020-clg400-1</Part>", "missing <UserAssignments/Part>"),
        ("<DSP48E>220</DSP48E>", r"AvailableResources: missing resource\(s\) DSP"),
    ],
)
def test_csynth_xml_missing_field(drop: str, message: str) -> None:
    text = _read(VIVADO / "myproject_csynth.xml")
    assert drop in text
    with pytest.raises(ValueError, match=message):
        parse_csynth_xml(text.replace(drop, ""))


def test_csynth_xml_non_numeric_value() -> None:
    text = _read(VIVADO / "myproject_csynth.xml").replace("<FF>7969</FF>", "<FF>lots</FF>")
    with pytest.raises(ValueError, match="Resources FF: expected a number, got 'lots'"):
        parse_csynth_xml(text)


def test_csynth_rpt_missing_sections() -> None:
    text = _read(VIVADO / "myproject_csynth.rpt")
    no_util = text.replace("== Utilization Estimates", "== Something Else")
    with pytest.raises(ValueError, match="missing section '== Utilization Estimates'"):
        parse_csynth_rpt(no_util)
    no_available = text.replace("|Available        |", "|Not available    |")
    with pytest.raises(ValueError, match="missing the Utilization Estimates 'Available' row"):
        parse_csynth_rpt(no_available)


def test_vivado_synth_rpt_missing_row() -> None:
    text = _read(VIVADO / "vivado_synth.rpt").replace("| DSPs ", "| XXXX ")
    with pytest.raises(ValueError, match=r"missing utilization row\(s\) for DSP"):
        parse_vivado_synth_rpt(text)


# --------------------------------------------------------------------------- parts
def test_parts_match_vendor_reports() -> None:
    vitis = parse_csynth_xml(_read(VITIS_XML))
    vivado = parse_csynth_xml(_read(VIVADO / "myproject_csynth.xml"))
    assert part_resources(vitis["part"]).as_dict() == vitis["available"]
    assert part_resources(vivado["part"]).as_dict() == vivado["available"]
    synth = parse_vivado_synth_rpt(_read(VIVADO / "vivado_synth.rpt"))
    device = part_resources(synth["device"])  # report_utilization drops the 'xc' prefix
    assert device.part == "xc7z020-clg400-1"
    for key in ("LUT", "FF", "DSP", "BRAM_18K"):
        assert synth["resources"][key]["available"] == device.as_dict()[key]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("xcvu13p-flga2577-2-e", (1_728_000, 3_456_000, 12_288, 5_376, 1_280)),
        ("xcvu9p-flga2104-2L-e", (1_182_240, 2_364_480, 6_840, 4_320, 960)),
        ("xcvu9p-flga2104-2-e", (1_182_240, 2_364_480, 6_840, 4_320, 960)),
        ("xc7vx690tffg1927-2", (433_200, 866_400, 3_600, 2_940, 0)),
        ("xc7z020-clg400-1", (53_200, 106_400, 220, 280, 0)),
    ],
)
def test_part_resources_known(name: str, expected: tuple[int, ...]) -> None:
    part = part_resources(name)
    assert part.part == name
    assert (part.lut, part.ff, part.dsp, part.bram_18k, part.uram) == expected


@pytest.mark.parametrize(
    ("name", "device"),
    [
        ("XCVU9P-FLGA2104-2L-E", "xcvu9p"),
        ("xcvu9p-flgb2104-1-i", "xcvu9p"),
        ("xcvu13p-fhga2104-3-e", "xcvu13p"),
        ("xc7vx690tffg1761-2", "xc7vx690t"),
        ("xc7z020clg484-1", "xc7z020"),
        ("7z020clg400-1", "xc7z020"),
    ],
)
def test_part_resources_other_grades_and_packages(name: str, device: str) -> None:
    assert part_resources(name).device == device


@pytest.mark.parametrize(
    "name", ["xcvu9", "xcvu9p1-flga2104-2-e", "xc7z0201-clg400-1", "xcku115-flvb2104-2-e", ""]
)
def test_part_resources_unknown(name: str) -> None:
    with pytest.raises(KeyError, match="known parts: .*xcvu13p-flga2577-2-e"):
        part_resources(name)


def test_part_database_is_frozen() -> None:
    part = PARTS["xcvu9p-flga2104-2-e"]
    assert isinstance(part, PartResources)
    with pytest.raises(AttributeError):
        part.lut = 0  # type: ignore[misc]
    assert known_parts() == sorted(PARTS)
    assert part.to_json()["device"] == "xcvu9p"


def test_vendor_reports_are_used_only_for_their_own_project(tmp_path: Path) -> None:
    """A report of another top function, another part, or older than the build is refused, each named."""
    import os
    import time

    from l1ad.reports.budget import vendor_refusal

    _hls4ml_vivado_layout(tmp_path)
    found = find_vendor_reports(tmp_path)
    own = {"project_name": "myproject", "part": "xc7z020-clg400-1"}  # what the fixture reports describe
    built = time.time() - 3600  # the reports were copied after this build
    assert vendor_refusal(found, own, built) is None
    other_top = vendor_refusal(found, {**own, "project_name": "l1ad_ae_top"}, built)
    assert "top function 'myproject', the project's is 'l1ad_ae_top'" in other_top
    other_part = vendor_refusal(found, {**own, "part": "xcvu13p-flga2577-2-e"}, built)
    assert "part xc7z020-clg400-1, the project's is xcvu13p-flga2577-2-e" in other_part
    assert "device 7z020clg400-1" in other_part  # the Vivado utilization report names its device too
    stale_file = found["files"][-1]
    os.utime(stale_file, (built - 10, built - 10))
    stale = vendor_refusal(found, own, built)
    assert stale == f"{stale_file} older than the project's build (rebuild the reports)"
    vitis = vendor_refusal(
        find_vendor_reports(VITIS), {"project_name": "Topo2A_AD_proj", "part": "xcvu9p-flga2104-2-e"}, None
    )
    assert vitis is None


def test_synthesis_over_csynthesis_ratio(tmp_path: Path) -> None:
    """The one C-synthesis + Vivado synthesis pair: the report states synth / csynth per resource."""
    from l1ad.reports.budget import from_vendor

    _hls4ml_vivado_layout(tmp_path)
    row = from_vendor(find_vendor_reports(tmp_path), 5.0)
    cs = parse_csynth_xml((VIVADO / "myproject_csynth.xml").read_text())["resources"]
    syn = parse_vivado_synth_rpt((VIVADO / "vivado_synth.rpt").read_text())["resources"]
    expected = {k: syn[k]["used"] / cs[k] for k in ("LUT", "FF", "DSP")}
    assert row["synth_over_csynth"] == pytest.approx(expected, rel=1e-12)
    assert all(v < 1 for v in expected.values())  # here synthesis came out below every C-synthesis estimate
    assert row["resources"] == {k: syn[k]["used"] for k in ("LUT", "FF", "DSP", "BRAM_18K")}
