"""The REST suites' real camioc server: one per test module, on a fresh copy of ``configs/``.

A module that needs other command-line options defines its own ``server`` fixture; ``pipe`` then
uses that one (pytest's fixture overriding).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from cam_server_client import PipelineClient

from tests.support.server import CamiocServer, running_camioc


@pytest.fixture(scope="module")
def server(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[CamiocServer]:
    folder = tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])
    with running_camioc(folder) as server:
        yield server


@pytest.fixture
def pipe(server: CamiocServer) -> Iterator[PipelineClient]:
    """A PipelineClient of the module's server; every instance it left is stopped afterwards."""
    client = PipelineClient(server.pipeline_url)
    yield client
    client.stop_all_instances()
