"""Background images: collect, store, list, read — and never lose one.

cam_server's semantics (compat §5): a background is the average of ``n_images`` camera frames
(summed as uint64, divided, cast to uint16), saved as ``<camera>_%Y%m%d_%H%M%S_%f.npy`` in
``background_config/``; the id is the file name without ``.npy``; "latest" is the last id in
lexicographic (= chronological) order.

camioc's additions (camioc decisions 5 and 6): ids are validated names; the latest background of
camera ``X`` matches ``X_<timestamp>`` exactly, so camera ``cam`` does not pick up ``cam_2``'s
backgrounds; files are written atomically (temp file + fsync + link) and an existing id is never
overwritten; collection has a deadline and fails with a clear message if the camera sends nothing.
"""

from __future__ import annotations

import logging
import os
import re
import tempfile
import time
from datetime import datetime
from pathlib import Path

import numpy as np

from camioc.config.names import validate_name
from camioc.core.api import DEFAULT_BACKGROUND_IMAGES
from camioc.errors import ConfigError, InstanceError, NotFoundError

log = logging.getLogger(__name__)

DEFAULT_N_IMAGES = DEFAULT_BACKGROUND_IMAGES
_TIMESTAMP = re.compile(r"_\d{8}_\d{6}_\d{6}$")


class BackgroundStore:
    """The ``background_config`` folder: one ``.npy`` file per background id."""

    def __init__(self, folder: Path) -> None:
        self.folder = Path(folder)

    def path(self, background_id: str) -> Path:
        validate_name(background_id, "background id")
        return self.folder / f"{background_id}.npy"

    def exists(self, background_id: str) -> bool:
        return self.path(background_id).is_file()

    def ids(self, camera_name: str) -> list[str]:
        """Every background id of ``camera_name`` (``<camera>_<timestamp>``), oldest first."""
        validate_name(camera_name, "camera name")
        prefix = f"{camera_name}_"
        found = []
        if self.folder.is_dir():
            for entry in self.folder.glob(f"{glob_escape(prefix)}*.npy"):
                background_id = entry.name[: -len(".npy")]
                rest = background_id[len(camera_name):]
                if _TIMESTAMP.fullmatch(rest):
                    found.append(background_id)
        return sorted(found)

    def latest(self, camera_name: str) -> str:
        ids = self.ids(camera_name)
        if not ids:
            raise NotFoundError(f"No background matches for the specified prefix '{camera_name}'.")
        return ids[-1]

    def load(self, background_id: str) -> np.ndarray:
        path = self.path(background_id)
        if not path.is_file():
            raise NotFoundError(f"Requested background '{background_id}' does not exist.")
        try:
            return np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"Invalid background image file: {background_id} ({exc})") from exc

    def save(self, background_id: str, image: np.ndarray, *, overwrite: bool = False) -> str:
        """Store ``image`` as ``background_id``; refuses to replace an existing id unless asked."""
        array = np.asarray(image)
        if array.ndim != 2 or array.size == 0:
            raise ConfigError(f"A background image must be a non-empty 2-D array, got shape {array.shape}.")
        if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
            raise ConfigError(f"A background image must be numeric, got dtype {array.dtype}.")
        path = self.path(background_id)
        self.folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=self.folder)
        try:
            with os.fdopen(fd, "wb") as handle:
                np.save(handle, array, allow_pickle=False)
                handle.flush()
                os.fsync(handle.fileno())
            if overwrite:
                os.replace(tmp, path)
            else:
                try:
                    os.link(tmp, path)  # atomic create-if-absent: never clobbers an existing id
                except FileExistsError:
                    raise ConfigError(f"Background '{background_id}' already exists.") from None
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
        return background_id

    def new_id(self, camera_name: str) -> str:
        validate_name(camera_name, "camera name")
        return f"{camera_name}_{datetime.now().strftime('%Y%m%d_%H%M%S_%f')}"


def glob_escape(text: str) -> str:
    """Escape glob metacharacters (camera names may contain ``[``)."""
    return re.sub(r"([*?\[])", r"[\1]", text)


class FrameAverager:
    """cam_server's background average, accumulated frame by frame.

    A running uint64 sum (one frame of memory, whatever ``n_images`` is), divided by the number of
    frames and cast to uint16 at the end.
    """

    def __init__(self) -> None:
        self._total: np.ndarray | None = None
        self.count = 0

    def add(self, frame: np.ndarray) -> None:
        if self._total is None:
            self._total = np.zeros(frame.shape, dtype=np.uint64)
        elif frame.shape != self._total.shape:
            raise InstanceError(f"Camera image size changed while collecting the background "
                                f"({frame.shape} != {self._total.shape}).")
        self._total += frame.astype(np.uint64, copy=False)
        self.count += 1

    def result(self) -> np.ndarray:
        if self._total is None:
            raise ValueError("no frames to average")
        return (self._total // self.count).astype(np.uint16)


def collect_background_image(stream_address: str, n_images: int, timeout: float) -> np.ndarray:
    """Average ``n_images`` images of a camera stream (blocking: run it in a thread)."""
    from camioc.streams.bsread import BsreadReceiver

    averager = FrameAverager()
    deadline = time.monotonic() + timeout
    receiver = BsreadReceiver(stream_address, mode="SUB", receive_timeout=0.5)
    receiver.connect()
    try:
        while averager.count < n_images:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise InstanceError(
                    f"Background collection got {averager.count} of {n_images} images within {timeout:g} s "
                    f"from {stream_address}."
                )
            message = receiver.receive(timeout=min(0.5, remaining))
            if message is not None and message.data.get("image") is not None:
                averager.add(message.data["image"])
    finally:
        receiver.close()
    return averager.result()


__all__ = ["DEFAULT_N_IMAGES", "BackgroundStore", "FrameAverager", "collect_background_image"]
