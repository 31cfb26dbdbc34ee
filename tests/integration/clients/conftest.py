"""A real camioc process per test module, for stock EPICS clients (ophyd, ophyd-async, p4p, pyepics).

Each module gets its own server: the clients change the camera's ``ImageMode`` and the pipeline's
``BlockingCallbacks``, which must not leak into another module's expectations.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.support.server import CamiocServer, running_camioc


@pytest.fixture(scope="module")
def camioc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CamiocServer]:
    with running_camioc(tmp_path_factory.mktemp("clients")) as server:
        yield server
