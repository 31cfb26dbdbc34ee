"""A real camioc process and a real p4p client for the PV Access tests.

The server gets free PVA ports of its own (``tests/support/server.py``); the client searches only
that server (``CamiocServer.pva_conf()``: loopback, its UDP port, no auto address list).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from p4p.client.thread import Context

from tests.support.server import CamiocServer, running_camioc


@pytest.fixture(scope="module")
def camioc_pva(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CamiocServer]:
    with running_camioc(tmp_path_factory.mktemp("pva")) as server:
        yield server


@pytest.fixture(scope="module")
def pva(camioc_pva: CamiocServer) -> Iterator[Context]:
    context = Context("pva", conf=camioc_pva.pva_conf(), useenv=False)
    try:
        yield context
    finally:
        context.close()
