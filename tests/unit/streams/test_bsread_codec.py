"""The bsread wire format without sockets: encoder -> parts -> decoder, header policy, bad input."""

from __future__ import annotations

import hashlib
import json
import struct

import lz4.block
import numpy as np
import pytest

from camioc.streams.bsread import (
    BsreadDecoder,
    BsreadEncoder,
    ChannelSpec,
    HeaderPolicy,
    MalformedMessageError,
    split_timestamp,
)

ALL_TYPES = ["bool", "int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64",
             "float32", "float64"]
NP = {"bool": np.bool_, **{t: getattr(np, t) for t in ALL_TYPES if t != "bool"}}


def roundtrip(data, encoder=None, decoder=None, pulse_id=1, timestamp=(10, 20)):
    encoder = encoder or BsreadEncoder()
    decoder = decoder or BsreadDecoder()
    parts = encoder.encode(data, pulse_id=pulse_id, timestamp=timestamp)
    return parts, decoder.decode([bytes(memoryview(p)) for p in parts])


def header(parts) -> dict:
    return json.loads(parts[1])


# ---------------------------------------------------------------- wire layout
def test_message_layout_hash_and_image_shape_order() -> None:
    image = np.arange(12, dtype=np.uint16).reshape(3, 4)  # height 3, width 4
    parts, msg = roundtrip({"image": image, "width": 4}, pulse_id=77, timestamp=(1508856598, 865393891))
    assert len(parts) == 2 + 2 * 2
    main = json.loads(parts[0])
    assert main == {"htype": "bsr_m-1.1", "pulse_id": 77,
                    "global_timestamp": {"sec": 1508856598, "ns": 865393891},
                    "hash": hashlib.md5(parts[1]).hexdigest()}
    channels = header(parts)["channels"]
    assert header(parts)["htype"] == "bsr_d-1.1"
    assert channels[0] == {"name": "image", "type": "uint16", "shape": [4, 3], "encoding": "little",
                           "compression": "none"}
    assert channels[1]["type"] == "int64" and channels[1]["shape"] == [1]
    assert parts[3] == struct.pack("<qq", 1508856598, 865393891) == parts[5]
    assert msg.pulse_id == 77 and msg.timestamp == (1508856598, 865393891)
    np.testing.assert_array_equal(msg.data["image"], image)
    assert msg.data["width"] == 4 and isinstance(msg.data["width"], np.int64)


@pytest.mark.parametrize("ctype", ALL_TYPES)
def test_every_type_scalar_and_array(ctype: str) -> None:
    arr = (np.arange(6) % 2 == 1) if ctype == "bool" else np.arange(6).astype(ctype)
    scalar = NP[ctype](1)
    parts, msg = roundtrip({"s": scalar, "a": arr, "m": arr.reshape(2, 3)})
    specs = {c["name"]: c for c in header(parts)["channels"]}
    assert specs["s"]["type"] == specs["a"]["type"] == specs["m"]["type"] == ctype
    assert specs["m"]["shape"] == [3, 2]
    assert msg.data["s"] == scalar and msg.data["s"].dtype == np.dtype(ctype)
    np.testing.assert_array_equal(msg.data["a"], arr)
    np.testing.assert_array_equal(msg.data["m"], arr.reshape(2, 3))
    assert not msg.data["m"].flags.writeable


def test_python_values_none_strings_lists_and_big_endian() -> None:
    data = {"i": 3, "f": 2.5, "b": True, "s": "héllo", "n": None, "l": [1.0, 2.0],
            "be": np.arange(4, dtype=">i4")}
    parts, msg = roundtrip(data)
    types = {c["name"]: (c["type"], c["encoding"]) for c in header(parts)["channels"]}
    assert types == {"i": ("int64", "little"), "f": ("float64", "little"), "b": ("bool", "little"),
                     "s": ("string", "little"), "n": ("float64", "little"), "l": ("float64", "little"),
                     "be": ("int32", "big")}
    n_index = list(data).index("n")
    assert parts[2 + 2 * n_index] == b"" and parts[3 + 2 * n_index] == b""
    assert msg.data["s"] == "héllo" and msg.data["n"] is None and msg.data["b"] == np.True_
    np.testing.assert_array_equal(msg.data["l"], [1.0, 2.0])
    np.testing.assert_array_equal(msg.data["be"], [0, 1, 2, 3])
    be_index = list(data).index("be")
    assert parts[3 + 2 * be_index] == struct.pack(">qq", 10, 20)


def test_bitshuffle_lz4_values_and_data_header() -> None:
    image = np.random.default_rng(1).poisson(100, (64, 80)).astype(np.uint16)
    encoder = BsreadEncoder(data_compression="bitshuffle_lz4", data_header_compression="bitshuffle_lz4")
    parts, msg = roundtrip({"image": image, "x": 1.5, "s": "abc"}, encoder=encoder)
    assert json.loads(parts[0])["dh_compression"] == "bitshuffle_lz4"
    nbytes, block = struct.unpack(">QI", parts[2][:12])
    assert (nbytes, block) == (image.nbytes, 8192)  # 4096 uint16 elements per block, in bytes
    assert len(parts[2]) < image.nbytes
    np.testing.assert_array_equal(msg.data["image"], image)
    assert msg.data["x"] == 1.5 and msg.data["s"] == "abc"
    assert msg.channels[0].compression == "bitshuffle_lz4"


def test_per_channel_compression_override() -> None:
    encoder = BsreadEncoder(channel_compression={"image": "bitshuffle_lz4"})
    parts, msg = roundtrip({"image": np.ones((8, 8), np.uint8), "x": 1}, encoder=encoder)
    assert [c["compression"] for c in header(parts)["channels"]] == ["bitshuffle_lz4", "none"]
    assert msg.data["image"].sum() == 64


@pytest.mark.parametrize("order", ["<", ">"])
def test_decodes_lz4_with_either_size_prefix_order(order: str) -> None:
    image = np.arange(300, dtype=np.uint16)
    value = struct.pack(order + "I", image.nbytes) + lz4.block.compress(image.tobytes(), store_size=False)
    dh = json.dumps({"htype": "bsr_d-1.1", "channels": [
        {"name": "a", "type": "uint16", "shape": [300], "compression": "lz4"}]}).encode()
    main = json.dumps({"htype": "bsr_m-1.1", "pulse_id": 1, "hash": "x",
                       "global_timestamp": {"sec": 1, "ns": 2}}).encode()
    msg = BsreadDecoder().decode([main, dh, value, b""])
    np.testing.assert_array_equal(msg.data["a"], image)


def test_zero_copy_parts_and_non_contiguous_input() -> None:
    image = np.zeros((512, 512), np.uint16)
    parts = BsreadEncoder().encode({"image": image}, pulse_id=1, timestamp=0.0)
    assert parts[2] is image  # handed to libzmq as is, no copy
    view = np.zeros((512, 1024), np.uint16)[:, ::2]
    parts, msg = roundtrip({"image": view})
    assert parts[2].flags.c_contiguous
    assert msg.data["image"].shape == (512, 512)


def test_split_timestamp() -> None:
    assert split_timestamp((5, 7)) == (5, 7)
    assert split_timestamp(1.5) == (1, 500_000_000)
    sec, ns = split_timestamp(1508856598.865393891)
    assert sec == 1508856598 and abs(ns - 865393891) < 500
    assert split_timestamp(-0.25) == (-1, 750_000_000)


def test_refuses_unsupported_values_and_compressions() -> None:
    with pytest.raises(TypeError):
        BsreadEncoder().encode({"c": np.zeros(3, np.complex64)}, pulse_id=1, timestamp=0.0)
    with pytest.raises(TypeError):
        BsreadEncoder().encode({"h": np.float16(1)}, pulse_id=1, timestamp=0.0)
    with pytest.raises(ValueError):
        BsreadEncoder().encode({}, pulse_id=1, timestamp=0.0)
    with pytest.raises(ValueError):
        BsreadEncoder(data_compression="lz4")
    with pytest.raises(ValueError):
        HeaderPolicy("sometimes")


# ---------------------------------------------------------------- header policy
def test_on_change_rebuilds_only_when_layout_changes() -> None:
    encoder, decoder = BsreadEncoder(), BsreadDecoder()
    image = np.zeros((4, 6), np.uint16)
    hashes, changed = [], []
    frames = [
        {"a": 1.0, "image": image},
        {"a": 2.0, "image": image + 1},
        {"a": np.float32(3.0), "image": image},  # scalar width change within a kind: not a change
        {"a": None, "image": image},  # None keeps the declaration
        {"a": 4.0, "image": np.zeros((6, 4), np.uint16)},  # shape change
        {"a": 4.0, "image": np.zeros((6, 4), np.uint8)},  # dtype change
        {"a": 4.0, "image": np.zeros((6, 4), np.uint8), "b": "new"},  # channel added
        {"image": np.zeros((6, 4), np.uint8), "b": "new", "a": 5.0},  # same set, other order
    ]
    for i, frame in enumerate(frames):
        parts, msg = roundtrip(frame, encoder, decoder, pulse_id=i)
        hashes.append(json.loads(parts[0])["hash"])
        changed.append(msg.format_changed)
    assert changed == [True, False, False, False, True, True, True, False]
    assert encoder.header_changes == 4
    assert len(set(hashes)) == 4
    assert [c.name for c in encoder.channels] == ["a", "image", "b"]


def test_on_change_int_that_no_longer_fits_rebuilds() -> None:
    encoder = BsreadEncoder()
    roundtrip({"n": np.int8(1)}, encoder)
    _, msg = roundtrip({"n": 5}, encoder)  # fits int8: kept
    assert encoder.channels[0].type == "int8" and msg.data["n"] == 5
    _, msg = roundtrip({"n": 300}, encoder)
    assert encoder.channels[0].type == "int64" and msg.data["n"] == 300
    assert encoder.header_changes == 2


def test_on_change_disallowed_changes_send_none() -> None:
    encoder = BsreadEncoder(header_policy=HeaderPolicy("on_change", allow_type_changes=False,
                                                        allow_shape_changes=False))
    decoder = BsreadDecoder()
    roundtrip({"t": 1.0, "s": np.zeros(3)}, encoder, decoder)
    _, msg = roundtrip({"t": "text", "s": np.zeros(4)}, encoder, decoder)
    assert msg.data == {"t": None, "s": None}
    assert encoder.header_changes == 1
    _, msg = roundtrip({"t": 2.0, "s": np.ones(3)}, encoder, decoder)
    assert msg.data["t"] == 2.0 and msg.data["s"].sum() == 3


def test_once_freezes_the_layout() -> None:
    encoder = BsreadEncoder(header_policy=HeaderPolicy("once"))
    decoder = BsreadDecoder()
    roundtrip({"a": 1.0, "img": np.zeros((2, 2), np.uint16)}, encoder, decoder)
    _, msg = roundtrip({"a": 7, "img": np.zeros((3, 3), np.uint16), "extra": 1}, encoder, decoder)
    assert encoder.header_changes == 1
    assert list(msg.data) == ["a", "img"]
    assert msg.data["a"] == 7.0 and msg.data["a"].dtype == np.float64  # cast to the declared type
    assert msg.data["img"] is None  # does not fit the frozen shape


def test_always_rebuilds_every_message_with_a_stable_hash() -> None:
    encoder = BsreadEncoder(header_policy=HeaderPolicy("always"))
    hashes = {json.loads(encoder.encode({"a": 1.0}, pulse_id=i, timestamp=0.0)[0])["hash"]
              for i in range(3)}
    assert encoder.header_changes == 3 and len(hashes) == 1


# ---------------------------------------------------------------- decoder robustness
def _valid_parts() -> list[bytes]:
    parts = BsreadEncoder().encode({"a": 1.0, "b": np.arange(3)}, pulse_id=9, timestamp=(1, 2))
    return [bytes(memoryview(p)) for p in parts]


@pytest.mark.parametrize("mutate", [
    lambda p: p[1:],  # truncated: starts with the data header
    lambda p: p[:-1],  # missing the last timestamp
    lambda p: p[:1],
    lambda p: [b"not json"] + p[1:],
    lambda p: [b"\x00" * 100] + p[1:],
    lambda p: [json.dumps({"htype": "bsr_m-1.1", "hash": "h"}).encode()] + p[1:],  # no pulse_id
    lambda p: [p[0], b"{broken"] + p[2:],
    lambda p: [p[0], json.dumps({"htype": "bsr_d-1.1", "channels": []}).encode()],
])
def test_malformed_messages_raise_malformed(mutate) -> None:
    decoder = BsreadDecoder()
    with pytest.raises(MalformedMessageError):
        decoder.decode(mutate(_valid_parts()))
    assert decoder.decode(_valid_parts()).pulse_id == 9  # the cache was not poisoned


def test_bad_channel_value_becomes_none_and_is_counted() -> None:
    parts = _valid_parts()
    parts[4] = parts[4][:-3]  # b: 3 int64 -> 21 bytes
    decoder = BsreadDecoder()
    msg = decoder.decode(parts)
    assert msg.data["a"] == 1.0 and msg.data["b"] is None and decoder.channel_errors == 1


def test_legacy_epoch_timestamp_and_unknown_type() -> None:
    dh = json.dumps({"htype": "bsr_d-1.1", "channels": [
        {"name": "x"}, {"name": "c", "type": "complex64"}]}).encode()
    main = json.dumps({"htype": "bsr_m-1.1", "pulse_id": 3, "hash": "h",
                       "global_timestamp": {"epoch": 100, "ns": 5}}).encode()
    msg = BsreadDecoder().decode([main, dh, struct.pack("<d", 2.5), b"", b"\x00" * 8, b""])
    assert msg.timestamp == (100, 5) and msg.timestamp_float == pytest.approx(100.000000005)
    assert msg.data == {"x": 2.5, "c": None}
    assert msg.channels[0] == ChannelSpec("x", "float64", (1,), None, "little")


def test_decodes_the_recorded_camera_dump(camserver_fixtures) -> None:
    from tests.support.bsread_replay import CAMERA_DUMP, load_dump

    messages = load_dump(camserver_fixtures / "test_camera_dump")
    decoder = BsreadDecoder()
    decoded = [decoder.decode(parts) for parts in messages]
    assert [m.pulse_id for m in decoded] == list(CAMERA_DUMP.pulse_ids)
    assert [m.timestamp for m in decoded] == list(CAMERA_DUMP.timestamps)
    assert [m.format_changed for m in decoded] == [True, False]
    image = decoded[0].data[CAMERA_DUMP.channel]
    assert image.shape == CAMERA_DUMP.shape and image.dtype == np.uint16
    np.testing.assert_array_equal(image.ravel(), np.frombuffer(messages[0][2], "<u2"))
