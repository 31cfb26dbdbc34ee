"""A user function written for cam_server runs unchanged in a real camioc pipeline worker.

Real parts: a simulated camera worker, a pipeline worker process (forked from camioc's worker
server) importing a user file that does ``from cam_server.pipeline.data_processing import
functions, processor``, and the output stream read with psi-bsread. Expected values are computed
here from the received frame with plain numpy, or compared with the channels the default function
computes in the same message.
"""

from __future__ import annotations

import asyncio
import json
import random
import sys
from pathlib import Path

import numpy as np
import pytest

from camioc.compat import COMPAT_PATH
from camioc.config.store import ConfigStore
from camioc.core.backgrounds import BackgroundStore
from camioc.core.camera_manager import CameraManager
from camioc.core.pipeline_manager import PipelineManager
from tests.support.waiting import receive

SIM = {"name": "sim", "source": "simulation", "source_type": "simulation", "size_x": 200, "size_y": 150,
       "dtype": "uint16", "image_type": "beam", "frame_rate": 20.0, "no_client_timeout": 0}

#: A facility script as it was written for cam_server: only cam_server imports, cam_server's helpers.
USER_FUNCTION = '''
from cam_server.pipeline.data_processing import functions, processor
from cam_server.pipeline.data_processing.functions import gauss_fit, get_fwhm


def process_image(image, pulse_id, timestamp, x_axis, y_axis, parameters, bsdata=None):
    image = functions.subtract_background(image, parameters.get("background_data"))
    results = processor.process_image(image, pulse_id, timestamp, x_axis, y_axis, parameters, bsdata)
    x_profile, y_profile = functions.get_x_y_profile(image)
    curve, offset, amplitude, mean, sigma, com, rms = gauss_fit(x_profile, x_axis)
    low, high = functions.get_min_max(image)
    roi = functions.get_region_of_interest(image, 10, 40, 5, 30)
    thresholded = functions.apply_threshold(functions.copy_image(image), high)
    results["user_x_profile"] = x_profile
    results["user_intensity"] = functions.get_intensity(y_profile)
    results["user_x_fwhm"] = get_fwhm(x_axis, x_profile)
    results["user_x_fit_mean"] = mean
    results["user_x_center_of_mass"] = com
    results["user_min"], results["user_max"] = int(low), int(high)
    results["user_roi_sum"] = int(roi.sum())
    results["user_peak_pixels"] = int((thresholded > 0).sum())
    results["user_helpers_file"] = functions.__file__
    return results
'''


@pytest.fixture
async def pipelines(tmp_path: Path):
    cams, pipes, scripts = tmp_path / "camera_config", tmp_path / "pipeline_config", tmp_path / "user_scripts"
    for folder in (cams, pipes, scripts):
        folder.mkdir()
    (cams / "sim.json").write_text(json.dumps(SIM))
    (scripts / "facility_function.py").write_text(USER_FUNCTION)
    start = random.randrange(52000, 60000, 200)
    cameras = CameraManager(ConfigStore(cams), hostname="127.0.0.1", port_range=(start, start + 100),
                            background_dir=tmp_path / "background_config")
    manager = PipelineManager(ConfigStore(pipes), cameras, BackgroundStore(tmp_path / "background_config"),
                              hostname="127.0.0.1", port_range=(start + 100, start + 200), scripts_dir=scripts)
    try:
        yield manager
    finally:
        await manager.close()
        await cameras.close()


async def test_cam_server_user_function_runs_unchanged(
    pipelines: PipelineManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a worker gets this process's sys.path: without the shim on it, only the worker's own set-up
    # can make "cam_server" importable (another test module may have enabled it here)
    monkeypatch.setattr(sys, "path", [entry for entry in sys.path if entry != COMPAT_PATH])
    _id, stream, _config = await pipelines.create_instance(
        {"camera_name": "sim", "function": "facility_function", "image_good_region": {}})
    data = (await asyncio.to_thread(receive, stream, 2))[-1].data.data
    assert str(data["user_helpers_file"].value).startswith(COMPAT_PATH)  # the shim, found through "cam_server"
    image = data["image"].value
    assert image.shape == (150, 200) and image.dtype == np.uint16
    column_sums = image.astype(np.int64).sum(axis=0)
    assert data["user_x_profile"].value.tolist() == column_sums.tolist()
    assert int(data["user_intensity"].value) == int(image.astype(np.int64).sum()) == int(data["intensity"].value)
    assert int(data["user_roi_sum"].value) == int(image[5:35, 10:50].astype(np.int64).sum())
    assert (int(data["user_min"].value), int(data["user_max"].value)) == (int(image.min()), int(image.max()))
    assert int(data["user_peak_pixels"].value) == int((image >= image.max()).sum())
    # the helpers give the default function's numbers (processor.process_image's channels)
    assert float(data["user_x_fwhm"].value) == pytest.approx(float(data["x_fwhm"].value), rel=1e-12)
    assert float(data["user_x_fit_mean"].value) == pytest.approx(float(data["x_fit_mean"].value), rel=1e-12)
    assert float(data["user_x_center_of_mass"].value) == pytest.approx(float(data["x_center_of_mass"].value), rel=1e-12)
    assert 0 < float(data["x_center_of_mass"].value) < 200
    assert "gr_intensity" in data and "good_region" in data  # processor honoured image_good_region
    parameters = json.loads(data["processing_parameters"].value)
    assert parameters["function"] == "facility_function" and parameters["camera_name"] == "sim"


async def test_transparent_outputs_the_camera_fields_and_processing_parameters(pipelines: PipelineManager) -> None:
    """compat §2.3: ``transparent`` outputs the six camera fields plus ``processing_parameters``."""
    _id, stream, _config = await pipelines.create_instance({"camera_name": "sim", "function": "transparent"})
    data = (await asyncio.to_thread(receive, stream, 2))[-1].data.data
    assert set(data) == {"image", "timestamp", "width", "height", "x_axis", "y_axis", "processing_parameters"}
    types = {name: np.asarray(channel.value).dtype for name, channel in data.items() if name != "processing_parameters"}
    assert types == {"image": np.uint16, "timestamp": np.float64, "width": np.int64, "height": np.int64,
                     "x_axis": np.float32, "y_axis": np.float32}
    assert data["image"].value.shape == (150, 200) and data["x_axis"].value.shape == (200,)
    assert json.loads(data["processing_parameters"].value)["function"] == "transparent"
