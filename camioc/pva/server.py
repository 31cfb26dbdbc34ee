""":class:`PvaServer`: camioc's PV Access server, a second transport over the device model.

The IOC (:class:`~camioc.ioc.server.CamiocIoc`) tells every registered
:class:`~camioc.model.device.Transport` of each block it creates, replaces or removes. For a
block, this server makes one p4p ``SharedPV`` per row under the same name as over CA (a
:mod:`camioc.pva.values` Normative Type), attaches a sink to the device (every ``Device.post``
reaches CA and PVA: one value, both protocols) and, for an image block
(:class:`~camioc.model.camera.ImageDevice`), an NTNDArray ``<image prefix>Pva1:Image``.

A client's put goes to ``Device.put`` (the validation, refusals and service calls CA's puts get);
the value the device keeps is then posted to every sink, so a CA client sees a PVA put and the
other way round. A refused put completes with the error text and changes nothing. An optional
``write_refusal(what, host, user)`` (the access policy) refuses writes before anything else. An
accepted put goes to the put log (:mod:`camioc.putlog`) with the client's address and account.

A replaced block (an image block re-created for another dtype or size) keeps the PVs whose type
did not change, so PVA clients stay connected; PVs of a removed block close (clients see a
disconnect). Handlers run on the asyncio loop (``p4p.server.asyncio``); the pvxs server has
threads of its own.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from p4p.server import Server, StaticProvider
from p4p.server.asyncio import Handler, SharedPV

from camioc import putlog
from camioc.model.camera import ImageDevice
from camioc.model.device import Device
from camioc.model.records import NO_ALARM, Alarm, PVDef
from camioc.pva.images import IMAGE_PV, ImagePublisher
from camioc.pva.values import RowType, served

log = logging.getLogger(__name__)

#: ``(what, host, user) -> refusal text or None``: who may write (the access policy's question).
WriteRefusal = Callable[[str, str | None, str | None], str | None]


class _Channel:
    """One served PV: the row it shows, the device its puts go to."""

    def __init__(self, name: str, row: RowType, device: Device, pv: SharedPV) -> None:
        self.name = name
        self.row = row
        self.device = device
        self.pv = pv
        self.last: tuple[Any, Alarm] | None = None


class _Handler(Handler):
    """The put handler of one channel (on the loop)."""

    def __init__(self, server: PvaServer, name: str) -> None:
        self._server = server
        self._name = name

    async def put(self, pv: SharedPV, op: Any) -> None:
        await self._server.client_put(self._name, op)


class _BlockSink:
    """A device's sink on PVA: posts go to the channels of one block."""

    def __init__(self, server: PvaServer, channels: dict[str, _Channel]) -> None:
        self._server = server
        self.channels = channels

    async def post(self, attr: str, value: Any, *, alarm: Alarm, timestamp: float | None, force: bool) -> bool:
        channel = self.channels.get(attr)
        if channel is None:
            return False
        return self._server.write(channel, value, alarm, timestamp, force)


class _Block:
    def __init__(self, prefix: str, device: Device, sink: _BlockSink, names: list[str],
                 image: ImagePublisher | None) -> None:
        self.prefix = prefix
        self.device = device
        self.sink = sink
        self.names = names
        self.image = image


class PvaServer:
    """The PVA server (see the module doc); ``start()`` then blocks come and go, ``stop()``."""

    def __init__(self, *, write_refusal: WriteRefusal | None = None) -> None:
        self._provider = StaticProvider("camioc")
        self._server: Server | None = None
        self._channels: dict[str, _Channel] = {}
        self._blocks: dict[str, _Block] = {}
        self._write_refusal = write_refusal
        #: wraps and posts image frames off the loop (one thread: frames of all blocks, in turn)
        self._image_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="camioc-pva-image")

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        """Start serving (binds per ``EPICS_PVAS_*``, see :func:`camioc.pva.configure_pva_environment`)."""
        if self._server is None:
            self._server = Server(providers=[self._provider])
            conf = self._server.conf()
            log.info("PVA server listening on %s port %s", conf.get("EPICS_PVAS_INTF_ADDR_LIST", "?"),
                     conf.get("EPICS_PVAS_SERVER_PORT", "?"))

    async def stop(self) -> None:
        for key in list(self._blocks):
            await self.remove_block(key)
        if self._server is not None:
            self._server.stop()
            self._server = None
        self._image_executor.shutdown(wait=True, cancel_futures=True)

    def conf(self) -> dict[str, str]:
        """The effective server configuration (ports), empty before start."""
        return dict(self._server.conf()) if self._server is not None else {}

    def names(self) -> list[str]:
        """Every PV name served, sorted."""
        return sorted(self._channels) + sorted(
            block.prefix + IMAGE_PV for block in self._blocks.values() if block.image is not None)

    # ------------------------------------------------------------------ Transport
    async def add_block(self, key: str, prefix: str, device: Device) -> None:
        old = self._blocks.pop(key, None)
        reusable: dict[str, _Channel] = {}
        if old is not None:
            self._detach(old)
            reusable = {name: self._channels[name] for name in old.names}
        channels: dict[str, _Channel] = {}
        names: list[str] = []
        for spec in device.specs.values():
            if not served(spec):
                continue
            name = prefix + spec.name
            row = RowType.of(spec)
            channel = reusable.pop(name, None)
            if channel is not None and channel.row.signature == row.signature:
                channel.device, channel.row, channel.last = device, row, None
                self.write(channel, device.values[spec.attr], NO_ALARM, None, True)
            else:
                if channel is not None:
                    self._close(channel)
                if name in self._channels:
                    log.error("PVA: %s is served already; block %s does not get it", name, key)
                    continue
                channel = self._open(name, row, device, spec)
            channels[spec.attr] = channel
            names.append(name)
        for channel in reusable.values():
            self._close(channel)
        image = old.image if old is not None else None
        if isinstance(device, ImageDevice):
            if image is None:
                image = ImagePublisher(self._image_executor)
                self._provider.add(prefix + IMAGE_PV, image.pv)
            device.attach_frames(image)
            if device.frame is not None:
                image.post_frame(device.frame)
        elif image is not None:
            self._provider.remove(prefix + IMAGE_PV)
            image.close()
            image = None
        sink = _BlockSink(self, channels)
        device.attach(sink)
        self._blocks[key] = _Block(prefix, device, sink, names, image)

    async def remove_block(self, key: str) -> None:
        block = self._blocks.pop(key, None)
        if block is None:
            return
        self._detach(block)
        for name in block.names:
            channel = self._channels.get(name)
            if channel is not None:
                self._close(channel)
        if block.image is not None:
            self._provider.remove(block.prefix + IMAGE_PV)
            block.image.close()

    # ------------------------------------------------------------------ channels
    def _open(self, name: str, row: RowType, device: Device, spec: PVDef) -> _Channel:
        pv = SharedPV(handler=_Handler(self, name), nt=row.nt)
        pv.open(row.initial(device.values[spec.attr]))
        channel = _Channel(name, row, device, pv)
        self._channels[name] = channel
        self._provider.add(name, pv)
        return channel

    def _close(self, channel: _Channel) -> None:
        if self._channels.get(channel.name) is channel:
            del self._channels[channel.name]
            self._provider.remove(channel.name)
        channel.pv.close()

    @staticmethod
    def _detach(block: _Block) -> None:
        block.device.detach(block.sink)
        if block.image is not None and isinstance(block.device, ImageDevice):
            block.device.detach_frames(block.image)

    def write(self, channel: _Channel, value: Any, alarm: Alarm, timestamp: float | None, force: bool) -> bool:
        """Post a value if it or its alarm changed (or ``force``); whether it posted."""
        if not force and channel.last is not None and channel.last[1] == alarm and _same(channel.last[0], value):
            return False
        channel.last = (value, alarm)
        channel.pv.post(channel.row.update(value, alarm, timestamp))
        return True

    async def client_put(self, name: str, op: Any) -> None:
        """A PVA client's put: refused or handed to ``Device.put``; completes ``op`` either way."""
        channel = self._channels.get(name)
        if channel is None:
            op.done(error=f"{name} is not served any more")
            return
        spec = channel.row.spec
        if not spec.writable:
            op.done(error=f"{name} is read-only")
            return
        host = str(op.peer() or "").rsplit(":", 1)[0].strip("[]") or None
        if self._write_refusal is not None:
            refusal = self._write_refusal(f"put {name}", host, op.account() or None)
            if refusal is not None:
                log.warning("Refused PVA put by %s (%s): %s", op.account(), op.peer(), refusal)
                op.done(error=refusal)
                return
        device = channel.device
        old = device.values.get(spec.attr)
        try:
            value = channel.row.from_client(op.value())
            kept = await device.put(spec.attr, value)
        except Exception as exc:
            log.warning("Refused PVA put by %s (%s): %s %s", op.account(), op.peer(), type(exc).__name__, exc)
            op.done(error=str(exc) or type(exc).__name__)
            return
        putlog.record("pva", host, op.account() or None, name, old=old, new=kept)
        try:
            await device.post(spec.attr, kept)  # every protocol shows the value the device keeps
        except Exception:
            log.exception("PVA put of %s: posting the kept value failed", name)
        op.done()


def _same(current: Any, new: Any) -> bool:
    if hasattr(current, "shape") or hasattr(new, "shape"):
        return False
    return bool(current == new)


__all__ = ["PvaServer", "WriteRefusal"]
