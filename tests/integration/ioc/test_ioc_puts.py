"""Writable PVs call the CameraService; bad puts are refused with a message and change nothing."""

from __future__ import annotations

import json

import pytest
from ioc_support import put_failed, wait_for

from camioc.core.api import DetectorState


def cam(prefix: str, name: str, camera: str = "cam_a") -> str:
    return f"{prefix}{camera}:cam1:{name}"


def img(prefix: str, name: str, camera: str = "cam_a") -> str:
    return f"{prefix}{camera}:image1:{name}"


async def test_acquire_starts_and_stops_the_instance(ioc, ca, service, pv_prefix):
    result = await ca.caput(cam(pv_prefix, "Acquire"), "1", "-c")
    assert not put_failed(result), result.output
    assert service.calls_of("get_stream") == [("cam_a",)]
    assert await ca.get(cam(pv_prefix, "Acquire_RBV")) == "Acquiring"
    assert await ca.get(cam(pv_prefix, "DetectorState_RBV")) == "Acquire"
    assert await ca.get_text(cam(pv_prefix, "StreamAddress_RBV")) == service.statuses["cam_a"].stream_address
    assert await ca.get(cam(pv_prefix, "ArraySize0_RBV")) == "320"
    assert await ca.get(cam(pv_prefix, "ArraySize1_RBV")) == "240"
    assert await ca.get(cam(pv_prefix, "DataType_RBV")) == "UInt16"
    await wait_for(lambda: _json(ca, f"{pv_prefix}Instances_RBV", ["cam_a"]), message="Instances_RBV")
    assert await ca.get(f"{pv_prefix}NumInstances_RBV") == "1"

    result = await ca.caput(cam(pv_prefix, "Acquire"), "Done", "-c")
    assert not put_failed(result), result.output
    assert service.calls_of("stop") == [("cam_a",)]
    assert await ca.get(cam(pv_prefix, "Acquire_RBV")) == "Done"
    await wait_for(lambda: _json(ca, f"{pv_prefix}Instances_RBV", []), message="Instances_RBV")


async def _json(ca, pv: str, expected) -> bool:
    text = await ca.try_get(pv, "-S")
    return text is not None and json.loads(text) == expected


async def test_acquire_failure_is_a_failed_put(ioc, ca, service, pv_prefix):
    service.configs["cam_b"]["offline"] = True
    result = await ca.caput(cam(pv_prefix, "Acquire", "cam_b"), "1")
    assert put_failed(result) and "Camera 'cam_b' is offline." in result.output, result.output
    assert await ca.get(cam(pv_prefix, "Acquire", "cam_b")) == "Done"
    await wait_for(lambda: _state(ca, pv_prefix, "cam_b", "Error"), message="DetectorState_RBV Error")


async def _state(ca, prefix, camera, expected) -> bool:
    return await ca.try_get(cam(prefix, "DetectorState_RBV", camera)) == expected


async def test_reverse_x_changes_the_config_and_readback(ioc, ca, service, pv_prefix):
    assert await ca.get(cam(pv_prefix, "ReverseX_RBV")) == "No"
    result = await ca.caput(cam(pv_prefix, "ReverseX"), "1", "-c")
    assert not put_failed(result), result.output
    assert service.calls_of("update_config") == [("cam_a", {"mirror_x": True})]
    assert service.configs["cam_a"]["mirror_x"] is True
    assert await ca.get(cam(pv_prefix, "ReverseX_RBV")) == "Yes"
    assert await ca.get(cam(pv_prefix, "ReverseX")) == "Yes"
    result = await ca.caput(cam(pv_prefix, "ReverseX"), "No", "-c")
    assert not put_failed(result), result.output
    assert service.configs["cam_a"]["mirror_x"] is False
    assert await ca.get(cam(pv_prefix, "ReverseX_RBV")) == "No"


INVALID_PUTS = [
    ("ReverseX", "7", "7 is not a valid state"),
    ("BinX", "0", "Cannot write data 0. Limits are set to 1 and 256."),
    ("BinY", "1000", "Limits are set to 1 and 256"),
    ("SizeX", "-5", "Limits are set to 0 and 65535"),
    ("Rotate", "4", "Limits are set to 0 and 3"),
]


async def test_invalid_puts_are_refused_and_change_nothing(ioc, ca, service, pv_prefix):
    """One IOC for all cases (starting one per case costs more than the checks)."""
    before_config = dict(service.configs["cam_a"])
    for pv, value, message in INVALID_PUTS:
        before = await ca.get(cam(pv_prefix, pv))
        before_rbv = await ca.get(cam(pv_prefix, f"{pv}_RBV"))
        result = await ca.caput(cam(pv_prefix, pv), value)
        assert put_failed(result), result.output
        assert message in result.output, result.output
        assert await ca.get(cam(pv_prefix, pv)) == before, pv  # and the PV still reads (no poisoned enum)
        assert await ca.get(cam(pv_prefix, f"{pv}_RBV")) == before_rbv, pv
    assert service.calls_of("update_config") == []
    assert service.configs["cam_a"] == before_config


async def test_invalid_enum_string_is_refused(ioc, ca, service, pv_prefix):
    """caput checks enum strings itself; caproto's sync client sends one as DBR_STRING: refused too."""
    import asyncio

    from caproto import ChannelType, ErrorResponseReceived
    from caproto.sync.client import write

    with pytest.raises(ErrorResponseReceived, match="ECA_PUTFAIL.*CaprotoConversionError"):
        await asyncio.to_thread(write, cam(pv_prefix, "ReverseY"), "Maybe", notify=True,
                                data_type=ChannelType.STRING, timeout=5, repeater=False)
    assert service.calls_of("update_config") == []
    assert await ca.get(cam(pv_prefix, "ReverseY")) == "No"


async def test_service_errors_refuse_the_put_with_their_message(ioc, ca, service, pv_prefix):
    for name, value in (("MinX", "300"), ("SizeY", "10")):
        assert not put_failed(await ca.caput(cam(pv_prefix, name), value, "-c"))
    result = await ca.caput(cam(pv_prefix, "SizeX"), "100")  # 300 + 100 > 320: the service refuses
    assert put_failed(result)
    assert "ConfigError ROI [300, 100, 0, 10] does not fit the 320x240 image." in result.output, result.output
    assert service.configs["cam_a"]["roi"] is None
    assert await ca.get(cam(pv_prefix, "SizeX")) == "0"
    assert await ca.get(cam(pv_prefix, "SizeX_RBV")) == "0"


async def test_roi_is_entered_one_pv_at_a_time_and_removed_with_size_zero(ioc, ca, service, pv_prefix):
    for name, value in (("MinX", "10"), ("SizeX", "100"), ("MinY", "20")):
        assert not put_failed(await ca.caput(cam(pv_prefix, name), value, "-c"))
        assert service.configs["cam_a"]["roi"] is None, "no ROI until both sizes are > 0"
    assert await ca.get(cam(pv_prefix, "MinX")) == "10", "pending setpoints are kept"
    assert await ca.get(cam(pv_prefix, "MinX_RBV")) == "0"
    assert not put_failed(await ca.caput(cam(pv_prefix, "SizeY"), "50", "-c"))
    assert service.configs["cam_a"]["roi"] == [10, 100, 20, 50]
    rbvs = [await ca.get(cam(pv_prefix, f"{name}_RBV")) for name in ("MinX", "SizeX", "MinY", "SizeY")]
    assert rbvs == ["10", "100", "20", "50"]
    assert not put_failed(await ca.caput(cam(pv_prefix, "SizeX"), "0", "-c"))
    assert service.configs["cam_a"]["roi"] is None
    rbvs = [await ca.get(cam(pv_prefix, f"{name}_RBV")) for name in ("MinX", "SizeX", "MinY", "SizeY")]
    assert rbvs == ["0", "0", "0", "0"]
    assert await ca.get(cam(pv_prefix, "SizeY")) == "50"


async def test_binning_and_rotation(ioc, ca, service, pv_prefix):
    await service.get_stream("cam_a")
    for name, value in (("BinX", "2"), ("BinY", "4"), ("Rotate", "1")):
        assert not put_failed(await ca.caput(cam(pv_prefix, name), value, "-c"))
        assert await ca.get(cam(pv_prefix, f"{name}_RBV")) == value
    assert (service.configs["cam_a"]["binning_x"], service.configs["cam_a"]["binning_y"]) == (2, 4)
    assert service.configs["cam_a"]["rotate"] == 1
    await wait_for(lambda: _equals(ca, cam(pv_prefix, "ArraySize0_RBV"), "60"), message="rotated width")
    assert await ca.get(cam(pv_prefix, "ArraySize1_RBV")) == "160"


async def _equals(ca, pv, expected) -> bool:
    return await ca.try_get(pv) == expected


async def test_config_changed_elsewhere_shows_on_readbacks_and_setpoints(ioc, ca, service, pv_prefix):
    await service.update_config("cam_a", {"mirror_y": True, "roi": [1, 2, 3, 4], "binning_x": 2})
    await wait_for(lambda: _equals(ca, cam(pv_prefix, "ReverseY_RBV"), "Yes"), message="ReverseY_RBV")
    assert await ca.get(cam(pv_prefix, "ReverseY")) == "Yes"
    assert await ca.get(cam(pv_prefix, "BinX")) == "2"
    assert [await ca.get(cam(pv_prefix, n)) for n in ("MinX", "SizeX", "MinY", "SizeY")] == ["1", "2", "3", "4"]
    await service.update_config("cam_a", {"roi": None})
    await wait_for(lambda: _equals(ca, cam(pv_prefix, "SizeX_RBV"), "0"), message="ROI removed")
    assert [await ca.get(cam(pv_prefix, n)) for n in ("SizeX", "SizeY")] == ["0", "0"]


async def test_record_fields_are_read_only(ioc, ca, pv_prefix):
    for field, value in (("DESC", "hacked"), ("HOPR", "5000"), ("EGU", "m")):
        result = await ca.caput(cam(pv_prefix, f"BinX.{field}"), value)
        assert "Write access denied" in result.output, result.output
    assert await ca.get(cam(pv_prefix, "BinX.DESC")) == "Horizontal binning (binning_x)"
    assert not put_failed(await ca.caput(cam(pv_prefix, "BinX"), "256", "-c"))


async def test_readbacks_are_not_writable(ioc, ca, pv_prefix):
    result = await ca.caput(cam(pv_prefix, "BinX_RBV"), "3")
    assert "Write access denied" in result.output, result.output


async def test_stop_all(ioc, ca, service, pv_prefix):
    await service.get_stream("cam_a")
    await service.get_stream("cam_b")
    result = await ca.caput(f"{pv_prefix}StopAll", "1", "-c")
    assert not put_failed(result), result.output
    assert service.calls_of("stop_all") == [()]
    assert not any(status.running for status in service.statuses.values())
    assert await ca.get(f"{pv_prefix}StopAll") == "Done"
    await wait_for(lambda: _equals(ca, f"{pv_prefix}NumInstances_RBV", "0"), message="NumInstances_RBV")


async def test_image_publishing_settings(ioc, ca, service, pv_prefix):
    assert service.publishing["cam_a"] == (True, 0.5), "the IOC applies its default period"
    assert not put_failed(await ca.caput(img(pv_prefix, "MinCallbackTime"), "0.25", "-c"))
    assert service.publishing["cam_a"] == (True, 0.25)
    assert float(await ca.get(img(pv_prefix, "MinCallbackTime_RBV"))) == 0.25
    assert not put_failed(await ca.caput(img(pv_prefix, "EnableCallbacks"), "Disable", "-c"))
    assert service.publishing["cam_a"] == (False, 0.25)
    assert await ca.get(img(pv_prefix, "EnableCallbacks_RBV")) == "Disable"
    result = await ca.caput(img(pv_prefix, "MinCallbackTime"), "-1")
    assert put_failed(result), result.output
    assert service.publishing["cam_a"] == (False, 0.25)


async def test_camera_error_makes_data_readbacks_invalid(ioc, ca, service, pv_prefix):
    await service.get_stream("cam_a")
    service.emit_status("cam_a", state=DetectorState.Error, message="Camera 'cam_a' is offline.")
    await wait_for(lambda: _alarm(ca, cam(pv_prefix, "ArrayCounter_RBV"), "UDF INVALID"), message="INVALID alarm")
    assert await ca.get_text(cam(pv_prefix, "StatusMessage_RBV")) == "Camera 'cam_a' is offline."
    assert await _alarm(ca, cam(pv_prefix, "DetectorState_RBV"), "STATE MAJOR")
    assert await _alarm(ca, cam(pv_prefix, "MaxSizeX_RBV"), "UDF INVALID")
    assert await _alarm(ca, cam(pv_prefix, "BinX_RBV"), ""), "settings readbacks keep their alarm"
    assert await _alarm(ca, cam(pv_prefix, "ArrayCounter_RBV", "cam_b"), ""), "other cameras are unaffected"
    service.emit_status("cam_a", state=DetectorState.Disconnected)
    await wait_for(lambda: _alarm(ca, cam(pv_prefix, "ArrayCounter_RBV"), "COMM INVALID"), message="COMM alarm")
    service.emit_status("cam_a", state=DetectorState.Acquire, message="Running")
    await wait_for(lambda: _alarm(ca, cam(pv_prefix, "ArrayCounter_RBV"), ""), message="alarm cleared")
    assert await _alarm(ca, cam(pv_prefix, "DetectorState_RBV"), "")


async def _alarm(ca, pv: str, expected: str) -> bool:
    """``caget -a`` prints ``name date time value [status severity]``."""
    result = await ca.caget("-a", pv)
    fields = result.stdout.split()
    return result.returncode == 0 and fields[:1] == [pv] and " ".join(fields[4:]) == expected


async def test_status_updates_are_rate_limited_and_coalesced(ioc, ca, service, pv_prefix, epics_ca):
    """A burst of statuses reaches clients as a few updates (<= result_publish_rate), the last one last."""
    import asyncio

    pv = cam(pv_prefix, "ArrayCounter_RBV")
    values: list[int] = []

    def on_value(value=None, **_):
        values.append(int(value))

    monitor = await asyncio.to_thread(epics_ca.PV, pv, callback=on_value, auto_monitor=True)
    try:
        assert await asyncio.to_thread(monitor.wait_for_connection, 5)
        await wait_for(lambda: values, message="initial monitor update")
        await service.get_stream("cam_a")
        started = asyncio.get_running_loop().time()
        for count in range(1, 501):
            service.emit_status("cam_a", frame_count=count)
            if count % 50 == 0:
                await asyncio.sleep(0.01)
        await wait_for(lambda: values[-1] == 500, message="last status published")
        elapsed = asyncio.get_running_loop().time() - started
        updates = len(values) - 1
        assert updates <= 2 + elapsed * 50, f"{updates} updates in {elapsed:.2f} s at 50 Hz max"
        assert values == sorted(values)
    finally:
        await asyncio.to_thread(monitor.disconnect)


async def test_refused_puts_are_logged_as_one_warning(ioc, ca, pv_prefix, caplog):
    import logging

    caplog.set_level(logging.INFO, logger="caproto.circ")
    result = await ca.caput(cam(pv_prefix, "BinX"), "0")
    assert put_failed(result)
    await wait_for(lambda: [r for r in caplog.records if "Refused put" in r.getMessage()], message="log record")
    (record,) = [r for r in caplog.records if "Refused put" in r.getMessage()]
    assert record.levelno == logging.WARNING and record.exc_info is None
    assert "CannotExceedLimits" in record.getMessage()


async def test_the_reason_of_a_refused_put_shows_on_status_message(ioc, ca, service, pv_prefix):
    """A CA client sees only that its write failed: StatusMessage_RBV says why, until a put succeeds."""
    for name, value in (("MinX", "300"), ("SizeY", "10")):
        assert not put_failed(await ca.caput(cam(pv_prefix, name), value, "-c"))
    assert put_failed(await ca.caput(cam(pv_prefix, "SizeX"), "100"))
    message = await ca.get_text(cam(pv_prefix, "StatusMessage_RBV"))
    assert message == "SizeX refused: ROI [300, 100, 0, 10] does not fit the 320x240 image.", message
    assert not put_failed(await ca.caput(cam(pv_prefix, "MinX"), "0", "-c"))
    await wait_for(lambda: _status_is_not_a_refusal(ca, pv_prefix), message="StatusMessage_RBV cleared")


async def _status_is_not_a_refusal(ca, prefix) -> bool:
    text = await ca.try_get(cam(prefix, "StatusMessage_RBV"), "-S")
    return text is not None and "refused" not in text
