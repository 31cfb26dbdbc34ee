"""PNG rendering, colormaps and the image_bytes form (pure functions)."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from camioc.errors import ConfigError
from camioc.rest.images import (
    COLORMAPS,
    PngOptions,
    decode_image_bytes,
    encode_image_bytes,
    get_colormap,
    render_png,
)


def decode_png(data: bytes) -> np.ndarray:
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG"
    return np.asarray(image.convert("RGB"))


def test_colormaps_are_256_rgb_read_only() -> None:
    for name, lut in COLORMAPS.items():
        assert lut.shape == (256, 3) and lut.dtype == np.uint8, name
        assert not lut.flags.writeable


def test_rainbow_matches_matplotlib_endpoints() -> None:
    lut = get_colormap("rainbow")
    # matplotlib's rainbow runs from violet-blue (0.5, 0, 1) to red (1, 0, 0).
    assert tuple(lut[0]) == (128, 0, 255)
    assert tuple(lut[-1]) == (255, 0, 0)
    assert tuple(get_colormap("gray")[0]) == (0, 0, 0) and tuple(get_colormap("gray")[-1]) == (255, 255, 255)
    assert tuple(get_colormap("viridis")[0]) == (0x44, 0x01, 0x54)
    assert tuple(get_colormap("viridis")[-1]) == (0xFD, 0xE7, 0x25)


def test_colormap_reverse_and_case() -> None:
    np.testing.assert_array_equal(get_colormap("Gray_r"), get_colormap("gray")[::-1])
    with pytest.raises(ConfigError, match="Unknown colormap 'nope'"):
        get_colormap("nope")


def test_render_maps_range_onto_colormap() -> None:
    image = np.array([[0, 50, 100], [100, 100, 100]], dtype=np.uint16)
    rgb = decode_png(render_png(image, colormap="gray"))
    assert rgb.shape == (2, 3, 3)
    assert rgb[0, 0].tolist() == [0, 0, 0]
    assert rgb[0, 1, 0] in (127, 128)
    assert rgb[0, 2].tolist() == [255, 255, 255]


def test_render_min_max_clip() -> None:
    image = np.array([[0, 10, 20, 30]], dtype=np.int32)
    rgb = decode_png(render_png(image, min_value=10, max_value=20, colormap="gray"))
    assert rgb[0, :, 0].tolist() == [0, 0, 255, 255]


def test_render_negative_and_constant_and_nan() -> None:
    rgb = decode_png(render_png(np.array([[-10.0, 0.0, 10.0]]), colormap="gray"))
    assert rgb[0, :, 0].tolist() == [0, 128, 255]
    flat = decode_png(render_png(np.full((3, 3), 7, dtype=np.uint8), colormap="gray"))
    assert (flat == 255).all()  # range [0, 7]: like cam_server's "normalise by max"
    zeros = decode_png(render_png(np.zeros((3, 3), dtype=np.uint8), colormap="gray"))
    assert (zeros == 0).all()  # empty range: bottom of the colormap
    nan = decode_png(render_png(np.array([[np.nan, 0.0, 1.0, np.inf]]), colormap="gray"))
    assert nan[0, :, 0].tolist() == [0, 0, 255, 0]
    all_nan = decode_png(render_png(np.full((2, 2), np.nan), colormap="gray"))
    assert (all_nan == 0).all()


def test_render_scale_down_by_block_mean_and_up_by_repeat() -> None:
    image = np.arange(960 * 1280, dtype=np.uint16).reshape(960, 1280)
    small = decode_png(render_png(image, scale=0.3))
    assert small.shape[:2] == (288, 384)  # int(960*0.3) x int(1280*0.3)
    big = decode_png(render_png(np.eye(3), scale=2.0, colormap="gray"))
    assert big.shape[:2] == (6, 6) and big[1, 1, 0] == 255 and big[0, 2, 0] == 0
    with pytest.raises(ConfigError, match="would render"):
        render_png(image, scale=100)


def test_render_refuses_non_2d() -> None:
    with pytest.raises(ConfigError, match="non-empty 2-D image"):
        render_png(np.zeros((2, 2, 2)))
    with pytest.raises(ConfigError, match="non-empty 2-D image"):
        render_png(np.zeros((0, 4)))


def test_png_options_from_query() -> None:
    assert PngOptions.from_query({}) == PngOptions()
    options = PngOptions.from_query({"raw": "", "scale": "0.5", "min_value": "1", "max_value": "2", "colormap": "jet"})
    assert options == PngOptions(raw=True, scale=0.5, min_value=1.0, max_value=2.0, colormap="jet")
    assert PngOptions.from_query({"raw": "0"}).raw is False
    assert PngOptions.from_query({"raw": "true"}).raw is True
    assert PngOptions.from_query({"scale": ""}).scale is None


@pytest.mark.parametrize("dtype", ["<u2", "<i2", ">u2", "<f4", "|u1", "<u4", "<f8"])
def test_image_bytes_round_trip(dtype: str) -> None:
    image = (np.arange(35) % 11).astype(dtype).reshape(5, 7)
    encoded = encode_image_bytes(image)
    assert encoded["shape"] == [5, 7] and encoded["dtype"] == np.dtype(dtype).str
    decoded = decode_image_bytes(encoded)
    assert decoded.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(decoded, image)


def test_image_bytes_of_read_only_fortran_image() -> None:
    image = np.asfortranarray(np.arange(12, dtype=np.uint16).reshape(3, 4))
    image.setflags(write=False)
    np.testing.assert_array_equal(decode_image_bytes(encode_image_bytes(image)), image)
