"""``camioc check <config dir>`` run as a user runs it: the real command line, a real folder of files.

Good files pass with a summary and exit 0; each broken file (bad JSON, a typo'd key, an
out-of-range value, a pipeline naming no camera, a missing background) gets one line naming the
file and what is wrong, and the command exits 1.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np

from tests.support.server import REPO_ROOT, TEST_CONFIGS


def run_check(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "camioc", "check", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=REPO_ROOT,
        timeout=120,
    )


def good_folder(tmp_path: Path) -> Path:
    base = tmp_path / "configs"
    shutil.copytree(TEST_CONFIGS, base)
    return base


def write(path: Path, content: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(content if isinstance(content, str) else json.dumps(content), encoding="utf-8")


def lines_for(output: str, file: str) -> list[str]:
    return [line for line in output.splitlines() if line.startswith(f"{file}: ")]


def test_the_shipped_configs_pass(tmp_path: Path) -> None:
    base = good_folder(tmp_path)
    np.save(base / "background_config" / "simulation_20260101_000000_000000.npy", np.zeros((4, 4), np.uint16))
    result = run_check(base)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().splitlines()[-1] == f"OK: 2 camera(s), 1 pipeline(s), 1 background(s) in {base}"


def test_each_broken_file_is_named_with_what_is_wrong(tmp_path: Path) -> None:
    base = good_folder(tmp_path)
    cameras, pipelines = base / "camera_config", base / "pipeline_config"
    write(cameras / "badjson.json", '{"source": "x", "source_type": "simulation",}')
    write(cameras / "typo.json", {"source": "t", "source_type": "simulation", "mirorr_x": True})
    write(cameras / "range.json", {"source": "r", "source_type": "simulation", "binning_x": 0})
    write(pipelines / "nocamera_sp.json", {"camera_name": "no_such_camera"})
    write(pipelines / "alias_sp.json", {"camera_name": "sim"})  # an alias of 'simulation': fine
    write(
        pipelines / "nobackground_sp.json",
        {
            "camera_name": "simulation",
            "image_background_enable": True,
            "image_background": "simulation_20000101_000000_000000",
        },
    )
    write(pipelines / "brokencamera_sp.json", {"camera_name": "badjson"})
    write(pipelines / "userkey_sp.json", {"camera_name": "simulation", "my_function_gain": 3})

    result = run_check(base)
    out = result.stdout
    assert result.returncode == 1, out + result.stderr

    (bad_json,) = lines_for(out, "camera_config/badjson.json")
    assert bad_json.startswith("camera_config/badjson.json: error: is not valid JSON:"), bad_json
    (typo,) = lines_for(out, "camera_config/typo.json")
    assert typo == (
        "camera_config/typo.json: error: unknown key 'mirorr_x': did you mean 'mirror_x'? (as written it is ignored)"
    )
    (out_of_range,) = lines_for(out, "camera_config/range.json")
    assert out_of_range.startswith("camera_config/range.json: error: ") and "binning_x" in out_of_range
    (no_camera,) = lines_for(out, "pipeline_config/nocamera_sp.json")
    assert no_camera == (
        "pipeline_config/nocamera_sp.json: error: 'camera_name' names 'no_such_camera', which is "
        "no camera (no camera_config/no_such_camera.json and no camera alias)"
    )
    (no_background,) = lines_for(out, "pipeline_config/nobackground_sp.json")
    assert no_background == (
        "pipeline_config/nobackground_sp.json: error: 'image_background' names 'simulation_20000101_000000_000000', "
        "but there is no background_config/simulation_20000101_000000_000000.npy"
    )
    (broken_camera,) = lines_for(out, "pipeline_config/brokencamera_sp.json")
    assert "'badjson', whose config file is broken" in broken_camera
    # a key a user function may read is a warning, not an error; good files get no line
    (user_key,) = lines_for(out, "pipeline_config/userkey_sp.json")
    assert user_key.startswith("pipeline_config/userkey_sp.json: warning: unknown key 'my_function_gain'")
    assert lines_for(out, "pipeline_config/alias_sp.json") == []
    assert lines_for(out, "camera_config/simulation.json") == []
    assert (
        out.strip()
        .splitlines()[-1]
        .startswith("FAILED: 6 bad file(s) (6 error(s)); checked 5 camera(s), 6 pipeline(s)")
    )

    strict = run_check(base, "--strict", "--json")
    report = json.loads(strict.stdout)
    assert strict.returncode == 1 and report["ok"] is False
    assert {
        "path": "pipeline_config/userkey_sp.json",
        "severity": "error",
        "message": "unknown key 'my_function_gain' (kept, not used by camioc; a user function may read it)",
    } in report["findings"]


def test_a_folder_that_is_not_a_config_folder_fails(tmp_path: Path) -> None:
    result = run_check(tmp_path / "missing")
    assert result.returncode == 1
    assert result.stdout.startswith(f"{tmp_path / 'missing'}: error: not a folder")
    (tmp_path / "empty").mkdir()
    result = run_check(tmp_path / "empty")
    assert result.returncode == 1 and "neither camera_config/ nor pipeline_config/" in result.stdout


def test_server_options_change_what_a_pipeline_may_say(tmp_path: Path) -> None:
    base = good_folder(tmp_path)
    write(base / "pipeline_config" / "user_sp.json", {"camera_name": "simulation", "function": "mine.py"})
    write(base / "user_scripts" / "mine.py", "def process_image(image, *args):\n    return {}\n")
    assert run_check(base).returncode == 0
    refused = run_check(base, "--no-user-scripts")
    assert refused.returncode == 1
    (line,) = lines_for(refused.stdout, "pipeline_config/user_sp.json")
    assert "--no-user-scripts" in line
