"""A block's state and behaviour, transport-free: :class:`Device` and the generic setting walk.

A device holds the value of every PV of one block (:attr:`Device.values`), takes puts
(:meth:`Device.put`: validated, then a command handler or the generic setting put) and writes
values (:meth:`Device.post`) to every attached :class:`Sink` — the CA groups and the PVA server
(:mod:`camioc.pva`): one value, every protocol. Transports hold no behaviour of their own: a
:class:`Transport` is told which block (prefix + device) exists when, serves its rows, hands
client writes to :meth:`Device.put` and attaches a sink.

Settings (:class:`ConfiguredDevice`) are the config model's marked fields
(:mod:`camioc.model.settings`): a put of a plain setting writes ``{key: codec.to_config(value)}``
through the service; a put of a section member keeps the setpoint as a pending value until the
setpoints describe a section other than the one in force, then writes the whole section. The
``_RBV``s and setpoints then follow the config in force (:meth:`ConfiguredDevice.apply_config`),
also when it was changed elsewhere (REST).
"""

from __future__ import annotations

import math
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Protocol

import numpy as np

from camioc.config.pv import Text
from camioc.model.records import Alarm, PVDef, state_alarm
from camioc.model.settings import DeviceSettings, SettingDef

#: A command: gets the validated put value, returns the value the setpoint keeps (None: as put).
Command = Callable[[Any], Awaitable[Any]]


class Sink(Protocol):
    """A transport's view of one block: writes a value (and alarm, timestamp) to one PV."""

    async def post(self, attr: str, value: Any, *, alarm: Alarm, timestamp: float | None, force: bool) -> bool:
        """Write the PV if its value or alarm changed (or ``force``); return whether it wrote."""
        ...


class Transport(Protocol):
    """A protocol server over the devices (CA is built in; PV Access is one of these).

    The IOC calls every registered transport where it creates, replaces or removes a block, so
    each device gets one sink per protocol. ``key`` names the block (several blocks may share a
    ``prefix``: a pipeline's main block, its waveforms and its ``Out:`` readbacks)."""

    async def add_block(self, key: str, prefix: str, device: Device) -> None:
        """Serve ``device``'s rows under ``prefix``; a block already served as ``key`` is replaced."""
        ...

    async def remove_block(self, key: str) -> None:
        """Stop serving the block ``key`` (unknown keys are ignored)."""
        ...


def checked_value(spec: PVDef, value: Any) -> Any:
    """A client's put value as the PV keeps it: enum indexes as state strings, finite numbers.

    Raises ValueError naming the valid states (an out-of-range index would poison every later
    read) or the non-finite number."""
    if spec.is_enum:
        strings = list(spec.enums)
        if isinstance(value, str) and value in strings:
            return value
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            value = int(value)
        if isinstance(value, (int, np.integer)) and 0 <= int(value) < len(strings):
            return strings[int(value)]
        shown = int(value) if isinstance(value, (int, np.integer)) else value
        raise ValueError(f"{shown!r} is not a valid state; valid states: " + ", ".join(
            f"{index}={text}" for index, text in enumerate(strings)))
    if spec.record == "ao" and isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{spec.name}: {value} is not a finite number")
    if spec.has_limits and isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
        # CA's server refuses these before the put reaches the device; other transports rely on this
        assert spec.low is not None and spec.high is not None
        if not spec.low <= float(value) <= spec.high:
            raise ValueError(f"{spec.name}: {value} is outside the limits {spec.low:g} .. {spec.high:g}")
    return value


class Device:
    """The PVs of one block (``specs``), their values, commands and sinks."""

    def __init__(self, specs: tuple[PVDef, ...], initial: Mapping[str, Any] | None = None) -> None:
        self.specs: dict[str, PVDef] = {spec.attr: spec for spec in specs}
        self.values: dict[str, Any] = {spec.attr: spec.initial_value() for spec in specs}
        #: values that differ from the specs' initial values (a transport shows them from the start)
        self.initial: dict[str, Any] = dict(initial or {})
        self.values.update(self.initial)
        self.commands: dict[str, Command] = {}
        self._sinks: list[Sink] = []
        #: the reason of the last refused put, shown on ``StatusMessage_RBV`` (see :meth:`status_text`)
        self.refusal: str | None = None
        self._status_message = ""
        self._refused_during: str | None = None
        #: the alarm last posted per attr (a deadband never hides an alarm change)
        self._posted_alarms: dict[str, Alarm] = {}

    def attach(self, sink: Sink) -> None:
        self._sinks.append(sink)

    def detach(self, sink: Sink) -> None:
        """Stop posting to ``sink`` (a transport no longer serves this block)."""
        if sink in self._sinks:
            self._sinks.remove(sink)

    async def post(self, attr: str, value: Any, *, alarm: Alarm | None = None, timestamp: float | None = None,
                   force: bool = False) -> bool:
        """Write a readback (or a setpoint the device moves) to every sink; whether any wrote.

        Enum PVs with per-state severities take their state's alarm unless ``alarm`` is given."""
        spec = self.specs[attr]
        if alarm is None:
            alarm = state_alarm(spec, value)
        if not force and spec.mdel and self._within_deadband(attr, value, alarm):
            return False
        self._posted_alarms[attr] = alarm
        self.values[attr] = value
        wrote = False
        for sink in self._sinks:
            wrote = await sink.post(attr, value, alarm=alarm, timestamp=timestamp or None, force=force) or wrote
        return wrote

    def _within_deadband(self, attr: str, value: Any, alarm: Alarm) -> bool:
        """MDEL: a number within ``mdel`` of the last posted one, with the same alarm, is not posted
        (neither to monitors nor to reads: caproto has one value per channel)."""
        last = self.values[attr]
        if self._posted_alarms.get(attr) != alarm or isinstance(value, (str, bytes)) or isinstance(last, str):
            return False
        try:
            return abs(float(value) - float(last)) <= self.specs[attr].mdel
        except (TypeError, ValueError):
            return False

    async def put(self, attr: str, value: Any) -> Any:
        """A client's put: validated, refused by raising; returns the value the PV keeps."""
        spec = self.specs[attr]
        try:
            value = checked_value(spec, value)
            self.check_put(attr)
            result = await self.handle(attr, value)
        except Exception as exc:
            await self._refused(spec, exc)
            raise
        result = value if result is None else result
        self.values[attr] = result
        if self.refusal is not None:
            self.refusal = None
            await self._show_status()
        return result

    def status_text(self, message: str) -> str:
        """What ``StatusMessage_RBV`` shows for the status ``message``: the reason of the last
        refused put (a CA client sees only "write failed") until the status says something new or
        a later put succeeds."""
        if self.refusal is not None and message != self._refused_during:
            self.refusal = None
        self._status_message = message
        return self.refusal or message

    async def _refused(self, spec: PVDef, error: Exception) -> None:
        if "status_message" not in self.specs:
            return
        self.refusal = f"{spec.name} refused: {error}"
        self._refused_during = self._status_message
        await self._show_status()

    async def _show_status(self) -> None:
        limit = self.specs["status_message"].nelm - 1
        await self.post("status_message", text(self.refusal or self._status_message, limit))

    def check_put(self, attr: str) -> None:
        """Refuse a put before anything happens (subclasses: e.g. a read-only instance)."""

    async def handle(self, attr: str, value: Any) -> Any:
        command = self.commands.get(attr)
        if command is None:
            raise PermissionError(f"{self.specs[attr].name} is not writable")
        return await command(value)


class ConfiguredDevice(Device):
    """A device whose settings are config fields (``settings``) applied by ``update_config``."""

    def __init__(self, specs: tuple[PVDef, ...], settings: DeviceSettings,
                 update_config: Callable[[dict[str, Any]], Awaitable[Mapping[str, Any]]],
                 initial: Mapping[str, Any] | None = None) -> None:
        super().__init__(specs, initial)
        self.settings = settings
        self._update_config = update_config
        self.config_in_force: Mapping[str, Any] = {}
        self.in_force: dict[str, Any] = settings.in_force({})

    async def handle(self, attr: str, value: Any) -> Any:
        setting = self.settings.by_attr.get(attr)
        if setting is None or attr in self.commands:
            return await super().handle(attr, value)
        return await self.put_setting(setting, value)

    async def put_setting(self, setting: SettingDef, value: Any) -> Any:
        section = setting.section
        if section is None:
            await self.update({setting.key: setting.pv.codec.to_config(value)})
            return Text.stored(value) if isinstance(setting.pv.codec, Text) else value
        # The setpoints hold the section being entered; the config changes when the section
        # they describe (or its absence) differs from the one in force.
        previous = self.values[setting.attr]
        self.values[setting.attr] = value
        try:
            wanted = section.describes(self.values)
            if wanted != section.describes(self.in_force):
                await self.update({section.key: wanted})
        except BaseException:
            self.values[setting.attr] = previous
            raise
        return value

    async def update(self, changes: dict[str, Any]) -> None:
        await self.apply_config(await self._update_config(changes))

    async def apply_config(self, config: Mapping[str, Any]) -> None:
        """Show the config in force on the ``_RBV``s and the setpoints (module doc)."""
        self.config_in_force = config
        self.in_force = in_force = self.settings.in_force(config)
        for attr, value in in_force.items():
            await self.post(f"{attr}_rbv", value)
        for setting in self.settings.plain:
            await self.post(setting.attr, in_force[setting.attr])
        for section in self.settings.sections:
            if section.describes(in_force) is not None:
                for member in section.members:
                    await self.post(member.attr, in_force[member.attr])
            elif section.describes(self.values) is not None:  # removed elsewhere
                for attr, value in section.cleared().items():
                    await self.post(attr, value)


def text(value: Any, limit: int) -> str:
    """A status text for a CHAR waveform of ``limit + 1`` elements (cut with ``...``)."""
    shown = str(value or "")
    return shown if len(shown) <= limit else shown[: limit - 3] + "..."


__all__ = ["Command", "ConfiguredDevice", "Device", "Sink", "Transport", "checked_value", "text"]
