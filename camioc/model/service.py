"""The service block ``$(P)``: iocStats-like health, camera/pipeline/instance lists, StopAll."""

from __future__ import annotations

import json
import time
from collections.abc import Awaitable, Callable

from camioc.model.blocks import JSON_LIST_NELM, SERVICE_PVS
from camioc.model.device import Device
from camioc.model.health import ControlMeter


def format_uptime(seconds: float) -> str:
    """iocStats' UPTIME text: ``"<d> days, hh:mm:ss"``."""
    seconds = max(0, int(seconds))
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{days} days, {hours:02d}:{minutes:02d}:{secs:02d}"


def json_list(items: list[str]) -> str:
    """A compact JSON list for a CHAR waveform, shortened (and still valid JSON) if too long."""
    items = sorted(items)
    text = json.dumps(items, separators=(",", ":"))
    while len(text) >= JSON_LIST_NELM and items:
        items = items[:-1]
        text = json.dumps([*items, "..."], separators=(",", ":"))
    return text


def json_pv_names(cameras: dict[str, str], pipelines: dict[str, str]) -> str:
    """``PvNames_RBV``: ``{"cameras": {name: pv name}, "pipelines": {id: pv name}}`` of every camera and
    pipeline with PVs, so a client that knows a REST id (a private instance's UUID) finds its PVs.
    Shortened (still valid JSON) like :func:`json_list` if too long."""
    cams, pipes = dict(sorted(cameras.items())), dict(sorted(pipelines.items()))
    text = json.dumps({"cameras": cams, "pipelines": pipes}, separators=(",", ":"))
    while len(text) >= JSON_LIST_NELM and (cams or pipes):
        (pipes if len(pipes) >= len(cams) else cams).popitem()
        text = json.dumps({"cameras": cams, "pipelines": pipes, "truncated": True}, separators=(",", ":"))
    return text


class ServiceDevice(Device):
    """Service PVs; ``stop_all`` is the coroutine that StopAll runs."""

    def __init__(self, *, version: str, start_count: int, stop_all: Callable[[], Awaitable[None]]) -> None:
        super().__init__(SERVICE_PVS, {"version": version[:39], "start_count": int(start_count)})
        self._stop_all = stop_all
        self.started = time.monotonic()
        self.commands = {"stop_all": self._stop}
        self._meter = ControlMeter()

    async def _stop(self, value: str) -> str:
        if value == "Stop":
            await self.post("stop_all", "Stop")
            await self._stop_all()
        return "Done"

    async def update_health(self, heartbeat: int) -> None:
        await self.post("heartbeat", heartbeat % 2**31)
        await self.post("uptime", format_uptime(time.monotonic() - self.started))
        for attr, value in self._meter.measure().items():  # iocStats' figures (model.health)
            await self.post(attr, value)

    async def update_lists(self, cameras: list[str], pipelines: list[str], instances: list[str],
                           pv_names: tuple[dict[str, str], dict[str, str]] = ({}, {})) -> None:
        """The lists; ``pv_names`` are the PV names of the cameras and pipelines with PVs."""
        await self.post("cameras", json_list(cameras))
        await self.post("pv_names", json_pv_names(*pv_names))
        await self.post("pipelines", json_list(pipelines))
        await self.post("instances", json_list(instances))
        await self.post("num_instances", len(instances))


__all__ = ["ServiceDevice", "format_uptime", "json_list", "json_pv_names"]
