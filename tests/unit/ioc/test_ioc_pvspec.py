"""The PV spec tables follow EPICS' limits and areaDetector's conventions."""

from __future__ import annotations

import numpy as np
import pytest

from camioc.ioc import CAPROTO_ENVIRONMENT_DEFAULTS, configure_caproto_environment
from camioc.model.adcore import NO_READBACK
from camioc.model.blocks import (
    CAMERA_DATA_READBACKS,
    CAMERA_PVS,
    IMAGE_PVS,
    MAX_SLICES,
    NOT_OUT_FIELDS,
    PIPELINE_ARRAY_PVS,
    PIPELINE_PVS,
    SERVICE_PVS,
    TABLES,
    is_out_field,
    out_field_name,
    out_field_spec,
)
from camioc.model.pvnames import MAX_PV_NAME_LENGTH, camera_pv, image_pv, pipeline_pv, service_pv
from camioc.model.records import RECORD_TYPES, image_format, spec_by_attr

ALL = [(block, spec) for block, table in TABLES.items() for spec in table]
IDS = [f"{block}:{spec.name}" for block, spec in ALL]


@pytest.mark.parametrize(("block", "spec"), ALL, ids=IDS)
def test_every_pv_fits_epics_limits(block, spec):
    assert spec.record in RECORD_TYPES
    assert 0 < len(spec.desc) <= 40, "DESC is 40 characters at most"
    assert len(spec.egu) <= 15, "EGU is 15 characters at most"
    assert '"' not in spec.desc
    if spec.is_enum:
        assert 2 <= len(spec.enums) <= (2 if spec.record in ("bi", "bo") else 16)
        assert all(0 < len(text) <= 25 for text in spec.enums)
        assert not spec.severities or len(spec.severities) == len(spec.enums)
    if spec.writable and spec.record in ("ao", "longout"):
        assert spec.has_limits, "every numeric setting has control limits"
    if spec.name.endswith("_RBV"):
        assert not spec.writable, "readbacks are input records"


@pytest.mark.parametrize("table", list(TABLES.values()), ids=list(TABLES))
def test_names_and_attrs_are_unique_and_paired(table):
    names = [spec.name for spec in table]
    attrs = [spec.attr for spec in table]
    assert len(set(names)) == len(names)
    assert len(set(attrs)) == len(attrs)
    by_name = {spec.name: spec for spec in table}
    for spec in table:
        if spec.writable and spec.name != "StopAll" and spec.name not in NO_READBACK:  # ADCore has none either
            assert f"{spec.name}_RBV" in by_name, f"{spec.name} has no readback"


def test_contract_pvs_are_defined():
    contract_service = {"Version_RBV", "HEARTBEAT", "UPTIME", "START_CNT", "Cameras_RBV", "Pipelines_RBV",
                        "Instances_RBV", "NumInstances_RBV", "StopAll"}
    contract_camera = {"Acquire", "Acquire_RBV", "DetectorState_RBV", "StatusMessage_RBV", "ArrayCounter_RBV",
                       "ArrayRate_RBV", "ArraySize0_RBV", "ArraySize1_RBV", "MaxSizeX_RBV", "MaxSizeY_RBV",
                       "DataType_RBV", "ColorMode_RBV", "StreamAddress_RBV", "Clients_RBV"}
    for setting in ("ReverseX", "ReverseY", "Rotate", "BinX", "BinY", "MinX", "MinY", "SizeX", "SizeY"):
        contract_camera |= {setting, f"{setting}_RBV"}
    contract_image = {"ArrayData", "ArraySize0_RBV", "ArraySize1_RBV", "NDimensions_RBV", "DataType_RBV",
                      "ColorMode_RBV", "ArrayCounter_RBV", "UniqueId_RBV", "EnableCallbacks", "EnableCallbacks_RBV",
                      "MinCallbackTime", "MinCallbackTime_RBV", "PluginType_RBV"}
    assert contract_service <= {spec.name for spec in SERVICE_PVS}
    assert contract_camera <= {spec.name for spec in CAMERA_PVS}
    assert contract_image <= {spec.name for spec in IMAGE_PVS}
    assert set(CAMERA_DATA_READBACKS) <= set(spec_by_attr(CAMERA_PVS))


def test_full_names_stay_within_60_characters_for_typical_names():
    prefix, camera = "CAMIOC:", "SARES20-CAMS142-M5"  # a long SwissFEL camera name
    names = [service_pv(prefix, s.name) for s in SERVICE_PVS]
    names += [camera_pv(prefix, camera, s.name) for s in CAMERA_PVS]
    names += [image_pv(prefix, camera, s.name) for s in IMAGE_PVS]
    assert max(map(len, names)) <= MAX_PV_NAME_LENGTH


@pytest.mark.parametrize(
    ("dtype", "data_type", "ftvl"),
    [("uint8", "UInt8", "UCHAR"), ("int8", "Int8", "CHAR"), ("uint16", "UInt16", "SHORT"),
     ("int16", "Int16", "SHORT"), ("uint32", "UInt32", "LONG"), ("int32", "Int32", "LONG"),
     ("float32", "Float32", "FLOAT"), ("float64", "Float64", "DOUBLE"), ("int64", "Int64", "DOUBLE")],
)
def test_image_formats(dtype, data_type, ftvl):
    fmt = image_format(np.dtype(dtype))
    assert (fmt.data_type, fmt.ftvl) == (data_type, ftvl)
    assert image_format(dtype) == fmt


def test_image_format_refuses_unknown_dtypes():
    with pytest.raises(ValueError, match="complex128"):
        image_format("complex128")


def test_configure_caproto_environment_keeps_user_values():
    env = {"CAPROTO_SERVER_MAX_LATENCY_SEC": "0.5"}
    effective = configure_caproto_environment(env)
    assert effective["CAPROTO_SERVER_MAX_LATENCY_SEC"] == "0.5"
    assert env["CAPROTO_SERVER_HIGH_LOAD_TIMEOUT_SEC"] == CAPROTO_ENVIRONMENT_DEFAULTS["CAPROTO_SERVER_HIGH_LOAD_TIMEOUT_SEC"]


PIPELINE_CONTRACT = {
    "EnableCallbacks", "PluginType_RBV", "NDArrayPort_RBV", "DetectorState_RBV", "StatusMessage_RBV",
    "StreamAddress_RBV", "ReadOnly_RBV", "Config_RBV", "ArrayCounter_RBV", "ArrayRate_RBV", "ExecutionTime_RBV",
    "DroppedArrays_RBV", "UniqueId_RBV", "SaveBackground", "ValidBackground_RBV",
    "CentroidX_RBV", "CentroidY_RBV", "SigmaX_RBV", "SigmaY_RBV", "Total_RBV", "MinValue_RBV", "MaxValue_RBV",
    "FWHMX_RBV", "FWHMY_RBV", "GoodRegion:Total_RBV", "Coupling_RBV", "CouplingSlope_RBV", "CouplingOffset_RBV",
    "ProfileX_RBV", "ProfileY_RBV", "AxisX_RBV", "AxisY_RBV", "FitX:Curve_RBV", "FitY:Curve_RBV",
} | {f"{name}{rbv}" for name in (
    "EnableCallbacks", "CentroidThreshold", "ROI:MinX", "ROI:MinY", "ROI:SizeX", "ROI:SizeY", "ROI:Enable",
    "EnableBackground", "BackgroundId", "NumBackgroundImages", "GoodRegion:Enable", "GoodRegion:Threshold",
    "GoodRegion:GFScale", "Slices:Number", "Slices:Scale", "Slices:Orientation", "Averaging", "MaxArrayRate",
    "Pause") for rbv in ("", "_RBV")} | {
    f"{block}{value}_RBV" for block in ("FitX:", "FitY:", "GoodRegion:FitX:", "GoodRegion:FitY:")
    for value in ("Mean", "Sigma", "Amplitude", "Offset")} | {
    f"Slice{index}:{value}_RBV" for index in range(MAX_SLICES) for value in ("CenterX", "CenterY", "Sigma", "Total")}


def test_pipeline_contract_pvs_are_defined():
    names = {spec.name for spec in (*PIPELINE_PVS, *PIPELINE_ARRAY_PVS)}
    assert PIPELINE_CONTRACT <= names
    assert spec_by_attr(PIPELINE_PVS)["plugin_type"].value == "NDPluginStats"
    assert spec_by_attr(PIPELINE_PVS)["enable_background"].enums == ("Disable", "Enable", "Signed", "Passive")
    assert spec_by_attr(PIPELINE_PVS)["slices_orientation"].enums == ("vertical", "horizontal")


def test_result_readbacks_name_cam_server_outputs():
    sources = {spec.name: spec.source for spec in (*PIPELINE_PVS, *PIPELINE_ARRAY_PVS) if spec.source}
    assert sources["CentroidX_RBV"] == "x_center_of_mass"
    assert sources["SigmaY_RBV"] == "y_rms"
    assert sources["Total_RBV"] == "intensity"
    assert sources["FitX:Sigma_RBV"] == "x_fit_standard_deviation"
    assert sources["GoodRegion:FitY:Mean_RBV"] == "gr_y_fit_mean"
    assert sources["Slice3:Sigma_RBV"] == "slice_3_standard_deviation"
    assert sources["FitY:Curve_RBV"] == "y_fit_gauss_function"
    assert all(not spec.writable for spec in PIPELINE_PVS if spec.source)


def test_pipeline_names_stay_within_60_characters_for_typical_ids():
    names = [pipeline_pv("CAMIOC:", "SARES20-CAMS142-M5_sp1", s.name) for s in (*PIPELINE_PVS, *PIPELINE_ARRAY_PVS)]
    names += [image_pv("CAMIOC:", "SARES20-CAMS142-M5_sp1", s.name) for s in IMAGE_PVS]
    assert max(map(len, names)) <= MAX_PV_NAME_LENGTH


def test_out_fields():
    assert not (NOT_OUT_FIELDS & {"my_value", "x_fw", "slice_amount_2"})
    assert is_out_field("my_value") and is_out_field("x_fw")
    assert not is_out_field("x_center_of_mass") and not is_out_field("timestamp")
    assert not is_out_field("slice_20_center_x"), "slices without readbacks get no Out: either"
    assert out_field_name("beam energy/GeV") == "beam_energy_GeV"
    assert out_field_name("x" * 80) == "x" * 40
    spec = out_field_spec(3, 'a "quoted" output with a long name indeed')
    assert (spec.attr, spec.record, spec.name) == ("out_3", "ai", "Out:a__quoted__output_with_a_long_name_indee_RBV")
    assert len(spec.desc) <= 40 and '"' not in spec.desc
    assert out_field_spec(0, "label", text=True).record == "stringin"
