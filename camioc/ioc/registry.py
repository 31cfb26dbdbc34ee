"""Adding and removing whole ``PVGroup``s while the caproto server runs.

caproto looks every name up in the live ``pvdb`` dict it was given (``Context.__getitem__``), so
adding PVs is ``pvdb.update``. Doing it *right* takes more (reference/caproto.md §2):

- **hooks**: caproto starts ``server_startup``/``server_scan`` hooks once, for the PVs in ``pvdb``
  when ``Context.run()`` starts. The registry starts the hooks of groups added later itself, keeps
  the tasks and cancels them (then runs ``server_shutdown`` hooks) when the group goes.
- **removal**: deleting names from ``pvdb`` while a client holds one of the channels kills that
  client's whole circuit (the next request on the channel raises inside caproto's command loop,
  and every other PV on the circuit then times out). The registry instead culls the channel's
  subscriptions and sends ``ServerDisconnResponse`` for it on every circuit: the client sees a
  disconnect of exactly those channels and re-searches them; other PVs are unaffected.
- **field cache**: caproto caches ``REC.FIELD`` lookups back into ``pvdb``; those keys go too.

- **late requests**: a client may have a request in flight for a channel the server just
  disconnected (a read, a subscription, a cancel). caproto's error path for an unknown channel id
  raises again inside the circuit's command loop and kills the whole circuit; the circuits of
  :class:`CamiocContext` drop such requests instead, and drop the response to a put that
  completes after its channel was disconnected (caproto would raise in the write task).
- **puts in progress**: the circuits of :class:`CamiocContext` keep their write tasks by channel
  name; a removal waits for the puts in progress on the group's channels before disconnecting
  them, so a put that removes its own PV (``EnableCallbacks`` 0 of a private pipeline instance)
  still completes normally for its client.
- **who may write**: the context's :class:`~camioc.config.access.AccessPolicy` (``--access-policy``)
  is applied by its circuits to every channel they serve, whatever group or field it belongs to: a
  client the policy lets only read gets the channel's access rights without ``WRITE`` when it
  connects (``cainfo`` shows "read, no write"; EPICS tools refuse a caput themselves), and a write
  it sends anyway is refused (``ECA_NOWTACCESS``) before any putter runs. The client is identified
  by the address of its TCP connection, not by the host name it claims (a client chooses that
  one freely; EPICS' ``asCheckClientIP``), and by the user name it reports.

- **a client reads its own writes**: caproto runs every put in a task of its own and answers the
  client's next request at once, so ``caput`` (which reads the PV right after its put for its
  "New :" line) got the old value; an EPICS IOC processes a put before the client's next request.
  A circuit's read of a channel waits (bounded) for that client's puts in progress on it. And the
  completion of a put (``caput -c``, pyepics ``caput(wait=True)``) is sent after the monitor
  update of the new value, when the client monitors the channel: pyepics answers ``caget`` from
  its monitor, which otherwise still held the old value right after the put completed.

All methods run on the event-loop thread.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import caproto as ca
from caproto.asyncio.server import Context, VirtualCircuit
from caproto.server import PVGroup

from camioc.config.access import AccessPolicy

log = logging.getLogger(__name__)

#: How long a group's removal waits for puts in progress on it.
PUT_WAIT_TIMEOUT = 10.0


#: How long a client's read of a channel waits for that client's puts in progress on it.
READ_AFTER_WRITE_WAIT = 2.0
#: How long a put's completion waits for the monitor updates of its channel to go out first.
EVENT_FLUSH_WAIT = 0.05  # best effort under load: a put completion is never held longer
#: The channel of the put a write task handles (set in the task, read when it sends its response).
_writing_channel: contextvars.ContextVar[str] = contextvars.ContextVar("camioc_writing_channel", default="")

#: Requests that name a channel by its server id.
_SID_REQUESTS = (ca.ReadNotifyRequest, ca.ReadRequest, ca.WriteRequest, ca.WriteNotifyRequest,
                 ca.EventAddRequest, ca.EventCancelRequest, ca.ClearChannelRequest)


#: Responses that may complete after their channel was disconnected.
_LATE_RESPONSES = (ca.WriteNotifyResponse, ca.ReadNotifyResponse, ca.ErrorResponse)


class CamiocCircuit(VirtualCircuit):
    """A server circuit that ignores requests for channels it has disconnected (see module doc)."""

    #: the channel of the write request being dispatched (commands of a circuit run one at a time)
    _write_channel: str | None = None

    @property
    def writes_in_progress(self) -> dict[asyncio.Task, str]:
        """Write tasks still running (putter, then the response), by channel name."""
        writes = self.__dict__.get("_writes")
        if writes is None:
            writes = self.__dict__["_writes"] = {}
        return writes

    @property
    def peer_host(self) -> str:
        """The address this circuit's client connects from (what the access policy matches)."""
        return str(self.circuit.address[0])

    def _access(self) -> AccessPolicy | None:
        return getattr(self.context, "access", None)  # a CamiocContext's; None: everyone writes

    def _may_write(self) -> bool:
        access = self._access()
        return access is None or access.may_write(self.peer_host, self.client_username)

    def _refuse_write(self, command: ca.WriteRequest | ca.WriteNotifyRequest) -> list[Any]:
        """The answer to a write the access policy refuses (as an EPICS IOC answers it)."""
        self.circuit.process_command(command)  # caproto's circuit state, as for any request
        chan = self.circuit.channels_sid[command.sid]
        access = self._access()
        reason = access.write_refusal(f"caput {chan.name}", self.peer_host, self.client_username) if access else None
        log.warning("%s", reason)
        if isinstance(command, ca.WriteNotifyRequest):
            return [chan.write(ioid=command.ioid, status=ca.CAStatus.ECA_NOWTACCESS)]
        return [ca.ErrorResponse(command, chan.cid, status=ca.CAStatus.ECA_NOWTACCESS, error_message=reason or "")]

    async def _command_queue_iteration(self, command):
        if isinstance(command, _SID_REQUESTS) and command.sid not in self.circuit.channels_sid:
            self.log.debug("ignoring %s for a removed channel (sid %d)", type(command).__name__, command.sid)
            return None
        if isinstance(command, (ca.ReadNotifyRequest, ca.ReadRequest)):
            await self._wait_for_own_writes(self.circuit.channels_sid[command.sid].name)
        if isinstance(command, (ca.WriteRequest, ca.WriteNotifyRequest)):
            if not self._may_write():
                return self._refuse_write(command)
            self._write_channel = self.circuit.channels_sid[command.sid].name
        try:
            response = await super()._command_queue_iteration(command)
        finally:
            self._write_channel = None
        if isinstance(command, ca.CreateChanRequest) and response and not self._may_write():
            response = [ca.AccessRightsResponse(cid=item.cid, access_rights=item.access_rights & ~ca.AccessRights.WRITE)
                        if isinstance(item, ca.AccessRightsResponse) else item for item in response]
        return response

    async def _start_write_task(self, handle_write):
        name = self._write_channel or ""

        async def write_task():
            _writing_channel.set(name)  # this task's own context: read by send() for its response
            await handle_write()

        task = self.tasks.create(write_task())
        writes = self.writes_in_progress
        writes[task] = name
        task.add_done_callback(lambda done: writes.pop(done, None))

    async def _wait_for_own_writes(self, name: str) -> None:
        """Before answering a read of ``name``: this client's puts on it complete (bounded)."""
        pending = [task for task, channel in self.writes_in_progress.items()
                   if channel == name and task is not asyncio.current_task()]
        if pending:
            await asyncio.wait(pending, timeout=READ_AFTER_WRITE_WAIT)

    async def _flush_events(self, name: str) -> None:
        """Before a put's completion: the monitor updates of ``name`` this client gets are sent."""
        if not name or not any(sub.channel.name == name for subs in self.subscriptions.values() for sub in subs):
            return
        loop = asyncio.get_running_loop()
        deadline = loop.time() + EVENT_FLUSH_WAIT
        while (not self.context.subscription_queue.empty() or not self.subscription_queue.empty()) \
                and loop.time() < deadline:
            await asyncio.sleep(0.001)
        await asyncio.sleep(0.002)  # the circuit's event loop batches for CAPROTO_SERVER_HIGH_LOAD_TIMEOUT_SEC

    async def send(self, *commands):
        if any(isinstance(command, ca.WriteNotifyResponse) for command in commands):
            await self._flush_events(_writing_channel.get())
        try:
            return await super().send(*commands)
        except ca.LocalProtocolError as exc:
            if len(commands) == 1 and isinstance(commands[0], _LATE_RESPONSES):
                self.log.debug("dropping %s for a removed channel: %s", type(commands[0]).__name__, exc)
                return None
            raise


class CamiocContext(Context):
    """caproto's asyncio server context with :class:`CamiocCircuit` circuits.

    ``access``: who may write (None: everyone, as with cam_server), applied by the circuits."""

    CircuitClass = CamiocCircuit
    #: the TCP port, set by ``run()`` once bound (None before); caproto's inferred type has ``str`` too
    port: int | None

    def __init__(self, pvdb: dict[str, Any], interfaces: list[str] | None = None, *,
                 access: AccessPolicy | None = None) -> None:
        super().__init__(pvdb, interfaces)
        self.access = access


def record_of(name: str) -> str:
    """The record part of a channel name (``"P:X.DESC"`` -> ``"P:X"``; modifiers stripped)."""
    try:
        return ca.parse_record_field(name).record
    except (ValueError, AttributeError):
        return name


@dataclass
class _Entry:
    group: PVGroup
    names: frozenset[str]
    tasks: list[asyncio.Task] = field(default_factory=list)


class PVRegistry:
    """The groups served by one caproto ``Context``, by key; add and remove them at runtime."""

    def __init__(self, pvdb: dict[str, Any]) -> None:
        self.pvdb = pvdb
        self._context: Any = None
        self._entries: dict[str, _Entry] = {}

    def attach(self, context: Any) -> None:
        """The running server context (``caproto.asyncio.server.Context``) the pvdb belongs to."""
        self._context = context

    def __contains__(self, key: str) -> bool:
        return key in self._entries

    def keys(self) -> list[str]:
        return list(self._entries)

    def group(self, key: str) -> PVGroup | None:
        entry = self._entries.get(key)
        return entry.group if entry is not None else None

    def names(self) -> list[str]:
        """Every record name of the registered groups."""
        return [name for entry in self._entries.values() for name in entry.names]

    # ---------------------------------------------------------------------------------- add
    def add(self, key: str, group: PVGroup) -> None:
        """Serve ``group``'s PVs from now on (searchable at once) and start its hooks."""
        if key in self._entries:
            raise KeyError(f"a group is already registered as {key!r}")
        names = frozenset(group.pvdb)
        clash = names & set(self.pvdb)
        if clash:
            raise KeyError(f"PV names already served: {', '.join(sorted(clash)[:5])}")
        entry = _Entry(group, names)
        self.pvdb.update(group.pvdb)
        self._entries[key] = entry
        if self._context is not None:
            entry.tasks = self._start_hooks(group.pvdb.values())

    def _start_hooks(self, instances: Iterable[Any]) -> list[asyncio.Task]:
        async_lib = self._context.async_layer
        tasks = []
        for instance in instances:
            targets = [instance, *getattr(instance, "fields", {}).values()]
            for target in targets:
                for hook in ("server_startup", "server_scan"):
                    method = getattr(target, hook, None)
                    if method is not None:
                        tasks.append(asyncio.get_running_loop().create_task(
                            method(async_lib), name=f"{getattr(target, 'pvname', '?')}.{hook}"))
        return tasks

    # ------------------------------------------------------------------------------- remove
    async def remove(self, key: str) -> PVGroup | None:
        """Stop serving a group: clients holding its channels see them disconnect."""
        entry = self._entries.pop(key, None)
        if entry is None:
            return None
        await self._stop_hooks(entry)
        await self._wait_for_writes(entry.names)
        channels = self._channels_of(entry.names)
        self._unserve(entry.names)
        await self._disconnect(channels)
        await self._run_shutdown_hooks(entry.group)
        return entry.group

    async def replace(self, key: str, group: PVGroup) -> PVGroup:
        """Serve ``group`` instead of the group registered as ``key`` (e.g. the same names with
        another type or length), with no moment in which the names are unknown: the swap is one
        step, then the clients of the old channels see them disconnect, re-search, and connect
        to the new PVs."""
        old = self._entries[key]
        names = frozenset(group.pvdb)
        clash = names & (set(self.pvdb) - {n for n in self.pvdb if n in old.names or record_of(n) in old.names})
        if clash:
            raise KeyError(f"PV names already served: {', '.join(sorted(clash)[:5])}")
        await self._stop_hooks(old)
        channels = self._channels_of(old.names)  # before the swap: later channels are the new PVs'
        self._unserve(old.names)
        self.pvdb.update(group.pvdb)
        entry = self._entries[key] = _Entry(group, names)
        if self._context is not None:
            entry.tasks = self._start_hooks(group.pvdb.values())
        await self._disconnect(channels)
        await self._run_shutdown_hooks(old.group)
        return old.group

    async def _wait_for_writes(self, names: frozenset[str], timeout: float = PUT_WAIT_TIMEOUT) -> None:
        """Wait (bounded) for the puts in progress on these records to complete."""
        if self._context is None:
            return
        tasks = [task for circuit in list(self._context.circuits)
                 for task, name in list(getattr(circuit, "writes_in_progress", {}).items())
                 if name in names or record_of(name) in names]
        tasks = [task for task in tasks if task is not asyncio.current_task()]
        if tasks:
            _, pending = await asyncio.wait(tasks, timeout=timeout)
            if pending:
                log.warning("removing PVs with %d put(s) still in progress", len(pending))

    @staticmethod
    async def _stop_hooks(entry: _Entry) -> None:
        for task in entry.tasks:
            task.cancel()
        if entry.tasks:
            await asyncio.gather(*entry.tasks, return_exceptions=True)
        entry.tasks = []

    def _unserve(self, names: frozenset[str]) -> None:
        for name in list(self.pvdb):
            if name in names or record_of(name) in names:
                del self.pvdb[name]

    def _channels_of(self, names: frozenset[str]) -> list[tuple[Any, Any]]:
        """(circuit, channel) of every open channel of these records (fields included)."""
        context = self._context
        if context is None:
            return []
        return [
            (circuit, chan)
            for circuit in list(context.circuits)
            for chan in list(circuit.circuit.channels.values())
            if chan.name in names or record_of(chan.name) in names
        ]

    @staticmethod
    async def _disconnect(channels: list[tuple[Any, Any]]) -> None:
        for circuit, chan in channels:
            try:
                culled = await circuit._cull_subscriptions(None, lambda sub, c=chan: sub.channel is c)
                await circuit.send(chan.disconnect())
            except Exception as exc:  # the client may be gone already; others must proceed
                log.debug("disconnecting %s from %s failed: %s", chan.name, circuit, exc)
                continue
            for _, sub in culled:
                circuit.unexpired_updates.pop(sub.subscriptionid, None)
                circuit.circuit.event_add_commands.pop(sub.subscriptionid, None)
            for spec in [spec for spec, subs in circuit.subscriptions.items() if not subs]:
                del circuit.subscriptions[spec]

    async def _run_shutdown_hooks(self, group: PVGroup) -> None:
        if self._context is None:
            return
        for instance in group.pvdb.values():
            method = getattr(instance, "server_shutdown", None)
            if method is not None:
                try:
                    await method(self._context.async_layer)
                except Exception:
                    log.exception("shutdown hook of %s failed", instance.pvname)

    async def remove_all(self) -> None:
        for key in list(self._entries):
            await self.remove(key)


__all__ = ["CamiocCircuit", "CamiocContext", "PVRegistry", "record_of"]
