"""PidReorderBuffer: pulse-id order within the buffer, late and duplicate messages counted."""

from __future__ import annotations

from camioc.streams.reorder import PidReorderBuffer


def test_releases_in_pulse_id_order_once_full() -> None:
    buffer: PidReorderBuffer[str] = PidReorderBuffer(3)
    released = []
    for pulse_id in (5, 3, 4, 8, 6, 7, 9):
        released += buffer.push(pulse_id, f"m{pulse_id}")
    assert released == ["m3", "m4", "m5", "m6"]
    assert buffer.flush() == ["m7", "m8", "m9"]
    assert len(buffer) == 0 and buffer.pop() is None


def test_late_and_duplicate_messages_are_refused_and_counted() -> None:
    buffer: PidReorderBuffer[int] = PidReorderBuffer(2)
    assert buffer.push(10, 10) == [] and buffer.push(11, 11) == []
    assert buffer.push(11, 11) == []  # duplicate while pending
    assert buffer.push(12, 12) == [10]
    assert buffer.push(9, 9) == []  # older than the last released
    assert buffer.push(10, 10) == []  # equal to the last released
    assert buffer.late == 3
    assert buffer.pop() == 11 and buffer.last_emitted == 11


def test_size_is_at_least_one() -> None:
    buffer: PidReorderBuffer[int] = PidReorderBuffer(0)
    assert buffer.push(1, 1) == [] and buffer.push(2, 2) == [1]
