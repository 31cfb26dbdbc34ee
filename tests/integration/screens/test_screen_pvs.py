"""Every PV a screen names exists on a running camioc: connected over CA (pyepics) and PV Access (p4p).

The files are read the way their tools read them (``tests/support/screen_files.py``): Phoebus'
``pv_name``/``x_pv``/``y_pv`` elements with ``$(P)$(R)`` expanded, PyDM's channels and plot curves
with ``${P}${R}`` expanded; a bare or ``ca://`` name is Channel Access, ``pva://`` PV Access. The
Phoebus files are checked against the widget allow-list here too, so this directory alone says
whether the shipped screens work.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from cam_server_client import PipelineClient
from p4p.client.thread import Context

from tests.integration.screens.conftest import PIPELINE, SAVED_PIPELINE, LiveCamioc
from tests.support import phoebus_schema
from tests.support.screen_files import bob_pvs, bob_widgets, split_protocol, ui_channels

FILES = [
    f"{stem}{suffix}" for stem in ("camioc_service", "camioc_camera", "camioc_pipeline") for suffix in (".bob", ".ui")
]


def _connect_all(live: LiveCamioc, addresses: set[str]) -> list[str]:
    """The addresses that do not connect (CA: pyepics channels; PVA: a p4p get of each)."""
    import epics

    ca = sorted(name for protocol, name in map(split_protocol, addresses) if protocol == "ca")
    pva = sorted(name for protocol, name in map(split_protocol, addresses) if protocol == "pva")
    assert {protocol for protocol, _ in map(split_protocol, addresses)} <= {"ca", "pva"}
    channels = {name: epics.PV(name, auto_monitor=False, connection_timeout=10) for name in ca}
    missing = [name for name, pv in channels.items() if not pv.wait_for_connection(timeout=10)]
    for pv in channels.values():
        pv.disconnect()
    context = Context("pva", conf=live.server.pva_conf(), useenv=False)
    try:
        results = context.get(pva, timeout=10, throw=False) if pva else []
        missing += [
            f"pva://{name}: {result}"
            for name, result in zip(pva, results, strict=True)
            if isinstance(result, Exception)
        ]
    finally:
        context.close()
    return missing


def _addresses(opi: Path, file: str, macros: dict[str, str]) -> set[str]:
    return bob_pvs(opi / file, macros) if file.endswith(".bob") else ui_channels(opi / file, macros)


@pytest.mark.parametrize("file", FILES)
def test_every_pv_of_the_screen_is_served(live_camioc: LiveCamioc, opi: Path, file: str) -> None:
    ET.parse(opi / file)  # parses
    stem = Path(file).stem
    instances = [live_camioc.macros[stem]]
    if stem == "camioc_pipeline":  # the shared instance of the saved pipeline has the same PVs
        instances.append(dict(live_camioc.macros[stem], R=f"{SAVED_PIPELINE}:"))
    for macros in instances:
        addresses = _addresses(opi, file, macros)
        assert len(addresses) > 10
        assert _connect_all(live_camioc, addresses) == []
    if stem != "camioc_service":
        assert any(a.startswith("pva://") and a.endswith(":image1:Pva1:Image") for a in addresses)


def test_the_overview_names_the_running_instances_pvs(live_camioc: LiveCamioc, opi: Path) -> None:
    import epics

    p = live_camioc.server.prefix
    names = {split_protocol(a)[1] for a in bob_pvs(opi / "camioc_service.bob", {"P": p})}
    assert f"{p}simulation:cam1:DetectorState_RBV" in names
    assert epics.caget(f"{p}simulation:cam1:DetectorState_RBV", as_string=True, timeout=5) == "Acquire"
    instances = epics.caget(f"{p}Instances_RBV", as_string=True, timeout=5)
    assert PIPELINE in instances  # a created instance is listed though the file cannot name it


@pytest.mark.parametrize("file", [f for f in FILES if f.endswith(".bob")])
def test_phoebus_widgets_against_the_allow_list(opi: Path, file: str) -> None:
    problems = [
        problem
        for widget in bob_widgets(opi / file)
        for problem in phoebus_schema.widget_problems(
            widget.get("type"), widget.get("version"), {child.tag for child in widget}
        )
    ]
    assert problems == []


@pytest.mark.parametrize("suffix", [".bob", ".ui"])
def test_a_pipeline_named_like_a_camera_has_every_pv_of_its_screen(
    live_camioc: LiveCamioc, opi: Path, suffix: str
) -> None:
    """cam_server sites name a pipeline after its camera: camioc serves its image under image2:, and
    the overview opens camioc_pipeline_image2 for it. An instance named like the configured camera
    ``simulation2`` (reading ``simulation``) has every PV that screen names."""
    pipelines = PipelineClient(live_camioc.server.pipeline_url)
    pipelines.create_instance_from_name(SAVED_PIPELINE, "simulation2", {"no_client_timeout": 0})
    try:
        macros = {"P": live_camioc.server.prefix, "R": "simulation2:"}
        addresses = _addresses(opi, f"camioc_pipeline_image2{suffix}", macros)
        assert f"pva://{live_camioc.server.prefix}simulation2:image2:Pva1:Image" in addresses
        assert _connect_all(live_camioc, addresses) == []
    finally:
        pipelines.stop_instance("simulation2")
