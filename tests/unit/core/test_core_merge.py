"""Pulse-id matching (camioc.core.merge) and the input-side checks (camioc.core.pipeline_inputs), no sockets."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from camioc.core.merge import (
    DEFAULT_DATA_BUFFER,
    DEFAULT_IMAGE_BUFFER,
    MergedInput,
    PidMatcher,
    channel_list,
    merge_messages,
    merge_settings,
)
from camioc.core.pipeline_inputs import (
    OutputOrder,
    check_input_config,
    is_stream_input,
    prepare_libs,
    receive_wait,
    stream_channels,
    stream_timeout,
)
from camioc.errors import ConfigError
from camioc.streams.bsread import BsreadMessage, BsreadReceiver, ChannelSpec

# ------------------------------------------------------------------------------------------------
# PidMatcher


def test_pairs_in_either_arrival_order() -> None:
    matcher: PidMatcher[str, str] = PidMatcher(10, 10)
    assert matcher.add_primary(5, "img5") == []
    assert matcher.add_secondary(5, "bs5") == [(5, "img5", "bs5")]
    assert matcher.add_secondary(6, "bs6") == []
    assert matcher.add_primary(6, "img6") == [(6, "img6", "bs6")]
    assert (matcher.matched, matcher.missing, matcher.unused) == (2, 0, 0)
    assert matcher.waiting == (0, 0)


def test_frame_older_than_newest_data_is_missing() -> None:
    matcher: PidMatcher[str, str] = PidMatcher(10, 10)
    matcher.add_secondary(10, "bs10")
    assert matcher.add_primary(9, "img9") == []  # its data can no longer come
    assert (matcher.missing, matcher.last_missing) == (1, 9)
    assert matcher.waiting == (0, 1)


def test_waiting_frames_skipped_by_the_data_are_missing() -> None:
    matcher: PidMatcher[str, str] = PidMatcher(10, 10)
    for pid in (1, 2, 3):
        matcher.add_primary(pid, f"img{pid}")
    assert matcher.add_secondary(3, "bs3") == [(3, "img3", "bs3")]
    assert matcher.missing == 2 and matcher.last_missing == 2


def test_image_buffer_bound_evicts_and_counts() -> None:
    matcher: PidMatcher[str, str] = PidMatcher(2, 10)
    for pid in (1, 2, 3, 4):
        matcher.add_primary(pid, f"img{pid}")
    assert matcher.waiting == (2, 0)
    assert (matcher.missing, matcher.last_missing) == (2, 2)
    assert matcher.add_secondary(4, "bs4") == [(4, "img4", "bs4")]
    assert matcher.missing == 3  # img3 was skipped by bs4


def test_data_buffer_bound_and_unused_data() -> None:
    matcher: PidMatcher[str, str] = PidMatcher(10, 3)
    for pid in range(1, 7):
        matcher.add_secondary(pid, f"bs{pid}")
    assert matcher.waiting == (0, 3) and matcher.unused == 3
    assert matcher.add_primary(2, "img2") == []  # bs2 was evicted: missing, not matched
    assert matcher.missing == 1
    assert matcher.add_primary(5, "img5") == [(5, "img5", "bs5")]
    assert matcher.unused == 4  # bs4 older than the match


def test_clear_counts_what_was_waiting() -> None:
    matcher: PidMatcher[str, str] = PidMatcher(10, 10)
    matcher.add_primary(1, "a")
    matcher.add_secondary(0, "b")
    matcher.clear()
    assert (matcher.missing, matcher.unused, matcher.waiting) == (1, 1, (0, 0))
    with pytest.raises(ValueError, match="buffer sizes"):
        PidMatcher(0, 1)


def test_merge_messages_primary_wins_and_channel_filter() -> None:
    spec = ChannelSpec.from_header({"name": "image", "type": "uint16", "shape": [2, 2]})
    primary = BsreadMessage(7, (1, 2), {"image": 1, "energy": "camera's"}, (spec,), False, "a")
    secondary = BsreadMessage(7, (3, 4), {"energy": 5.0, "charge": 2.0, "other": 1}, (), True, "b")
    merged = merge_messages(primary, secondary, ["charge", "energy"])
    assert merged.data == {"image": 1, "energy": "camera's", "charge": 2.0}
    assert merged.merged == ("charge",)
    assert (merged.pulse_id, merged.timestamp, merged.format_changed) == (7, (1, 2), True)


def test_reconnected_merged_input_keeps_its_counters() -> None:
    settings = merge_settings({"camera_name": "c", "bsread_address": "tcp://127.0.0.1:1"}, None)
    assert settings is not None
    old = MergedInput(BsreadReceiver("tcp://127.0.0.1:2"), settings)
    old.matcher.add_secondary(5, "bs")
    old.matcher.add_primary(4, "img")
    new = MergedInput(BsreadReceiver("tcp://127.0.0.1:2"), settings)  # never connected: no sockets
    new.carry_counters(old)
    assert new.statistics()["merge_missing"] == 1 and new.statistics()["merge_waiting"] == 0


# ------------------------------------------------------------------------------------------------
# settings and checks


def test_merge_settings_defaults_and_dispatcher() -> None:
    assert merge_settings({"camera_name": "c"}, None) is None
    settings = merge_settings({"camera_name": "c", "bsread_address": "tcp://h:1"}, None)
    assert settings is not None
    assert (settings.role, settings.mode, settings.channels) == ("bsdata", "SUB", None)
    assert (settings.primary_buffer, settings.secondary_buffer) == (DEFAULT_IMAGE_BUFFER, DEFAULT_DATA_BUFFER)
    with pytest.raises(ConfigError, match="needs a dispatcher: start camioc with --dispatcher-url"):
        merge_settings({"camera_name": "c", "bsread_channels": ["A"]}, None)
    settings = merge_settings({"camera_name": "c", "bsread_channels": '["A", "B"]'}, "tcp://d:2")
    assert settings is not None and settings.from_dispatcher
    assert (settings.address, settings.channels) == ("tcp://d:2", ("A", "B"))
    two = merge_settings({"pipeline_type": "stream", "bsread_address2": "tcp://h:3", "bsread_mode2": "pull",
                          "merge_buffer_size": 7}, None)
    assert two is not None and (two.role, two.mode, two.primary_buffer) == ("stream2", "PULL", 7)
    assert channel_list([]) is None and channel_list("A") == ("A",)


def test_check_input_config_refuses_with_the_key_named(tmp_path: Path) -> None:
    libs = tmp_path / "lib"
    libs.mkdir()
    (libs / "mylib.py").write_text("X = 1\n")
    ok = [
        {"camera_name": "c"},
        {"camera_name": "c", "bsread_address": "tcp://h:1", "bsread_image_buf": 5, "bsread_mode": "PULL"},
        {"pipeline_type": "stream", "bsread_address": "tcp://h:1", "bsread_address2": "tcp://h:2",
         "merge_queue_size": 5},
        {"camera_name": "c", "libs": ["mylib.py"]},
        {"camera_name": "c", "libs": ["mylib"]},
        {"camera_name": "c", "dispatcher_verify_request": True},
        {"pipeline_type": "stream", "bsread_address": "tcp://h:1", "bsread_channels": []},
    ]
    for config in ok:
        check_input_config(config, dispatcher_url=None, libs_dir=libs)
    refused = {
        "'bsread_channels' without 'bsread_address' needs a dispatcher": {"camera_name": "c",
                                                                          "bsread_channels": ["X"]},
        "'bsread_image_buf' needs 'bsread_address'": {"camera_name": "c", "bsread_image_buf": 3},
        "'bsread_address2' is supported by stream pipelines only": {"camera_name": "c",
                                                                    "bsread_address2": "tcp://h:2"},
        "'merge_buffer_size' needs a second input": {"pipeline_type": "stream", "bsread_address": "tcp://h:1",
                                                     "merge_buffer_size": 3},
        "'bsread_address' is not supported by store pipelines": {"pipeline_type": "store", "camera_name": "c",
                                                                 "bsread_address": "tcp://h:1"},
        "Lib 'nolib.py' does not exist": {"camera_name": "c", "libs": ["nolib.py"]},
        "'dispatcher_disable_compression' is not supported": {"camera_name": "c",
                                                              "dispatcher_disable_compression": True},
        "Invalid value for 'dispatcher_url'": {"camera_name": "c", "bsread_channels": ["A"],
                                               "dispatcher_url": "https://dispatcher-api.psi.ch/sf-databuffer"},
        "'bsread_channels2' without 'bsread_address2' needs a dispatcher": {
            "pipeline_type": "stream", "bsread_address": "tcp://h:1", "bsread_channels2": ["A"]},
    }
    for message, config in refused.items():
        with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
            check_input_config(config, dispatcher_url=None, libs_dir=libs)
    check_input_config({"camera_name": "c", "bsread_channels": ["X"]}, dispatcher_url="tcp://d:1", libs_dir=libs)


def test_output_order() -> None:
    assert OutputOrder.from_config({}) is None
    order = OutputOrder.from_config({"enforce_pid": True})
    assert order is not None
    assert [order.admit(pid, (100, 0)) for pid in (1, 2, 2, 1, 3)] == [True, True, False, False, True]
    assert order.statistics() == {"pid_dropped": 2}
    stamps = OutputOrder(enforce_timestamp=True)
    assert [stamps.admit(1, t) for t in ((5, 1), (5, 2), (5, 2), (4, 9), 6.5)] == [True, True, False, False, True]
    assert stamps.timestamp_dropped == 2
    check = OutputOrder(check_timestamp=True)
    assert check.admit(3_000_123, (10, 555_000_123)) and not check.admit(3_000_124, (10, 555_000_123))
    assert check.statistics() == {"timestamp_invalid": 1}


def test_small_helpers(tmp_path: Path) -> None:
    assert is_stream_input({"pipeline_type": "stream", "bsread_address": "tcp://h:1"})
    assert is_stream_input({"camera_name": "c", "input_stream": "tcp://h:1"})
    assert not is_stream_input({"camera_name": "c"})
    assert not is_stream_input({"pipeline_type": "stream", "input_pipeline": "p"})
    assert stream_timeout({}) == 10.0 and stream_timeout({"stream_timeout": 0}) == 0.0
    assert receive_wait({}) == 0.1 and receive_wait({"receive_timeout": 5000}) == 1.0
    assert receive_wait({"receive_timeout": 20}) == pytest.approx(0.02)
    assert stream_channels({"A": 1, "B": 2, "C": 3}, {"bsread_channels": ["A"]}, ("C",)) == {"A": 1, "C": 3}
    assert stream_channels({"A": 1}, {}) == {"A": 1}
    libs = tmp_path / "lib"
    libs.mkdir()
    (libs / "camioc_test_lib_xyz.py").write_text("VALUE = 42\n")
    added = prepare_libs(["camioc_test_lib_xyz.py"], libs)
    try:
        assert added == [str(libs)]
        import camioc_test_lib_xyz  # type: ignore[import-not-found]

        assert camioc_test_lib_xyz.VALUE == 42
        (libs / "camioc_test_lib_xyz.py").write_text("VALUE = 43\n")
        prepare_libs(["camioc_test_lib_xyz"], libs, reload=True)
        assert "camioc_test_lib_xyz" not in sys.modules
    finally:
        for entry in added:
            sys.path.remove(entry)
        sys.modules.pop("camioc_test_lib_xyz", None)
