"""CameraStreamPublisher argument checks (no socket needed: they fail before sending)."""

from __future__ import annotations

import numpy as np
import pytest

from camioc.errors import InstanceError
from camioc.streams.camera_stream import CameraStreamPublisher


@pytest.fixture
def publisher() -> CameraStreamPublisher:
    return CameraStreamPublisher(port=None)  # never opened


def test_rejects_wrong_axes_and_reserved_extra_names(publisher) -> None:
    image = np.zeros((4, 6), np.uint16)
    with pytest.raises(ValueError, match="do not match"):
        publisher.publish(image, np.arange(4), np.arange(4), pulse_id=1, timestamp=0.0)
    with pytest.raises(ValueError, match="2-D"):
        publisher.publish(np.zeros(6), np.arange(6), np.arange(1), pulse_id=1, timestamp=0.0)
    with pytest.raises(ValueError, match="reuse"):
        publisher.publish(image, np.arange(6), np.arange(4), pulse_id=1, timestamp=0.0, extra={"width": 1})


def test_publish_before_open_is_a_clear_error(publisher) -> None:
    image = np.zeros((4, 6), np.uint16)
    with pytest.raises(InstanceError, match="not open"):
        publisher.publish(image, np.arange(6), np.arange(4), pulse_id=1, timestamp=0.0)
    assert publisher.client_count() == 0 and publisher.endpoint == ""
