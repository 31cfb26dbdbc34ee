"""cam_server's golden cases through a real camera → pipeline stream (processing-parity.md §5).

Per case: a psi-bsread ``Sender`` in this process publishes the golden input frame over and over
(increasing pulse ids, one timestamp per pulse id) as a SwissFEL camera does; a camioc **bsread
camera** (``source_type: bsread``, with the golden ``camera_calibration`` for the calibrated
frames ``v1``/``v3``) reads it; a **processing pipeline** created with psi-camserver-client's
``PipelineClient`` from the golden config processes it; its output stream is read with psi-bsread.
The received message must reproduce every field of cam_server's result (``compare_results``, the
parity tolerances; centre of mass and rms as in the core's golden test) and be bit for bit what
camioc's processing core computes in this process from the same frame; the stream path must keep
what the camera sent: the frame, the axes (the golden ``vN_x``/``vN_y``, float32, exactly), pulse
ids and their timestamps, channel dtypes.

One camioc server for the module; each case has its own sender, camera and pipeline instance.
The pipeline may join the camera stream mid-way (every frame is the same picture, so any output
is a complete result); for ``averaging`` every output is the mean of one full set of frames.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from typing import Any

import bsread
import numpy as np
import pytest
from bsread.sender import Sender
from cam_server_client import CamClient, PipelineClient
from cam_server_client.utils import get_host_port_from_stream_address

from camioc.config.camera import CameraConfig
from camioc.config.pipeline import PipelineConfig
from camioc.processing import ImagePipeline
from camioc.sources.transform import camera_axes
from tests.support.golden import (
    NO_BEAM_FRAME,
    GoldenCase,
    compare_results,
    expected_value,
    frame_of,
    golden_cases,
    golden_inputs,
)
from tests.support.server import CamiocServer, free_port, running_camioc

#: ``<frame>-<golden config>``: calibrated axes (v1, v3), good region + slices both ways, averaging,
#: ROI clamping, background, and pipeline mirror/rotation/binning (applied to the axes too).
CASE_IDS = (
    "v1-basic",
    "v3-slices_vertical_even",
    "v2-slices_horizontal_7",
    "v1-slices_horizontal_7",
    "v0-averaging_4_threshold",
    "v3-averaging_4_threshold",
    "v4-threshold_roi_clamped",
    "v1-background_unsigned",
    "v1-ortho_270_mirror_x",
    "v3-mirror_x_rotate_nearest",
    "v3-binning_3x2",
)
#: Frames per second the test camera sends (paced, not a wait).
SEND_INTERVAL = 0.04
#: First pulse id of every test camera; timestamps are (TIMESTAMP_SEC + pulse id, pulse id).
FIRST_PULSE_ID = 1_000_000
TIMESTAMP_SEC = 1_700_000_000
#: Output messages read per case (the last one is compared; all are checked for the stream path).
MESSAGES = 3
RECEIVE_TIMEOUT = 40.0
#: Centre of mass and rms: they inherit the Gaussian fit's last digits (MINPACK stops within its
#: xtol), so end to end they are held to the tolerance of the core's golden test
#: (tests/unit/processing/test_golden_parity.py). The stream itself adds nothing: every field is
#: also compared bit for bit with the core run in this process on the same frame.
COM_RMS_RTOL = 2e-6


def case_by_id(case_id: str) -> GoldenCase:
    for case in golden_cases():
        if case.id == case_id:
            return case
    raise KeyError(f"no golden case {case_id}")


# ------------------------------------------------------------------------------------------------ camera feed
class GoldenCamera:
    """A psi-bsread PUB sender publishing one frame as ``<name>:FPICTURE`` from its own thread."""

    def __init__(self, name: str, image: np.ndarray) -> None:
        self.name = name
        self.channel = f"{name}:FPICTURE"
        self.image = image
        self.port = free_port()
        self.address = f"tcp://127.0.0.1:{self.port}"
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"golden-{name}", daemon=True)

    def _run(self) -> None:
        try:
            sender = Sender(port=self.port, address="tcp://127.0.0.1", mode=bsread.PUB, block=False,
                            queue_size=10)
            sender.open()
        except BaseException as exc:  # reported by start()
            self.error = exc
            self._ready.set()
            raise
        self._ready.set()
        try:
            pulse_id = FIRST_PULSE_ID
            while not self._stop.is_set():
                sender.send(data={self.channel: self.image}, pulse_id=pulse_id,
                            timestamp=(TIMESTAMP_SEC + pulse_id, pulse_id))
                pulse_id += 1
                self._stop.wait(SEND_INTERVAL)  # pacing of the camera, not a wait for a condition
        except BaseException as exc:
            self.error = exc
            raise
        finally:
            sender.close()

    def start(self) -> GoldenCamera:
        self._thread.start()
        assert self._ready.wait(10), "the test camera's sender did not open"
        if self.error is not None:
            raise self.error
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)
        assert not self._thread.is_alive(), "the test camera's sender did not stop"


# ------------------------------------------------------------------------------------------------ fixtures
@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CamiocServer]:
    with running_camioc(tmp_path_factory.mktemp("camioc_golden_stream")) as server:
        yield server


@dataclass
class Streamed:
    """What one case's pipeline stream delivered."""

    case: GoldenCase
    camera: str
    messages: list[bsread.Message]
    camera_message: bsread.Message

    @property
    def camera_data(self) -> dict[str, Any]:
        return values(self.camera_message)

    @property
    def last(self) -> dict[str, Any]:
        return values(self.messages[-1])


def values(message: bsread.Message) -> dict[str, Any]:
    return {name: channel.value for name, channel in message.data.data.items()}


def read_stream(address: str, count: int, timeout: float = RECEIVE_TIMEOUT) -> list[bsread.Message]:
    """``count`` consecutive messages of a stream, read with psi-bsread as a user does."""
    host, port = get_host_port_from_stream_address(address)
    messages: list[bsread.Message] = []
    deadline = time.monotonic() + timeout
    with bsread.Source(host=host, port=port, mode=bsread.SUB, receive_timeout=500) as stream:
        while len(messages) < count:
            assert time.monotonic() < deadline, (
                f"only {len(messages)} of {count} messages from {address} in {timeout} s"
            )
            message = stream.receive()
            if message is not None:
                messages.append(message)
    return messages


@pytest.fixture(scope="module")
def streamed(server: CamiocServer) -> Any:
    """``streamed(case_id)`` → :class:`Streamed` (each case runs once per module, on first use)."""
    cams = CamClient(server.camera_url)
    pipes = PipelineClient(server.pipeline_url)

    @cache
    def run(case_id: str) -> Streamed:
        case = case_by_id(case_id)
        image, x_axis, y_axis, background = frame_of(case)
        name = f"golden_{case.frame}_{case.config_name}".replace("-", "_")
        camera = GoldenCamera(name, image).start()
        instance_id = None
        try:
            cams.set_camera_config(name, {
                "source": camera.address, "source_type": "bsread", "mode": "SUB",
                "camera_calibration": dict(case.calibration) if case.calibration else None,
                "no_client_timeout": 2.0,
            })
            config: dict[str, Any] = {"camera_name": name, "pipeline_type": "processing", **case.config}
            if case.config.get("image_background_enable"):
                background_id = f"golden_bg_{case.frame}"
                pipes.set_background_image_array(background_id, background)
                config["image_background"] = background_id
            instance_id, address = pipes.create_instance_from_config(config)
            messages = read_stream(address, MESSAGES)
            # the camera's own stream: the axes it derives from the calibration
            camera_message = read_stream(cams.get_instance_stream(name), 1)[0]
            assert camera.error is None, f"test camera failed: {camera.error!r}"
            return Streamed(case, name, messages, camera_message)
        finally:
            if instance_id is not None:
                pipes.stop_instance(instance_id)
            camera.stop()

    return run


def applied(expected: Any, effective: Any) -> bool:
    """``effective`` (from processing_parameters) holds the golden config value ``expected``.

    Nested settings (good region, slices, rotation) may have gained their defaults.
    """
    if isinstance(expected, dict):
        return isinstance(effective, dict) and all(applied(v, effective.get(k)) for k, v in expected.items())
    return effective == expected


def core_result(case: GoldenCase, background_id: str | None) -> dict[str, Any]:
    """The case through camioc's processing core in this process (what the worker should send)."""
    image, x_axis, y_axis, background = frame_of(case)
    config = dict(case.config, camera_name="golden")
    if background_id:
        config["image_background"] = background_id
    effective = PipelineConfig.from_dict(config, name="golden").to_dict()
    pipeline = ImagePipeline(effective, background_loader=lambda _id: background)
    out = None
    for pulse_id in range(abs(int(case.config.get("averaging") or 1))):
        out = pipeline.process(image, pulse_id, 1.0, x_axis, y_axis)
    assert out is not None
    return out


def differs_from_core(case: GoldenCase, stream: dict[str, Any], core: dict[str, Any]) -> list[str]:
    """Golden fields whose streamed value is not bit for bit (value, shape, dtype) the core's."""
    problems = []
    for name in case.results:
        a, b = stream.get(name), core.get(name)
        if a is None or b is None:
            if (a is None) != (b is None):
                problems.append(f"{name}: stream {a!r}, core {b!r}")
            continue
        if isinstance(a, str) or isinstance(b, str):
            same = a == b
        else:
            a, b = np.asarray(a), np.asarray(b)
            same = a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b, equal_nan=True)
        if not same:
            problems.append(f"{name}: stream {a!r} != core {b!r}")
    return problems


def show(problems: list[str]) -> str:
    return "\n  ".join(["fields differing from cam_server's golden result:", *problems])


# ------------------------------------------------------------------------------------------------ tests
@pytest.mark.parametrize("case_id", CASE_IDS)
def test_golden_case_through_camera_and_pipeline(streamed: Any, case_id: str) -> None:
    result = streamed(case_id)
    case = result.case
    image, x_axis, y_axis, _ = frame_of(case)

    # camera stream: cam_server's six channels, the frame as sent, the golden axes exactly
    # (descending, from the calibration, for v1/v3)
    camera = result.camera_data
    assert set(camera) == {"image", "timestamp", "width", "height", "x_axis", "y_axis"}
    assert camera["image"].dtype == image.dtype and camera["image"].shape == image.shape
    np.testing.assert_array_equal(camera["image"], image)
    assert (camera["width"], camera["height"]) == (image.shape[1], image.shape[0])
    camera_pulse_id = result.camera_message.data.pulse_id
    assert camera["timestamp"] == pytest.approx(TIMESTAMP_SEC + camera_pulse_id + camera_pulse_id * 1e-9, abs=1e-6)
    cam_x, cam_y = camera["x_axis"], camera["y_axis"]
    assert cam_x.dtype == np.float32 and cam_y.dtype == np.float32
    np.testing.assert_array_equal(cam_x, x_axis, err_msg="camera x_axis is not the golden vN_x")
    np.testing.assert_array_equal(cam_y, y_axis, err_msg="camera y_axis is not the golden vN_y")

    # stream path: pulse ids of the test camera, in order, with their own timestamps
    pulse_ids = [m.data.pulse_id for m in result.messages]
    assert all(p >= FIRST_PULSE_ID for p in pulse_ids), pulse_ids
    assert pulse_ids == sorted(set(pulse_ids)), f"pulse ids not increasing: {pulse_ids}"
    for message in result.messages:
        # the camera re-sends the timestamp as float seconds (as cam_server's bsread camera does:
        # sec + ns / 1e9), which keeps it to float64's ~0.24 µs at this epoch
        assert message.data.global_timestamp == TIMESTAMP_SEC + message.data.pulse_id
        assert abs(message.data.global_timestamp_offset - message.data.pulse_id) < 1000
    averaging = int(case.config.get("averaging") or 1)
    if averaging > 1:
        # one output per full set: consecutive outputs are at least a set apart
        steps = np.diff(pulse_ids)
        assert (steps >= averaging).all(), f"averaging {averaging}: outputs at pulse ids {pulse_ids}"

    data = result.last
    params = json.loads(data["processing_parameters"])
    not_applied = {key: params.get(key) for key, value in case.config.items() if not applied(value, params.get(key))}
    assert not not_applied, f"processing_parameters lack the golden config {dict(case.config)}: {not_applied}"
    problems = compare_results(case, data, moments_rtol=None if case.frame == NO_BEAM_FRAME else COM_RMS_RTOL)
    assert not problems, show(problems)
    background_id = params.get("image_background") if case.config.get("image_background_enable") else None
    core_problems = differs_from_core(case, data, core_result(case, background_id))
    assert not core_problems, "\n  ".join(["stream result differs from the processing core's:", *core_problems])
    # the axes, exactly (the golden results' axes are the camera's, ROI-cut where a ROI is set)
    for axis in ("x_axis", "y_axis"):
        expected = expected_value(case.results[axis])
        assert data[axis].dtype == expected.dtype == np.float32
        np.testing.assert_array_equal(data[axis], expected, err_msg=f"pipeline {axis} is not cam_server's")


@pytest.mark.parametrize("frame", ["v1", "v3"])
def test_camera_axes_from_the_golden_calibration(frame: str) -> None:
    """camioc's camera axes of a calibrated frame are the golden ``vN_x``/``vN_y`` bit for bit.

    (Locates an axis failure of the stream test: camera arithmetic here, transport there.)
    """
    case = next(c for c in golden_cases() if c.frame == frame)
    assert case.calibration is not None
    image = golden_inputs()[frame]
    config = CameraConfig.from_dict({"name": "golden", "source": "tcp://127.0.0.1:1", "source_type": "bsread",
                                     "camera_calibration": dict(case.calibration)})
    x_axis, y_axis = camera_axes(config, image.shape[1], image.shape[0])
    assert x_axis.dtype == y_axis.dtype == np.float32
    np.testing.assert_array_equal(x_axis, golden_inputs()[f"{frame}_x"])
    np.testing.assert_array_equal(y_axis, golden_inputs()[f"{frame}_y"])


IMAGE_CASE_IDS = ("v4-threshold_roi_clamped", "v1-background_unsigned", "v0-averaging_4_threshold")


@pytest.mark.parametrize("case_id", IMAGE_CASE_IDS)
def test_streamed_image_is_the_processed_image(streamed: Any, case_id: str) -> None:
    """The message's ``image`` is the processed image: cam_server's ``image_shape`` and ``image_sum``."""
    result = streamed(case_id)
    image = result.last["image"]
    assert isinstance(image, np.ndarray) and image.ndim == 2
    assert image.shape == result.case.image_shape, f"shape {image.shape} instead of {result.case.image_shape}"
    total = float(image.sum(dtype=np.float64))
    assert total == pytest.approx(result.case.image_sum, rel=1e-12, abs=0), (
        f"image sum {total!r} instead of {result.case.image_sum!r}"
    )
