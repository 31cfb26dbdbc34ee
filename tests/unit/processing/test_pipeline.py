"""ImagePipeline: outputs, processing_parameters, errors, live updates, user functions."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from camioc.errors import ConfigError, ProcessingError
from camioc.processing import ImagePipeline, ProcessingParameters, load_function, load_stream_function

AXES = (np.arange(64, dtype=np.float32), np.arange(48, dtype=np.float32))

DEFAULT_FIELDS = {
    "x_axis", "y_axis", "image", "width", "height", "timestamp", "min_value", "max_value", "x_profile",
    "y_profile", "intensity", "x_fwhm", "y_fwhm", "x_center_of_mass", "x_rms", "y_center_of_mass", "y_rms",
    "x_fit_gauss_function", "x_fit_offset", "x_fit_amplitude", "x_fit_mean", "x_fit_standard_deviation",
    "y_fit_gauss_function", "y_fit_offset", "y_fit_amplitude", "y_fit_mean", "y_fit_standard_deviation",
    "processing_parameters",
}
GOOD_REGION_FIELDS = {
    "good_region", "gr_x_axis", "gr_y_axis", "gr_x_profile", "gr_y_profile", "gr_intensity",
    *(
        f"gr_{a}_fit_{p}"
        for a in "xy"
        for p in ("gauss_function", "offset", "amplitude", "mean", "standard_deviation")
    ),
}


@pytest.fixture
def image(beam_factory: Any) -> np.ndarray:
    return beam_factory(48, 64, sigma=(6, 4), seed=3).image


def test_default_outputs_names_and_types(image: np.ndarray) -> None:
    config = {"name": "cam_sp", "image_good_region": {}, "image_slices": {"number_of_slices": 2},
              "fw_threshold": 0.1, "camera_name": "cam"}
    out = ImagePipeline(config).process(image, 5, 12.25, *AXES)
    per_slice = ("center_x", "center_y", "standard_deviation", "intensity")
    slice_fields = {f"slice_{i}_{f}" for i in range(3) for f in per_slice}
    expected = DEFAULT_FIELDS | GOOD_REGION_FIELDS | slice_fields | {
        "x_fw", "y_fw", "slice_orientation", "slice_amount", "slice_length", "coupling", "coupling_slope",
        "coupling_offset"}
    assert set(out) == expected
    assert out["slice_amount"] == 3  # even number of slices: one more
    for key, value in out.items():
        if key in ("image", "min_value", "max_value"):
            assert value.dtype == np.uint16
        elif key in ("x_axis", "y_axis", "gr_x_axis", "gr_y_axis"):
            assert value.dtype == np.float32
        elif key in ("x_profile", "y_profile", "gr_x_profile", "gr_y_profile", "good_region"):
            assert value.dtype == np.int64 and value.ndim == 1
        elif key in ("width", "height", "intensity", "gr_intensity", "slice_amount"):
            assert isinstance(value, np.int64), key
        elif key in ("processing_parameters", "slice_orientation"):
            assert isinstance(value, str)
        else:
            assert isinstance(value, (np.float64, np.ndarray)), key
            assert np.asarray(value).dtype == np.float64, key
    assert out["timestamp"] == 12.25
    parameters = json.loads(out["processing_parameters"])
    assert parameters == config  # the effective config; no background: no image_background_ok


def test_processing_parameters_carry_background_state(image: np.ndarray) -> None:
    config = {"image_background_enable": True, "image_background": "cam_20240101_000000_000000", "name": "p"}
    out = ImagePipeline(config, background_loader=lambda _id: np.zeros_like(image)).process(image, 0, 0.0, *AXES)
    assert json.loads(out["processing_parameters"]) == {**config, "image_background_ok": True}


def test_transparent_function(image: np.ndarray) -> None:
    out = ImagePipeline({"function": "transparent", "image_region_of_interest": [0, 10, 0, 5]}).process(
        image, 0, 3.5, *AXES)
    assert set(out) == {"image", "timestamp", "width", "height", "x_axis", "y_axis", "processing_parameters"}
    assert out["image"].shape == (5, 10) and out["width"] == 10 and out["timestamp"] == 3.5


def test_bad_background_notified_as_error_message(image: np.ndarray) -> None:
    """notify_on_error (default for *_sp): zero image + processing_error instead of an exception."""
    def missing(background_id: str) -> np.ndarray:
        raise FileNotFoundError(background_id)

    config = {"name": "simulation_sp", "image_background_enable": True, "image_background": "nope"}
    pipeline = ImagePipeline(config, background_loader=missing)
    assert pipeline.parameters.notify_on_error
    out = pipeline.process(image, 0, 0.0, *AXES)
    assert set(out) == {"x_axis", "y_axis", "image", "width", "height", "processing_parameters"}
    assert out["image"].shape == image.shape and out["image"].dtype == image.dtype and not out["image"].any()
    parameters = json.loads(out["processing_parameters"])
    assert parameters["processing_error"].startswith("Invalid background image file: nope")
    assert parameters["image_background_ok"] is False
    assert parameters["name"] == "simulation_sp"


def test_bad_background_size_raises_without_notify(image: np.ndarray) -> None:
    config = {"name": "plain", "image_background_enable": True, "image_background": "b"}
    pipeline = ImagePipeline(config, background_loader=lambda _id: np.zeros((3, 3)))
    assert not pipeline.parameters.notify_on_error
    with pytest.raises(ProcessingError, match="Bad background image size"):
        pipeline.process(image, 0, 0.0, *AXES)
    notify = ImagePipeline({**config, "notify_on_error": True}, background_loader=lambda _id: np.zeros((3, 3)))
    out = notify.process(image, 0, 0.0, *AXES)
    assert json.loads(out["processing_parameters"])["processing_error"].startswith("Bad background image size")


def test_frames_without_beam_do_not_raise() -> None:
    """Flat frames, as cam_server's arithmetic treats them (processing-parity.md sections 1-3)."""
    for image in (np.zeros((48, 64), np.uint16), np.full((48, 64), 7, np.int16), np.full((48, 64), np.nan)):
        out = ImagePipeline({"image_good_region": {}, "image_slices": {"number_of_slices": 3}}).process(
            image, 0, 0.0, *AXES)
        # FWHM of a flat profile: the crossing divides 0 by 0
        assert math.isnan(out["x_fwhm"]) and math.isnan(out["y_fwhm"])
        for name in ("x", "y"):
            com, rms = out[f"{name}_center_of_mass"], out[f"{name}_rms"]
            if np.isnan(image).any():  # NaN propagates through the sums
                assert math.isnan(com) and math.isnan(rms)
            else:  # profile - fit offset is 0 everywhere: its sum is 0, it stays 0, both moments are 0
                assert out[f"{name}_fit_offset"] == out[f"{name}_profile"][0]
                assert com == 0.0 and rms == 0.0
        # a flat profile never drops below the level: an empty good region, every gr_/slice field None
        assert all(out[name] is None for name in GOOD_REGION_FIELDS)
        assert out["slice_amount"] == 3 and out["slice_orientation"] == "vertical"
        slice_fields = [f"slice_{k}_{f}" for k in range(3) for f in ("center_x", "center_y", "standard_deviation",
                                                                         "intensity")]
        assert all(out[name] is None for name in slice_fields)
        assert all(out[name] is None for name in ("slice_length", "coupling", "coupling_slope", "coupling_offset"))


def test_update_reloads_background_only_when_its_id_changes(image: np.ndarray) -> None:
    calls: list[str] = []

    def loader(background_id: str) -> np.ndarray:
        calls.append(background_id)
        return np.full(image.shape, 1 if background_id == "a" else 2, image.dtype)

    config = {"image_background_enable": True, "image_background": "a"}
    pipeline = ImagePipeline(config, background_loader=loader)
    first = pipeline.process(image, 0, 0.0, *AXES)["image"]
    pipeline.update({**config, "image_threshold": 1})
    pipeline.update({**config, "image_background_enable": False})
    pipeline.update(config)
    assert calls == ["a"]
    pipeline.update({**config, "image_background": "b"})
    assert calls == ["a", "b"]
    second = pipeline.process(image, 1, 0.0, *AXES)["image"]
    np.testing.assert_array_equal(first.astype(int) - second.astype(int), (image >= 2).astype(int))


def test_failed_background_load_is_retried_on_update(image: np.ndarray) -> None:
    available: dict[str, np.ndarray] = {}
    pipeline = ImagePipeline({"image_background_enable": True, "image_background": "x", "notify_on_error": True},
                             background_loader=lambda key: available[key])
    assert pipeline.background_ok is False
    available["x"] = np.zeros_like(image)
    pipeline.update({"image_background_enable": True, "image_background": "x", "notify_on_error": True})
    assert pipeline.background_ok is True
    assert "x_fit_mean" in pipeline.process(image, 0, 0.0, *AXES)


def test_failed_update_changes_nothing(image: np.ndarray, tmp_path: Path) -> None:
    pipeline = ImagePipeline({"image_threshold": 10}, scripts_dir=tmp_path)
    with pytest.raises(ProcessingError, match="not found"):
        pipeline.update({"image_threshold": 20, "function": "missing"})
    with pytest.raises(ConfigError):
        pipeline.update({"image_region_of_interest": [1, 2, 3]})
    assert pipeline.parameters.threshold == 10
    assert json.loads(pipeline.processing_parameters) == {"image_threshold": 10}


def test_update_keeps_averaging_history_unless_it_must_go(image: np.ndarray) -> None:
    pipeline = ImagePipeline({"image_averaging": 2})
    pipeline.process(image, 0, 0.0, *AXES)
    doubled = (image * 2).astype(np.uint16)
    pipeline.update({"image_averaging": 3, "fw_threshold": 0.5})  # meaning unchanged: keep
    out = pipeline.process(doubled, 1, 0.0, *AXES)
    np.testing.assert_allclose(out["image"], (image.astype(float) + doubled) / 2)
    pipeline.update({"image_averaging": 3, "image_threshold": 5})  # frames mean something else now
    out = pipeline.process(doubled, 2, 0.0, *AXES)
    np.testing.assert_array_equal(out["image"], np.where(doubled < 5, 0, doubled))


def write_function(folder: Path, name: str, body: str) -> Path:
    path = folder / name
    path.write_text(body)
    return path


USER_FUNCTION = (
    "import numpy as np\n"
    "VERSION = {version}\n"
    "def process_image(image, pulse_id, timestamp, x_axis, y_axis, parameters, bsdata=None):\n"
    "    parameters['calls'] = parameters.get('calls', 0) + 1\n"
    "    return {{'version': VERSION, 'total': int(image.sum()), 'pid': pulse_id,\n"
    "            'threshold': parameters.get('image_threshold'), 'calls': parameters['calls'],\n"
    "            'extra': bsdata}}\n"
)


def test_user_function_from_scripts_dir_and_reload(tmp_path: Path, image: np.ndarray) -> None:
    write_function(tmp_path, "mine.py", USER_FUNCTION.format(version=1))
    config = {"function": "mine", "image_threshold": 1000}
    pipeline = ImagePipeline(config, scripts_dir=tmp_path)
    out = pipeline.process(image, 9, 0.0, *AXES, bsdata={"ch": 1})
    expected_total = int(np.where(image < 1000, 0, image).sum())
    assert out["version"] == 1 and out["total"] == expected_total and out["pid"] == 9
    assert out["threshold"] == 1000 and out["extra"] == {"ch": 1}
    assert json.loads(out["processing_parameters"]) == config
    assert pipeline.process(image, 10, 0.0, *AXES)["calls"] == 2  # parameters persist between frames
    write_function(tmp_path, "mine.py", USER_FUNCTION.format(version=2))
    pipeline.update(config)  # no reload: the imported function stays
    assert pipeline.process(image, 11, 0.0, *AXES)["version"] == 1
    pipeline.update({**config, "reload": True})
    assert pipeline.process(image, 12, 0.0, *AXES)["version"] == 2


def test_user_function_by_absolute_path(tmp_path: Path, image: np.ndarray) -> None:
    path = write_function(tmp_path, "absolute.py", USER_FUNCTION.format(version=3))
    # confinement: an absolute path runs if it lies inside the scripts folder
    out = ImagePipeline({"function": str(path)}, scripts_dir=tmp_path).process(image, 0, 0.0, *AXES)
    assert out["version"] == 3


def test_two_pipelines_do_not_share_user_function_state(tmp_path: Path, image: np.ndarray) -> None:
    write_function(tmp_path, "state.py", "N = []\ndef process_image(image, *args):\n    N.append(1)\n"
                   "    return {'n': len(N)}\n")
    first = ImagePipeline({"function": "state"}, scripts_dir=tmp_path)
    second = ImagePipeline({"function": "state"}, scripts_dir=tmp_path)
    assert [first.process(image, i, 0.0, *AXES)["n"] for i in range(3)] == [1, 2, 3]
    assert second.process(image, 0, 0.0, *AXES)["n"] == 1


def test_user_function_errors(tmp_path: Path, image: np.ndarray) -> None:
    write_function(tmp_path, "boom.py", "def process_image(*args):\n    raise KeyError('x')\n")
    write_function(tmp_path, "skip.py", "def process_image(*args):\n    return None\n")
    write_function(tmp_path, "wrong.py", "def process_image(*args):\n    return [1]\n")
    write_function(tmp_path, "broken.py", "this is not python\n")
    write_function(tmp_path, "empty.py", "X = 1\n")
    with pytest.raises(ProcessingError, match="Function 'boom' failed: KeyError"):
        ImagePipeline({"function": "boom"}, scripts_dir=tmp_path).process(image, 0, 0.0, *AXES)
    out = ImagePipeline({"function": "boom", "name": "x_sp1"}, scripts_dir=tmp_path).process(image, 0, 0.0, *AXES)
    assert "KeyError" in json.loads(out["processing_parameters"])["processing_error"]
    assert ImagePipeline({"function": "skip"}, scripts_dir=tmp_path).process(image, 0, 0.0, *AXES) is None
    with pytest.raises(ProcessingError, match="returned list, expected dict"):
        ImagePipeline({"function": "wrong"}, scripts_dir=tmp_path).process(image, 0, 0.0, *AXES)
    with pytest.raises(ProcessingError, match="importing .*broken.py failed"):
        ImagePipeline({"function": "broken"}, scripts_dir=tmp_path)
    with pytest.raises(ProcessingError, match="defines neither"):
        load_function("empty", tmp_path)
    with pytest.raises(ProcessingError, match="not found"):
        load_function("nothing_here", tmp_path)
    write_function(tmp_path, "native.c", "int x;\n")
    with pytest.raises(ProcessingError, match="not supported"):
        load_function("native.c", tmp_path)


def test_builtins_and_stream_functions(tmp_path: Path) -> None:
    assert load_function(None).builtin == "default"
    assert load_function("transparent.py").builtin == "transparent"
    write_function(tmp_path, "transparent.py", "def process_image(*args):\n    return {'shadowed': True}\n")
    assert load_function("transparent", tmp_path).builtin is None  # a user file shadows a built-in
    write_function(tmp_path, "stream.py", "def process(stream_data, pulse_id, timestamp, parameters):\n"
                   "    return {'sum': stream_data['a'] + parameters['k']}\n")
    function = load_stream_function("stream", tmp_path)
    assert function({"a": 2}, 1, 0.0, {"k": 3}) == {"sum": 5}
    with pytest.raises(ProcessingError, match="stream"):
        ImagePipeline({"function": "stream"}, scripts_dir=tmp_path)
    with pytest.raises(ProcessingError):
        load_stream_function("transparent")


def test_parameters_from_config() -> None:
    params = ProcessingParameters.from_config({
        "name": "cam_sp1", "image_background_enable": "signed", "image_threshold": 0,
        "image_region_of_interest": [1, 2, 3, 4], "image_good_region": {"threshold": 0.5},
        "image_slices": {"number_of_slices": 4, "scale": None}, "rotation": 45, "averaging": 1,
        "image_averaging": -3, "image_scale": 0,
    })
    assert params.notify_on_error and params.background_mode.value == "signed" and params.threshold is None
    assert (params.roi.offset_x, params.roi.size_y) == (1, 4)
    assert params.good_region.gfscale == 1.8 and params.good_region.threshold == 0.5
    assert params.slices.count == 5 and params.slices.scale == 2.0
    assert params.rotation.angle == 45 and params.rotation.order == 1 and not params.rotation.ortho
    assert params.averaging is None and params.image_averaging is None and params.image_scale is None
    assert not ProcessingParameters.from_config({"name": "cam_sp", "notify_on_error": False}).notify_on_error
    rotation = ProcessingParameters.from_config({"rotation": {"angle": 90, "mode": "0.0"}}).rotation
    assert (rotation.mode, rotation.cval) == ("constant", 0.0)
    for bad in ({"image_slices": {"number_of_slices": 2.5}}, {"image_slices": {"orientation": "diagonal"}},
                {"rotation": {"angle": 45, "mode": "ortho"}}, {"rotation": {"angle": 5, "mode": "sideways"}},
                {"binning_x": 0}, {"image_threshold": "high"}):
        with pytest.raises(ConfigError):
            ProcessingParameters.from_config(bad)


def test_a_nan_pixel_empties_the_good_region_as_numpy_does() -> None:
    """A NaN in a float frame makes the profile's min/max NaN (numpy): cam_server's good region is
    then empty at the first NaN, so every gr_/slice field is None; FWHM of that profile is NaN."""
    yy, xx = np.mgrid[0:30, 0:40]
    image = 100.0 * np.exp(-((xx - 20.0) ** 2) / 50.0 - ((yy - 15.0) ** 2) / 30.0)
    image[15, 25] = np.nan
    config = {"camera_name": "cam", "image_good_region": {}, "image_slices": {"number_of_slices": 3}}
    out = ImagePipeline(config).process(image, 1, 0.0, np.arange(40.0), np.arange(30.0))
    assert out is not None
    assert out["good_region"] is None and out["gr_x_fit_mean"] is None
    assert all(out[f"slice_{k}_center_x"] is None for k in range(3)) and out["coupling"] is None
    assert math.isnan(out["x_fwhm"]) and math.isnan(out["y_fwhm"])


IN_PLACE_FUNCTION = """
def process_image(image, pulse_id, timestamp, x_axis, y_axis, parameters, bsdata=None):
    image[0, 0] = 7
    return {"corner": int(image[0, 0])}
"""


def test_copy_gives_the_function_a_writable_frame(tmp_path: Path) -> None:
    """cam_server's ``copy``: without it a function gets the read-only received frame as is."""
    write_function(tmp_path, "in_place.py", IN_PLACE_FUNCTION)
    frame = np.ones((4, 5), np.uint16)
    frame.flags.writeable = False  # as a zero-copy received bsread frame
    config = {"camera_name": "cam", "function": "in_place.py"}
    with pytest.raises(ProcessingError, match="read-only"):
        ImagePipeline(config, scripts_dir=tmp_path).process(frame, 1, 0.0, None, None)
    out = ImagePipeline({**config, "copy": True}, scripts_dir=tmp_path).process(frame, 1, 0.0, None, None)
    assert out is not None and out["corner"] == 7
    assert int(frame[0, 0]) == 1  # the received frame itself is untouched
