"""Each PyDM screen opens headless (Qt ``offscreen``) against a live camioc and shows live values.

PyDM itself loads the generated ``opi/*.ui`` (its macro substitution, its CA plugin over pyepics,
its PVA plugin over p4p). Checked per screen: no widget is left disconnected, values change while
the simulation streams, the image widget shows the beam (a pixel statistic of the grabbed widget:
not a blank), a line edit typed into and confirmed with Return reaches the PV (caget), and a
screenshot is written to the test's ``tmp_path`` and to ``$CAMIOC_SCREENSHOT_DIR`` when set
(``docs/screenshots/`` holds the ones shown in the README, made by this test).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.integration.screens.conftest import CAMERA, PIPELINE, SAVED_PIPELINE, LiveCamioc
from tests.support.server import TEST_CONFIGS, start_camioc, stop_camioc

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("PYDM_DEFAULT_PROTOCOL", "ca")

from pydm.display import Display, load_file  # noqa: E402 - after the Qt platform is chosen
from pydm.utilities.connection import close_widget_connections  # noqa: E402
from pydm.widgets import (  # noqa: E402
    PyDMEnumComboBox,
    PyDMImageView,
    PyDMLabel,
    PyDMLineEdit,
    PyDMPushButton,
    PyDMRelatedDisplayButton,
    PyDMWaveformPlot,
)
from pydm.widgets.base import PyDMWidget  # noqa: E402
from qtpy.QtCore import QSize, Qt  # noqa: E402
from qtpy.QtGui import QImage  # noqa: E402
from qtpy.QtTest import QTest  # noqa: E402
from qtpy.QtWidgets import QApplication  # noqa: E402


@pytest.fixture(scope="module")
def qt_app(live_camioc: LiveCamioc) -> Iterator[QApplication]:
    # PyDM's PVA plugin makes one p4p Context from the environment on its first pva:// channel
    conf = live_camioc.server.pva_conf()
    saved = {name: os.environ.get(name) for name in conf}
    os.environ.update(conf)
    app = QApplication.instance() or QApplication(["camioc-screens-test"])
    assert isinstance(app, QApplication)
    yield app
    # the rest of the session runs with no PyDM channel open (the displays stay, hidden: see _close)
    for display in _KEEP:
        close_widget_connections(display)
    app.processEvents()
    for name, value in saved.items():  # later tests search their own PVA servers
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


#: Seconds for every widget of a screen to connect (a loaded 2-core machine needs more than a few).
CONNECT_TIMEOUT = 60


def _spin(app: QApplication, predicate: Callable[[], Any], timeout: float, what: str) -> Any:
    """Run the Qt event loop until ``predicate()`` is truthy (returned); fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        app.processEvents()
        value = predicate()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        QTest.qWait(50)


def _open(app: QApplication, opi: Path, stem: str, macros: dict[str, str]) -> Display:
    display = load_file(str(opi / f"{stem}.ui"), macros=macros, target=None)
    assert isinstance(display, Display)
    display.show()
    app.processEvents()
    return display


def _channel_widgets(display: Display) -> list[PyDMWidget]:
    return [w for w in display.findChildren(PyDMWidget) if getattr(w, "channel", None)]


def _disconnected(display: Display) -> list[str]:
    missing = [str(w.channel) for w in _channel_widgets(display) if not w._connected]
    for plot in display.findChildren(PyDMWaveformPlot):  # a curve tracks no connection: its data came
        missing += [
            f"{curve.y_address} over {curve.x_address}"
            for curve in plot._curves
            if curve.x_waveform is None or curve.y_waveform is None
        ]
    return missing


def _label(display: Display, suffix: str) -> PyDMLabel:
    """The label of the PV whose name ends in ``:<suffix>``."""
    (label,) = [w for w in display.findChildren(PyDMLabel) if str(w.channel).endswith(f":{suffix}")]
    return label


def _pixels(widget: Any) -> np.ndarray:
    """The widget as it is drawn: an (h, w, 4) array of RGBA bytes."""
    image = widget.grab().toImage().convertToFormat(QImage.Format_RGBA8888)
    buffer = image.constBits()
    buffer.setsize(image.byteCount())
    # copied: the array would otherwise point into the QImage, freed when this function returns
    return np.frombuffer(buffer, np.uint8).reshape(image.height(), image.bytesPerLine() // 4, 4)[:, : image.width()].copy()


def _shows_a_beam(view: PyDMImageView) -> bool:
    """Not a blank: the drawn image has a bright spot (a small part of it, much brighter than the
    median) on a darker field, in many shades."""
    grey = _pixels(view)[..., :3].astype(float).mean(axis=2)
    spot = grey > np.median(grey) + 50
    return bool(0.0001 < spot.mean() < 0.2 and len(np.unique(grey)) > 32)


def _screenshot(app: QApplication, display: Display, stem: str, tmp_path: Path) -> Path:
    # the window grows with what it shows (the image view asks for the image's size): back to what
    # its layout asks for, within a 1920 x 1440 screen, laid out before the grab
    display.resize(display.sizeHint().boundedTo(QSize(1920, 1440)))
    QTest.qWait(200)
    app.processEvents()
    path = tmp_path / f"{stem}.png"
    assert display.grab().save(str(path))
    assert path.stat().st_size > 10_000
    if target := os.environ.get("CAMIOC_SCREENSHOT_DIR"):
        Path(target).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, Path(target) / path.name)
    return path


#: Displays are hidden, not deleted, until the module ends: deleting pyqtgraph views while their
#: queued events are still pending crashes Qt.
_KEEP: list[Display] = []


def _close(app: QApplication, display: Display) -> None:
    display.hide()
    _KEEP.append(display)
    app.processEvents()


def _type_into(app: QApplication, edit: PyDMLineEdit, text: str) -> None:
    edit.setFocus()
    edit.selectAll()
    QTest.keyClicks(edit, text)
    QTest.keyClick(edit, Qt.Key.Key_Return)
    app.processEvents()


def test_camera_screen_live(qt_app: QApplication, live_camioc: LiveCamioc, opi: Path, tmp_path: Path) -> None:
    import epics

    macros = live_camioc.macros["camioc_camera"]
    display = _open(qt_app, opi, "camioc_camera", macros)
    try:
        assert len(_channel_widgets(display)) > 30
        _spin(
            qt_app,
            lambda: not _disconnected(display),
            CONNECT_TIMEOUT,
            f"every widget connected: {_disconnected(display)}",
        )
        counter = _label(display, "cam1:ArrayCounter_RBV")
        first = _spin(qt_app, lambda: counter.text().strip(), 10, "the frame counter shown")
        _spin(qt_app, lambda: counter.text().strip() not in ("", first), 10, "the frame counter moving")
        assert float(_label(display, "cam1:ArrayRate_RBV").text().split()[0]) > 1
        assert _label(display, "cam1:DetectorState_RBV").text() == "Acquire"
        assert _label(display, "cam1:StreamAddress_RBV").text().startswith("tcp://")
        (view,) = display.findChildren(PyDMImageView)
        assert view.imageChannel.startswith("pva://") and view.imageChannel.endswith(f"{CAMERA}:image1:Pva1:Image")
        _spin(qt_app, lambda: _shows_a_beam(view), 30, "the beam in the image widget")
        # a setting typed into its line edit reaches the PV
        pv = f"{macros['P']}{CAMERA}:image1:MinCallbackTime"
        (edit,) = [w for w in display.findChildren(PyDMLineEdit) if str(w.channel) == f"ca://{pv}"]
        _type_into(qt_app, edit, "0.25")
        _spin(
            qt_app,
            lambda: epics.caget(pv, timeout=2, use_monitor=False) == pytest.approx(0.25),
            10,
            "the typed MinCallbackTime on the PV",
        )
        _spin(
            qt_app,
            lambda: _label(display, "image1:MinCallbackTime_RBV").text().startswith("0.25"),
            10,
            "its readback on the screen",
        )
        combos = display.findChildren(PyDMEnumComboBox)
        assert {str(c.channel).rsplit(":", 1)[1] for c in combos} >= {"ReverseX", "ReverseY", "EnableCallbacks"}
        assert all(c.isEnabled() for c in combos)  # the open policy lets this host write
        shot = _screenshot(qt_app, display, "camioc_camera", tmp_path)
        assert shot.is_file()
    finally:
        _close(qt_app, display)


def test_pipeline_screen_live(qt_app: QApplication, live_camioc: LiveCamioc, opi: Path, tmp_path: Path) -> None:
    import epics

    macros = live_camioc.macros["camioc_pipeline"]
    display = _open(qt_app, opi, "camioc_pipeline", macros)
    try:
        _spin(
            qt_app,
            lambda: not _disconnected(display),
            CONNECT_TIMEOUT,
            f"every widget connected: {_disconnected(display)}",
        )
        centroid = _spin(
            qt_app, lambda: _label(display, f"{PIPELINE}:CentroidX_RBV").text().split(), 10, "the centroid shown"
        )
        assert 0 < float(centroid[0]) < 1280 and centroid[-1] == "px"
        assert _label(display, f"{PIPELINE}:DetectorState_RBV").text() == "Acquire"
        (view,) = display.findChildren(PyDMImageView)
        _spin(qt_app, lambda: _shows_a_beam(view), 30, "the processed beam in the image widget")
        plots = display.findChildren(PyDMWaveformPlot)
        assert len(plots) == 2
        for plot in plots:
            _spin(
                qt_app,
                lambda plot=plot: all(c.y_waveform is not None and len(c.y_waveform) > 10 for c in plot._curves),
                20,
                "profiles and fits plotted",
            )
            profile, fit = plot._curves
            assert np.nanmax(profile.y_waveform) > np.nanmin(profile.y_waveform)  # a beam, not a flat line
            assert np.nanmax(fit.y_waveform) > np.nanmin(fit.y_waveform)
        pv = f"{macros['P']}{PIPELINE}:CentroidThreshold"
        (edit,) = [w for w in display.findChildren(PyDMLineEdit) if str(w.channel) == f"ca://{pv}"]
        _type_into(qt_app, edit, "3.5")
        _spin(
            qt_app,
            lambda: epics.caget(pv, timeout=2, use_monitor=False) == pytest.approx(3.5),
            10,
            f"the typed threshold on the PV ({edit.text()!r}, {epics.caget(pv, timeout=2, use_monitor=False)})",
        )
        _spin(
            qt_app,
            lambda: epics.caget(f"{pv}_RBV", timeout=2, use_monitor=False) == pytest.approx(3.5),
            10,
            "the threshold in force",
        )
        buttons = {b.text(): b for b in display.findChildren(PyDMPushButton)}
        assert {"Start", "Stop", "Collect background"} <= set(buttons)
        _screenshot(qt_app, display, "camioc_pipeline", tmp_path)
    finally:
        _close(qt_app, display)


def test_service_screen_live(qt_app: QApplication, live_camioc: LiveCamioc, opi: Path, tmp_path: Path) -> None:
    display = _open(qt_app, opi, "camioc_service", live_camioc.macros["camioc_service"])
    try:
        _spin(
            qt_app,
            lambda: not _disconnected(display),
            CONNECT_TIMEOUT,
            f"every widget connected: {_disconnected(display)}",
        )
        heartbeat = _label(display, "HEARTBEAT")
        first = _spin(qt_app, lambda: heartbeat.text().strip(), 10, "the heartbeat shown")
        _spin(qt_app, lambda: heartbeat.text().strip() not in ("", first), 10, "the heartbeat moving")
        assert PIPELINE in _label(display, "Instances_RBV").text()
        assert _label(display, f"{CAMERA}:cam1:DetectorState_RBV").text() == "Acquire"
        assert _label(display, f"{SAVED_PIPELINE}:DetectorState_RBV").text()  # a state, running or not
        buttons = {tuple(b.macros): b for b in display.findChildren(PyDMRelatedDisplayButton)}
        camera_button = buttons[('{"R": "simulation:"}',)]
        assert camera_button.filenames == ["camioc_camera.ui"]
        # the button opens the camera's screen with R from the button and P from the overview
        opened = camera_button.open_display("camioc_camera.ui", camera_button.macros[0], target=None)
        assert isinstance(opened, Display)
        try:
            _spin(qt_app, lambda: not _disconnected(opened), 30, "the opened camera screen connected")
            assert _label(opened, "cam1:DetectorState_RBV").text() == "Acquire"
        finally:
            _close(qt_app, opened)
        _screenshot(qt_app, display, "camioc_service", tmp_path)
    finally:
        _close(qt_app, display)


READ_ONLY_POLICY = "default: read\n"


def test_write_widgets_show_read_only_when_the_policy_denies_writes(
    qt_app: QApplication, opi: Path, tmp_path: Path
) -> None:
    """With a policy that lets nobody write, CA tells PyDM the PVs are read-only: it disables every
    write widget (line edits, combo boxes, buttons) while the readbacks still show values."""
    base = tmp_path / "configs"
    shutil.copytree(TEST_CONFIGS, base)
    (tmp_path / "policy.yaml").write_text(READ_ONLY_POLICY)
    # on the auxiliary CA port: the module's live server keeps the main one (tests/conftest.py)
    server = start_camioc(
        base,
        tmp_path / "camioc.log",
        ["--access-policy", str(tmp_path / "policy.yaml")],
        env_overrides=dict.fromkeys(
            ("EPICS_CAS_SERVER_PORT", "EPICS_CA_SERVER_PORT"), os.environ["CAMIOC_TEST_CA_PORT2"]
        ),
    )
    try:
        display = _open(qt_app, opi, "camioc_camera", {"P": server.prefix, "R": f"{CAMERA}:"})
        try:
            _spin(
                qt_app,
                lambda: not _disconnected(display),
                CONNECT_TIMEOUT,
                f"every widget connected: {_disconnected(display)}",
            )
            writers = [
                *display.findChildren(PyDMLineEdit),
                *display.findChildren(PyDMEnumComboBox),
                *display.findChildren(PyDMPushButton),
            ]
            assert len(writers) > 10
            _spin(
                qt_app,
                lambda: not any(w.isEnabled() for w in writers),
                10,
                f"write widgets disabled: {[str(w.channel) for w in writers if w.isEnabled()]}",
            )
            assert _label(display, "cam1:DetectorState_RBV").text() == "Idle"  # reading still works
        finally:
            _close(qt_app, display)
    finally:
        stop_camioc(server)
