"""A real camioc streaming the simulation camera through a pipeline, for the screen tests.

The server runs on a copy of ``configs/``. The pipeline screen needs an instance whose settings
may be written (the shared instance of a saved pipeline is read-only, as in cam_server), so the
module creates one from ``simulation_sp`` over REST, as cam_server's clients do, with
``no_client_timeout: 0`` so that it runs for as long as the module does; it reads the camera.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from cam_server_client import PipelineClient

from tests.support.server import REPO_ROOT, TEST_CONFIGS, CamiocServer, start_camioc, stop_camioc
from tests.support.waiting import wait_until

CAMERA = "simulation"
#: the saved pipeline the overview lists, and the writable instance made of it for the pipeline screen
SAVED_PIPELINE = "simulation_sp"
PIPELINE = "screens_sp"


@dataclass
class LiveCamioc:
    server: CamiocServer
    #: the macros of each screen (file stem -> macros)
    macros: dict[str, dict[str, str]]


@pytest.fixture(scope="module")
def live_camioc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveCamioc]:
    import epics

    folder = tmp_path_factory.mktemp("screens")
    base = folder / "configs"
    shutil.copytree(TEST_CONFIGS, base)
    server = start_camioc(base, folder / "camioc.log")
    try:
        p = server.prefix
        PipelineClient(server.pipeline_url).create_instance_from_name(
            SAVED_PIPELINE, PIPELINE, {"no_client_timeout": 0}
        )
        wait_until(
            lambda: (epics.caget(f"{p}{PIPELINE}:ArrayCounter_RBV", timeout=2, use_monitor=False) or 0) > 2,
            timeout=60,
            what="the pipeline processing frames",
        )
        wait_until(
            lambda: (epics.caget(f"{p}{CAMERA}:cam1:ArrayCounter_RBV", timeout=2, use_monitor=False) or 0) > 2,
            timeout=30,
            what="the camera streaming",
        )
        macros = {
            "camioc_service": {"P": p},
            "camioc_camera": {"P": p, "R": f"{CAMERA}:"},
            "camioc_pipeline": {"P": p, "R": f"{PIPELINE}:"},
        }
        yield LiveCamioc(server, macros)
    finally:
        stop_camioc(server)


@pytest.fixture(scope="module")
def opi() -> Path:
    return REPO_ROOT / "opi"
