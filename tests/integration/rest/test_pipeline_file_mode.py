"""``mode: FILE`` pipelines through the real REST API (psi-camserver-client), read back with h5py.

cam_server's three layouts (compat Appendix A) dataset by dataset: every path, dtype and shape of
the file is checked against the channels of the same pipeline's bsread stream (read with
psi-bsread), plus ``records``, ``localtime``, ``change``, ``attributes``, the "Data format
changed" stop (exit code 2), camioc's own ``BSREAD`` layout, and the atomic ``.partial`` rename.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
from cam_server_client import PipelineClient

from tests.support.server import CamiocServer
from tests.support.waiting import receive, wait_until

RECORDS = 4
CAMERA = {"camera_name": "simulation2"}  # 640 x 480 uint16, 25 Hz


@pytest.fixture(scope="module")
def stream_channels(server: CamiocServer) -> dict[str, tuple[np.dtype[Any], tuple[int, ...]]]:
    """(dtype, shape) the HDF5 writer must use for each channel of this pipeline's output,
    from one message of the same pipeline published on bsread (numbers come as numpy scalars)."""
    client = PipelineClient(server.pipeline_url)
    _, stream = client.create_instance_from_config(dict(CAMERA))
    try:
        message = receive(stream)[0]
    finally:
        client.stop_all_instances()
    expected: dict[str, tuple[np.dtype[Any], tuple[int, ...]]] = {}
    for name, channel in message.data.data.items():
        value = channel.value
        if isinstance(value, str):
            expected[name] = (np.dtype("S1000"), ())
        elif value is not None:
            array = np.asarray(value)
            expected[name] = (array.dtype, array.shape)
    assert {"image", "x_axis", "width", "x_center_of_mass", "processing_parameters"} <= set(expected)
    assert expected["image"] == (np.dtype(np.uint16), (480, 640))
    return expected


def datasets(path: Path) -> dict[str, h5py.Dataset]:
    found: dict[str, Any] = {}
    with h5py.File(path) as f:
        f.visititems(lambda name, obj: found.__setitem__(name, (obj.dtype, obj.shape)) if isinstance(obj, h5py.Dataset) else None)
    return found


def run_to_completion(pipe: PipelineClient, config: dict[str, Any]) -> str:
    instance_id, address = pipe.create_instance_from_config(config)
    assert address == config["file"]  # a FILE pipeline's "stream" is its file
    pipe.wait_instance_completed(instance_id, timeout=30)
    assert pipe.get_instance_exit_code(instance_id) == 0
    return instance_id


LAYOUTS = {
    # layout: (pulse_id, global_timestamp, value path, timestamp path) of dataset set 1
    "DEFAULT": ("header1/pulse_id", "header1/global_timestamp", "data1/{}/value", "data1/{}/timestamp"),
    "FLAT": ("header1/pulse_id", "header1/global_timestamp", "data1/{}", "data1/{}_timestamp"),
    "BSH5": ("pulse_id", "global_timestamp", "{}/data", "{}/timestamp"),
}
GENERAL = {"general/created", "general/user", "general/pid", "general/host", "general/datasets"}


@pytest.mark.parametrize("layout", ["DEFAULT", "FLAT", "BSH5"])
def test_camserver_layouts_every_dataset(pipe: PipelineClient, tmp_path: Path, layout: str,
                                         stream_channels: dict[str, Any]) -> None:
    path = tmp_path / f"{layout}.h5"
    config = {**CAMERA, "mode": "FILE", "file": str(path), "records": RECORDS,
              "attributes": {"operator": "tester", "run": 12}}
    if layout != "DEFAULT":
        config["layout"] = layout.lower()  # case-insensitive
    run_to_completion(pipe, config)
    assert path.is_file() and not path.with_name(path.name + ".partial").exists()

    pid_path, gts_path, value, stamp = LAYOUTS[layout]
    expected = {pid_path: (np.dtype(np.uint64), (RECORDS,)), gts_path: (np.dtype(np.uint64), (RECORDS, 2))}
    for name, (dtype, shape) in stream_channels.items():
        expected[value.format(name)] = (dtype, (RECORDS, *shape))
        expected[stamp.format(name)] = (np.dtype(np.uint64), (RECORDS, 2))
    found = datasets(path)
    general = {name for name in found if name.startswith("general/")}
    assert general == GENERAL | {"general/operator", "general/run"}
    assert {name: found[name] for name in found if name not in general} == expected

    with h5py.File(path) as f:
        pulse_ids = f[pid_path][:]
        assert np.all(np.diff(pulse_ids.astype(np.int64)) > 0)
        np.testing.assert_array_equal(f[stamp.format("image")][:], f[gts_path][:])
        seconds = f[gts_path][:, 0].astype(np.float64) + f[gts_path][:, 1] * 1e-9
        np.testing.assert_allclose(seconds, f[value.format("timestamp")][:], atol=1e-6)
        assert f[value.format("image")][-1].max() > 0 and f[value.format("width")][0] == 640
        parameters = f[value.format("processing_parameters")][0]  # S1000: cut at 1000 bytes, as cam_server
        assert parameters.startswith(b"{") and b'"camera_name": "simulation2"' in parameters
        assert f["general/datasets"][()] == 1 and f["general/run"][()] == 12
        assert f["general/operator"][()] == b"tester" and f["general/pid"][()] > 0
        created = f["general/created"][()].decode()
        assert created[2] == created[5] == "/" and created[19] == "." and len(created) == 26


def test_localtime_false_and_camiocs_bsread_layout(pipe: PipelineClient, tmp_path: Path) -> None:
    path = tmp_path / "nolocal.h5"
    run_to_completion(pipe, {**CAMERA, "mode": "FILE", "file": str(path), "records": RECORDS, "localtime": False})
    found = datasets(path)
    assert not [name for name in found if name.endswith("/timestamp") and name.startswith("data1/")]
    assert found["data1/image/value"] == (np.dtype(np.uint16), (RECORDS, 480, 640))

    bs = tmp_path / "bsread.h5"
    run_to_completion(pipe, {**CAMERA, "mode": "FILE", "file": str(bs), "records": RECORDS, "layout": "BSREAD"})
    found = datasets(bs)
    assert found["pulse_id"] == (np.dtype(np.int64), (RECORDS,))
    assert found["image/data"] == (np.dtype(np.uint16), (RECORDS, 480, 640))
    assert {"image/pulse_id", "image/timestamp", "image/timestamp_offset"} <= set(found)
    assert not [name for name in found if name.startswith(("general/", "header"))]


def test_change_opens_a_new_dataset_set_when_the_image_shape_changes(pipe: PipelineClient, tmp_path: Path) -> None:
    path = tmp_path / "change.h5"
    instance_id, _ = pipe.create_instance_from_config({**CAMERA, "mode": "FILE", "file": str(path), "change": True})
    frames = lambda: pipe.get_instance_info(instance_id)["statistics"]["frames"]  # noqa: E731
    wait_until(lambda: frames() >= 3, what="frames before the ROI change")
    pipe.set_instance_config(instance_id, {"image_region_of_interest": [100, 200, 50, 100]})
    before = frames()
    wait_until(lambda: frames() >= before + 5, what="frames after the ROI change")
    assert path.with_name(path.name + ".partial").exists() and not path.exists()  # atomic: not yet there
    pipe.stop_instance(instance_id)
    assert pipe.get_instance_exit_code(instance_id) == 0
    found = datasets(path)
    assert found["data1/image/value"][1][1:] == (480, 640)
    assert found["data2/image/value"][1][1:] == (100, 200)
    assert found["data2/x_axis/value"][1][1:] == (200,)
    with h5py.File(path) as f:
        assert f["general/datasets"][()] == 2
        assert f["header1/pulse_id"][-1] < f["header2/pulse_id"][0]
        assert len(f["header2/pulse_id"]) == len(f["data2/image/value"])


def test_without_change_a_format_change_stops_the_instance(pipe: PipelineClient, tmp_path: Path) -> None:
    path = tmp_path / "nochange.h5"
    instance_id, _ = pipe.create_instance_from_config({**CAMERA, "mode": "FILE", "file": str(path), "layout": "BSH5"})
    wait_until(lambda: pipe.get_instance_info(instance_id)["statistics"]["frames"] >= 3, what="frames")
    pipe.set_instance_config(instance_id, {"image_region_of_interest": [100, 200, 50, 100]})
    pipe.wait_instance_completed(instance_id, timeout=20)
    assert pipe.get_instance_exit_code(instance_id) == 2
    logs = " ".join(str(row) for row in pipe.get_instance_logs(instance_id))
    assert "Data format changed" in logs
    found = datasets(path)  # what was written before the change is kept
    assert found["image/data"][1][1:] == (480, 640) and "image2/data" not in found


def test_bad_file_options_are_refused(pipe: PipelineClient, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="File name not defined"):
        pipe.create_instance_from_config({**CAMERA, "mode": "FILE"})
    with pytest.raises(ValueError, match="Invalid value for 'layout'"):
        pipe.create_instance_from_config({**CAMERA, "mode": "FILE", "file": str(tmp_path / "x.h5"), "layout": "nested"})
    with pytest.raises(ValueError, match="Invalid value for 'attributes'"):
        pipe.create_instance_from_config({**CAMERA, "mode": "FILE", "file": str(tmp_path / "x.h5"),
                                          "attributes": {"pid": 1}})
    assert pipe.get_server_info()["active_instances"] == {}
