"""caproto's noisy log records become one clear line."""

from __future__ import annotations

import logging

from camioc.ioc.server import BeaconLogFilter


def _beacon_record(address) -> logging.LogRecord:
    try:
        raise ConnectionRefusedError(111, "Connection refused")
    except ConnectionRefusedError:
        import sys

        record = logging.LogRecord("caproto.ctx", logging.ERROR, __file__, 1,
                                   "Failed to send beacon to %r. Try setting EPICS_CAS_AUTO_BEACON_ADDR_LIST=no",
                                   (address,), sys.exc_info())
    return record


def test_an_unreachable_beacon_address_is_one_warning_without_traceback():
    beacons = BeaconLogFilter()
    first = _beacon_record(("127.0.0.1", 5065))
    assert beacons.filter(first)
    assert first.levelno == logging.WARNING and first.exc_info is None
    assert "127.0.0.1" in first.getMessage() and "Connection refused" in first.getMessage()
    assert not beacons.filter(_beacon_record(("127.0.0.1", 5065)))  # the same address: silent
    assert beacons.filter(_beacon_record(("10.0.0.255", 5065)))  # another address: its own line
    other = logging.LogRecord("caproto.ctx", logging.INFO, __file__, 1, "Asyncio server starting up...", (), None)
    assert beacons.filter(other) and other.levelno == logging.INFO
