"""Settings that size memory, threads or work are bounded; the error names the bound. NULs are refused."""

from __future__ import annotations

import pytest

from camioc.config.camera import CameraConfig
from camioc.config.pipeline import PipelineConfig
from camioc.errors import ConfigError


@pytest.mark.parametrize(("changes", "message"), [
    ({"processing_threads": 10**6}, "'processing_threads': 1000000 (must be an integer <= 64)"),
    ({"averaging": 10**12}, "'averaging': 1000000000000 (must be an integer <= 1000)"),
    ({"image_averaging": 5000}, "(must be an integer <= 1000)"),
    ({"queue_size": 10**12}, "'queue_size': 1000000000000 (must be an integer <= 10000)"),
    ({"image_slices": {"number_of_slices": 10**6}}, "'image_slices.number_of_slices': 1000000 (must be an integer <= 1001)"),
    ({"image_good_region": {"gfscale": -1}}, "'image_good_region.gfscale': -1 (must be a number >= 0)"),
    ({"image_good_region": {"threshold": 2}}, "(must be a number <= 1)"),
    ({"binning_x": 10**9}, "(must be an integer <= 256)"),
    ({"merge_queue_size": 10**9}, "(must be an integer <= 10000)"),
    ({"function": "my\x00function.py"}, "Invalid value for 'function': NUL characters are not allowed."),
    ({"image_good_region": {"note\x00": 1}}, "NUL characters are not allowed."),
])
def test_pipeline_bounds(changes, message):
    with pytest.raises(ConfigError) as error:
        PipelineConfig.from_dict({"camera_name": "cam", **changes})
    assert message in str(error.value)


@pytest.mark.parametrize(("changes", "message"), [
    ({"size_x": 10**12}, "'size_x': 1000000000000 (must be an integer <= 32768)"),
    ({"size_y": 10**9}, "(must be an integer <= 32768)"),
    ({"frame_rate": 1e12}, "(must be a number <= 10000)"),
    ({"binning_x": 10**9}, "(must be an integer <= 256)"),
    ({"queue_size": 10**12}, "(must be an integer <= 10000)"),
    ({"connections": 1000}, "(must be an integer <= 64)"),
    ({"source": "a\x00b"}, "Invalid value for 'source': NUL characters are not allowed."),
])
def test_camera_bounds(changes, message):
    with pytest.raises(ConfigError) as error:
        CameraConfig.from_dict({"name": "cam", "source_type": "simulation", "source": "sim", **changes})
    assert message in str(error.value)


def test_values_inside_the_bounds_load():
    config = PipelineConfig.from_dict({"camera_name": "cam", "processing_threads": 64, "averaging": -1000,
                                       "image_slices": {"number_of_slices": 1001}, "queue_size": 10000})
    assert config.processing_threads == 64 and config.image_slices is not None
    camera = CameraConfig.from_dict({"name": "cam", "source_type": "simulation", "source": "sim",
                                     "size_x": 32768, "frame_rate": 10000, "binning_x": 256})
    assert camera.size_x == 32768


def test_leftovers_of_interrupted_saves_are_removed_at_start(tmp_path):
    from camioc.config.store import ConfigLayout

    layout = ConfigLayout(tmp_path).ensure()
    leftovers = [layout.camera_config / ".cam.json.ab12cd34.tmp", layout.background_config / ".bg.npy.x_y9zz00.tmp",
                 tmp_path / ".camioc_state.q1w2e3r4"]
    kept = [layout.camera_config / "cam.json", layout.camera_config / ".hidden", layout.user_scripts / "f.tmp"]
    for path in leftovers + kept:
        path.write_text("{}")
    removed = layout.remove_leftover_temporaries()
    assert sorted(removed) == sorted(leftovers)
    assert all(not path.exists() for path in leftovers) and all(path.exists() for path in kept)
