"""Images over REST: the ``/image`` routes' query options and PNG response, cam_server's
``image_bytes`` JSON form. The rendering itself is :mod:`camioc.processing.png`.
"""

from __future__ import annotations

import base64
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from camioc.errors import ConfigError
from camioc.processing.png import COLORMAPS, DEFAULT_COLORMAP, MAX_PNG_PIXELS, colormap_names, get_colormap, render_png

__all__ = [
    "COLORMAPS",
    "DEFAULT_COLORMAP",
    "MAX_PNG_PIXELS",
    "PngOptions",
    "colormap_names",
    "decode_image_bytes",
    "encode_image_bytes",
    "get_colormap",
    "png_response",
    "render_png",
]


@dataclass(frozen=True, slots=True)
class PngOptions:
    """The query parameters of the ``/image`` routes, validated."""

    raw: bool = False
    scale: float | None = None
    min_value: float | None = None
    max_value: float | None = None
    colormap: str = DEFAULT_COLORMAP

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> PngOptions:
        """Parse ``raw``, ``scale``, ``min_value``, ``max_value``, ``colormap``.

        ``raw`` is true when present (``?raw`` or ``?raw=1``), as in cam_server, unless its value
        is an explicit false (``0``, ``false``, ``no``, ``off``).
        """
        raw = "raw" in query and query["raw"].strip().lower() not in ("0", "false", "no", "off")
        options = cls(
            raw=raw,
            scale=_query_float(query, "scale"),
            min_value=_query_float(query, "min_value"),
            max_value=_query_float(query, "max_value"),
            colormap=query.get("colormap") or DEFAULT_COLORMAP,
        )
        if options.scale is not None and options.scale <= 0:
            raise ConfigError(f"Invalid value for 'scale': must be positive, got {options.scale:g}.")
        if options.min_value is not None and options.max_value is not None and options.min_value > options.max_value:
            raise ConfigError(
                f"Invalid range: min_value ({options.min_value:g}) is larger than max_value ({options.max_value:g})."
            )
        get_colormap(options.colormap)  # refuse an unknown colormap before any image is read
        return options


def _query_float(query: Mapping[str, str], key: str) -> float | None:
    text = query.get(key)
    if text is None or text.strip() == "":
        return None
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"Invalid value for '{key}': '{text}' is not a number.") from None
    if not math.isfinite(value):
        raise ConfigError(f"Invalid value for '{key}': '{text}' is not a finite number.")
    return value


def encode_image_bytes(image: np.ndarray) -> dict[str, Any]:
    """cam_server's ``image`` object: base64 of the C-ordered bytes, ``[h, w]`` shape, dtype string.

    The dtype string is numpy's ``dtype.str`` (e.g. ``"<u2"``), which ``numpy.frombuffer``
    accepts, so ``CamClient.get_camera_array`` rebuilds the array exactly.
    """
    array = np.ascontiguousarray(image)
    return {
        # ``array.data`` is ``memoryview(array)``, spelled so that numpy's stubs know it is a buffer
        "bytes": base64.b64encode(array.data.cast("B")).decode("ascii"),
        "shape": list(array.shape),
        "dtype": array.dtype.str,
    }


def decode_image_bytes(image: Mapping[str, Any]) -> np.ndarray:
    """The inverse of :func:`encode_image_bytes` (as cam_server's clients decode it)."""
    data = base64.b64decode(str(image["bytes"]).encode("ascii"))
    return np.frombuffer(data, dtype=image["dtype"]).reshape(image["shape"])


async def png_response(array: np.ndarray, options: PngOptions) -> Any:
    """An ``image/png`` response of ``array`` rendered with ``options`` (encoded off the loop)."""
    import asyncio

    from aiohttp import web

    png = await asyncio.to_thread(
        render_png, array, scale=options.scale, min_value=options.min_value,
        max_value=options.max_value, colormap=options.colormap,
    )
    return web.Response(body=png, content_type="image/png")
