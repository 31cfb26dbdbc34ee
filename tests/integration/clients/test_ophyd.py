"""ophyd's stock areaDetector classes with bluesky against a real camioc: the README's snippet, run
as it stands, and every PV those classes declare."""

from __future__ import annotations

import math
import time

import pytest

from tests.integration.clients.clients_support import StreamRecorder
from tests.integration.clients.readme_snippets import run_snippet
from tests.support.server import CamiocServer
from tests.support.waiting import wait_until

epics = pytest.importorskip("epics")  # pyepics is a declared dependency; this never skips in CI
ophyd = pytest.importorskip("ophyd")  # in the test extra; never skips in CI

#: PVs of ophyd's CamBase / ImagePlugin / StatsPlugin camioc does not serve (README, PV table):
#: asyn's record, NDStats' time series and profile variants.
NOT_SERVED = {"AsynIO", "TSAcquiring", "TSCentroidX", "TSCentroidY", "TSControl", "TSCurrentPoint", "TSMaxValue",
              "TSMaxX", "TSMaxY", "TSMeanValue", "TSMinValue", "TSMinX", "TSMinY", "TSNet", "TSNumPoints", "TSRead",
              "TSSigma", "TSSigmaX", "TSSigmaXY", "TSSigmaY", "TSTotal"} | {
    f"Profile{kind}{axis}_RBV" for kind in ("Average", "Centroid", "Cursor", "Threshold") for axis in "XY"}


def test_count_reads_the_frame_each_trigger_acquired(camioc: CamiocServer) -> None:
    p = camioc.prefix
    # the pipeline runs (and streams) before the plan, its camera in Multiple mode: no frame yet
    assert epics.caput(f"{p}simulation:cam1:ImageMode", "Multiple", wait=True, timeout=10) == 1
    assert epics.caput(f"{p}simulation_sp:EnableCallbacks", 1, wait=True, timeout=60) == 1
    address = wait_until(lambda: epics.caget(f"{p}simulation_sp:StreamAddress_RBV", as_string=True,
                                             use_monitor=False), timeout=30, what="the pipeline's stream")
    with StreamRecorder(address) as stream:
        started = time.time()
        namespace = run_snippet("ophyd", CAMIOC_PREFIX=p)
        with stream.lock:
            streamed = dict(stream.by_pulse)
    documents = namespace["documents"]
    assert isinstance(documents, list)
    events = [doc for name, doc in documents if name == "event"]
    assert len(events) == 3
    pulses = [int(event["data"]["det_stats_unique_id"]) for event in events]
    assert pulses == sorted(set(pulses)), pulses  # three frames, in order
    # the camera published exactly the three frames its three triggers acquired, nothing between
    assert sorted(streamed) == pulses, (sorted(streamed), pulses)
    for event, pulse in zip(events, pulses, strict=True):
        frame = streamed[pulse]
        assert float(frame["timestamp"]) > started  # acquired during the plan
        data = event["data"]
        assert math.isclose(data["det_stats_centroid_x"], frame["x_center_of_mass"], rel_tol=1e-9)
        assert math.isclose(data["det_stats_sigma_x"], frame["x_rms"], rel_tol=1e-9)
        assert data["det_stats_total"] == pytest.approx(float(frame["intensity"]))
        # the readings carry the frame's timestamp
        assert event["timestamps"]["det_stats_centroid_x"] == pytest.approx(float(frame["timestamp"]), abs=1e-3)
    descriptor = next(doc for name, doc in documents if name == "descriptor")
    centroid = descriptor["data_keys"]["det_stats_centroid_x"]
    assert (centroid["dtype"], centroid["shape"]) == ("number", [])
    assert centroid["source"] == f"PV:{p}simulation_sp:CentroidX_RBV"
    det = namespace["det"]
    assert det.read()  # type: ignore[attr-defined]
    assert det.describe()["det_stats_total"]["dtype"] == "number"  # type: ignore[attr-defined]
    # unstaged: the plan's settings are back as they were
    assert epics.caget(f"{p}simulation:cam1:ImageMode_RBV", as_string=True, use_monitor=False) == "Multiple"


def _suffixes(cls: type) -> set[str]:
    """Every PV suffix ophyd's class ``cls`` declares (sub-devices and ``_RBV`` pairs included)."""
    from ophyd import EpicsSignalWithRBV
    from ophyd.signal import EpicsSignalBase

    found: set[str] = set()
    for name in cls.component_names:  # type: ignore[attr-defined]
        component = getattr(cls, name)
        if getattr(component.cls, "component_names", None):
            found |= {component.suffix + suffix for suffix in _suffixes(component.cls)}
        elif hasattr(component, "defn"):  # a DynamicDeviceComponent: (class, suffix, kwargs) per item
            found |= {item[1] for item in component.defn.values()}
        elif issubclass(component.cls, EpicsSignalBase) and component.suffix:
            found.add(component.suffix)
            if issubclass(component.cls, EpicsSignalWithRBV):
                found.add(component.suffix + "_RBV")
    return found


def test_every_pv_of_the_stock_classes_connects(camioc: CamiocServer) -> None:
    from ophyd.areadetector import CamBase, ImagePlugin, StatsPlugin

    p = camioc.prefix
    names = [f"{p}{block}{suffix}" for block, cls in (("simulation:cam1:", CamBase), ("simulation:image1:", ImagePlugin),
                                                       ("simulation_sp:", StatsPlugin))
             for suffix in sorted(_suffixes(cls)) if suffix not in NOT_SERVED]
    assert len(names) > 200  # 216 with ophyd 1.11
    pvs = [epics.PV(name, auto_monitor=False) for name in names]
    deadline = time.monotonic() + 60
    missing = [pv.pvname for pv in pvs if not pv.wait_for_connection(timeout=max(0.5, deadline - time.monotonic()))]
    assert missing == []
