"""Every ```python block of the README is run by a test, as printed, against a real camioc.

:data:`RUN_BY` is the one list of which test runs which block, keyed by the heading a block is under
(and its number under that heading); :func:`test_every_python_block_is_run_by_a_test` fails when a
block is run by no test (a new block cannot slip in untested) or an entry names a block or a test
that no longer exists. The PV Access and stock-client blocks are run where their clients are tested
(``tests/integration/pva/``, ``tests/integration/clients/``); this module runs the others.

A section's blocks are run as a reader runs them: in order, in one Python namespace (a later block
uses what an earlier one made, as in one interpreter session), with the section's shell lines
between them run by bash (its ``caput`` is what the next block's comment expects), from the folder
that holds the server's ``configs`` and ``data`` (``camioc --base configs`` and its default
``--data-dir``, so the README's relative ``data/simulation.h5`` is the recording). Only what a test
server must differ in is replaced, as in :mod:`tests.integration.test_readme_shell`: the PV prefix
``CAMIOC:`` and the REST addresses ``http://127.0.0.1:8888``/``8889``. A ``print(...)  # <text>``
line shows its output: the printed lines must contain each such text, in order. What a reader has
by the time they type a block without the test waiting for it (the camera's first frame on ``image1:``)
is waited for before that block, and the test says why.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import numpy as np
import pytest

from tests.integration.test_readme_shell import COMMANDS, as_run, check, run_line, tool_dir
from tests.support.server import REPO_ROOT, TEST_CONFIGS, CamiocServer, start_camioc, stop_camioc
from tests.support.waiting import receive, wait_until

THIS = "tests/integration/test_readme_examples.py"
PIPELINE = "A pipeline from Python, a background, a caput, an HDF5 recording"
CAMERAS = "Cameras from Python"

#: Which test runs each ```python block of the README, keyed ``"<heading> [<n>]"`` (the n-th block under it).
RUN_BY: dict[str, str] = {
    "PV Access [1]": "tests/integration/pva/test_pva.py::test_readme_snippet_runs_as_written",
    "Stock EPICS clients: ophyd, ophyd-async, bluesky [1]":
        "tests/integration/clients/test_ophyd.py::test_count_reads_the_frame_each_trigger_acquired",
    "Stock EPICS clients: ophyd, ophyd-async, bluesky [2]":
        "tests/integration/clients/test_ophyd_async.py::test_count_reads_the_frame_each_trigger_acquired",
    f"{PIPELINE} [1]": f"{THIS}::test_a_pipeline_from_python",
    f"{PIPELINE} [2]": f"{THIS}::test_a_pipeline_from_python",
    f"{PIPELINE} [3]": f"{THIS}::test_a_pipeline_from_python",
    f"{CAMERAS} [1]": f"{THIS}::test_cameras_from_python",
    f"{CAMERAS} [2]": f"{THIS}::test_cameras_from_python",
}

#: Fence languages that are Python (a block marked so is a Python block, run by a test).
PYTHON = {"python", "py", "python3", "pycon", "ipython"}
_FENCE = re.compile(r"^```(\w*)\s*$")
_HEADING = re.compile(r"^#{1,6} (.+?)\s*$")
_SHOWN = re.compile(r"^\s*print\(.*\)\s+# (?P<output>.+?)\s*$")


@dataclasses.dataclass(frozen=True)
class Block:
    """One fenced block of the README: its language, the heading it is under, its text."""

    language: str
    heading: str
    code: str
    line: int


def readme_blocks() -> list[Block]:
    """Every fenced block of README.md, in order, with the heading it is under."""
    blocks: list[Block] = []
    heading, language, start, body = "", None, 0, []
    lines = (REPO_ROOT / "README.md").read_text(encoding="utf-8").splitlines()
    for number, line in enumerate(lines, 1):
        fence = _FENCE.match(line)
        if language is None:
            if fence:
                language, start, body = fence[1], number, []
            elif match := _HEADING.match(line):
                heading = match[1]
        elif line.startswith("```"):
            blocks.append(Block(language, heading, "".join(f"{text}\n" for text in body), start))
            language = None
        else:
            body.append(line)
    assert language is None, f"README.md: the block of line {start} is not closed"
    return blocks


def python_blocks() -> dict[str, Block]:
    """The README's ```python blocks by their :data:`RUN_BY` key."""
    keyed: dict[str, Block] = {}
    counts: dict[str, int] = {}
    for block in readme_blocks():
        if block.language.lower() in PYTHON:
            counts[block.heading] = counts.get(block.heading, 0) + 1
            keyed[f"{block.heading} [{counts[block.heading]}]"] = block
    return keyed


def section(heading: str) -> list[Block]:
    """The python and bash blocks under ``heading``, in the README's order."""
    blocks = [block for block in readme_blocks()
              if block.heading == heading and (block.language == "bash" or block.language.lower() in PYTHON)]
    assert blocks, f"README.md has no blocks under {heading!r}"
    return blocks


def shown_output(code: str) -> list[str]:
    """What the block's ``print(...)  # <output>`` lines say they print, in order."""
    return [match["output"] for line in code.splitlines() if (match := _SHOWN.match(line))]


def as_printed(code: str, server: CamiocServer) -> str:
    """The block with the test server's prefix and REST addresses (the shell test's substitutions)."""
    code = code.replace("CAMIOC:", server.prefix)
    return code.replace("http://127.0.0.1:8888", server.camera_url).replace("http://127.0.0.1:8889",
                                                                              server.pipeline_url)


def run_section(heading: str, server: CamiocServer, capsys: pytest.CaptureFixture[str],
                before: Mapping[int, Callable[[], object]] | None = None) -> list[dict[str, object]]:
    """Run the section's blocks as a reader does (see the module doc); the Python namespace after each
    python block (a shallow copy: a later block may reuse a name). ``before[n]`` is called before the
    n-th python block (from 1): a precondition the reader has by the time they run it."""
    namespace: dict[str, object] = {"__name__": "__main__"}
    states: list[dict[str, object]] = []
    env = dict(os.environ)
    env["PATH"] = f"{tool_dir()}{os.pathsep}{env['PATH']}"
    for block in section(heading):
        if block.language == "bash":
            for line in block.code.replace("\\\n", " ").splitlines():
                if line.strip().startswith(COMMANDS):
                    check(line.strip(), run_line(as_run(line.strip(), server), env))
            continue
        if before and len(states) + 1 in before:
            before[len(states) + 1]()
        capsys.readouterr()
        exec(compile(as_printed(block.code, server), f"README.md:{block.line}", "exec"), namespace)  # noqa: S102
        printed = capsys.readouterr().out
        rest = printed.splitlines()
        for expected in shown_output(block.code):
            assert expected in rest, f"README.md:{block.line}: {expected!r} not printed, got:\n{printed}"
            rest = rest[rest.index(expected) + 1:]
        states.append(dict(namespace))
    return states


@pytest.fixture
def reader_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, CamiocServer]]:
    """A folder with ``configs`` and ``data`` as ``camioc --base configs`` has them, camioc running on
    it, and the current directory of the test (the reader's Python) there."""
    base = tmp_path / "configs"
    shutil.copytree(TEST_CONFIGS, base)
    repeater = subprocess.Popen([str(tool_dir() / "caRepeater")], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    server = start_camioc(base, tmp_path / "camioc.log", ["--data-dir", str(tmp_path / "data")])
    monkeypatch.chdir(tmp_path)
    try:
        yield tmp_path, server
    finally:
        stop_camioc(server)
        repeater.terminate()
        repeater.wait(5)


def test_every_python_block_is_run_by_a_test() -> None:
    blocks = python_blocks()
    assert sorted(blocks) == sorted(RUN_BY), (
        f"README blocks run by no test: {sorted(set(blocks) - set(RUN_BY))}; "
        f"RUN_BY entries with no block: {sorted(set(RUN_BY) - set(blocks))}")
    for key, test in RUN_BY.items():
        path, name = test.split("::")
        assert f"\ndef {name}(" in (REPO_ROOT / path).read_text(encoding="utf-8"), f"{key}: {test} does not exist"


def test_shown_output_is_read_from_print_comments() -> None:
    code = 'x = 1  # not a print\nprint(x)   # 1\n    print(f"{x}")  # 1 2\nprint(x)\n'
    assert shown_output(code) == ["1", "1 2"]


def test_a_pipeline_from_python(reader_folder: tuple[Path, CamiocServer],
                                capsys: pytest.CaptureFixture[str]) -> None:
    folder, server = reader_folder
    *_, namespace = run_section(PIPELINE, server, capsys)
    assert namespace["instance_id"] == "simulation_sp1"
    # the background collected is in the server's config folder and subtracted by the private instance
    background = namespace["background_id"]
    assert isinstance(background, str) and (folder / "configs" / "background_config" / f"{background}.npy").is_file()
    config = namespace["pipelines"].get_instance_config("simulation_sp1")  # type: ignore[attr-defined]
    assert (config["image_background_enable"], config["image_background"], config["image_threshold"]) == (
        True, background, 20)
    # the recording: where the README says, 100 frames of the processed stream
    import h5py

    with h5py.File(folder / "data" / "simulation.h5") as f:
        pulse_ids, images = f["header1/pulse_id"], f["data1/image/value"]
        assert isinstance(pulse_ids, h5py.Dataset) and isinstance(images, h5py.Dataset)
        assert pulse_ids.shape == (100,) and images.shape[0] == 100
        assert np.all(np.diff(pulse_ids[:]) > 0)


def test_cameras_from_python(reader_folder: tuple[Path, CamiocServer], capsys: pytest.CaptureFixture[str]) -> None:
    folder, server = reader_folder
    import epics

    def camera_has_published() -> object:
        # The CA block reads image1:'s last frame. A reader types it seconds after the block above
        # started the camera (get_instance_stream); run at once, its first frame may not be there yet.
        return wait_until(lambda: epics.caget(f"{server.prefix}simulation:image1:ArraySize0_RBV", use_monitor=False),
                          timeout=20, what="the camera's first frame on image1:")

    rest_block, ca_block = run_section(CAMERAS, server, capsys, before={2: camera_has_published})
    # "one image as numpy (height, width)"; the next block reads the same camera's image over CA
    image, ca_image = rest_block["image"], ca_block["image"]
    assert isinstance(image, np.ndarray) and isinstance(ca_image, np.ndarray)
    assert image.shape == ca_image.shape == (ca_block["h"], ca_block["w"]), (image.shape, ca_image.shape)
    assert ca_image.dtype == np.uint16 and ca_image.max() > 0
    namespace = ca_block
    # "tcp://127.0.0.1:10100: six channels" (the port is one of the test server's)
    stream = namespace["stream"]
    assert isinstance(stream, str) and re.fullmatch(r"tcp://127\.0\.0\.1:\d+", stream), stream
    message = receive(stream)[0]
    assert sorted(message.data.data) == sorted(["width", "height", "timestamp", "image", "x_axis", "y_axis"])
    # set_camera_config made mycam in the server's config folder (README: where the examples leave changes)
    saved = json.loads((folder / "configs" / "camera_config" / "mycam.json").read_text())
    assert (saved["source"], saved["source_type"]) == ("13SIM1", "epics")
