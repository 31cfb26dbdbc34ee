"""The CA binding: one caproto ``PVGroup`` per :class:`~camioc.model.device.Device`, made from its PV rows.

:func:`make_group_class` turns a table of :class:`~camioc.model.records.PVDef` rows into a
:class:`DeviceGroup` subclass with one pvproperty per row. The group holds no behaviour: its one
putter hands every client put to :meth:`Device.put <camioc.model.device.Device.put>` (raising
refuses the put), and it is the device's :class:`~camioc.model.device.Sink` (:meth:`DeviceGroup.post`
writes only changed values and never runs putters). Every generated PV gets:

- ``record=`` (so ``.RTYP``, ``.DESC``, ``.EGU``, ``.PREC``, ``.NAME`` ... answer), ``doc`` = DESC,
  units, precision, control and display limits, enum strings. The records are *slim*
  (:func:`slim_record`): the fields EPICS tools use (:data:`RECORD_FIELDS`), not all 44-104 fields of
  caproto's full records (each a ChannelData object: a pipeline block of ~150 full records took
  ~0.5 s and ~20 MB to build; slim, a third of that). Other fields are not served;
- its own ``alarm_group`` (caproto shares one alarm per group otherwise: an alarm on one PV would
  show on all of them, reference/caproto.md §3.2);
- ``.EGU`` and ``.FTVL`` field values (caproto does not link them to ``units``/the dtype), written
  by :meth:`DeviceGroup.initialise` before the group is served;
- read-only record fields: caproto lets any client write ``.DESC``, ``.HOPR`` (which moves the
  enforced limit) ... even of read-only PVs; camioc's fields are read-only over CA;
- the put log (:mod:`camioc.putlog`): the putter records every put the device accepted, with the
  client's address and CA user (caproto hands them to the channel's ``auth_write``, not to the
  putter: a wrapper of each writable channel's ``auth_write`` passes them on in a context variable,
  which the putter, running in the same write task, reads).
"""

from __future__ import annotations

import asyncio
import contextvars
import functools
import logging
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any, ClassVar

import numpy as np
from caproto import AccessRights, AlarmSeverity, AlarmStatus, ChannelType
from caproto.server import PVGroup, pvproperty
from caproto.server.records import records as _caproto_records

from camioc import putlog
from camioc.model.device import Device
from camioc.model.records import Alarm, PVDef

log = logging.getLogger(__name__)

#: caproto dtype of each waveform element type.
_WAVEFORM_DTYPES: dict[str, Any] = {
    "CHAR": bytes,
    "UCHAR": bytes,
    "SHORT": ChannelType.INT,
    "LONG": ChannelType.LONG,
    "FLOAT": ChannelType.FLOAT,
    "DOUBLE": ChannelType.DOUBLE,
}
_WAVEFORM_NUMPY: dict[str, Any] = {
    "CHAR": np.int8,
    "UCHAR": np.uint8,
    "SHORT": np.int16,
    "LONG": np.int32,
    "FLOAT": np.float32,
    "DOUBLE": np.float64,
}
#: Images are big: keep at most this many updates queued per subscription (a slow client then
#: skips images instead of making the server hold many of them).
IMAGE_SUBSCRIPTION_BACKLOG = 2

#: Long text waveforms (JSON lists) keep a short backlog too: only the latest text matters.
TEXT_BACKLOG_THRESHOLD = 1024
TEXT_SUBSCRIPTION_BACKLOG = 10

_MBB_FIELDS = ("ZR", "ON", "TW", "TH", "FR", "FV", "SX", "SV", "EI", "NI", "TE", "EL", "TV", "TT", "FT", "FF")
#: dbCommon's DISA/DISV too (0 and 1: never disabled): ophyd >= 1.11.2's CamBase reads DataType_RBV.DISA.
_COMMON_FIELDS = frozenset({"NAME", "RTYP", "DESC", "SCAN", "PROC", "SEVR", "STAT", "ACKS", "ACKT", "UDF", "TSE",
                            "DISA", "DISV"})
#: No alarm-limit fields (HIHI ... LLSV): camioc sets no alarm limits, and fields are read-only.
_NUMERIC_FIELDS = frozenset({"EGU", "PREC", "HOPR", "LOPR", "DRVH", "DRVL", "ADEL", "MDEL"})
_BINARY_FIELDS = frozenset({"ZNAM", "ONAM", "ZSV", "OSV", "RVAL"})
_MULTI_BIT_FIELDS = frozenset({"RVAL", *(f"{p}ST" for p in _MBB_FIELDS), *(f"{p}SV" for p in _MBB_FIELDS)})
#: The fields camioc's records serve, per record type (plus :data:`_COMMON_FIELDS`).
RECORD_FIELDS: dict[str, frozenset[str]] = {
    "ai": _NUMERIC_FIELDS, "ao": _NUMERIC_FIELDS, "longin": _NUMERIC_FIELDS, "longout": _NUMERIC_FIELDS,
    "int64in": _NUMERIC_FIELDS, "bi": _BINARY_FIELDS, "bo": _BINARY_FIELDS, "mbbi": _MULTI_BIT_FIELDS,
    "mbbo": _MULTI_BIT_FIELDS, "stringin": frozenset(), "stringout": frozenset(),
    "waveform": frozenset({"EGU", "PREC", "HOPR", "LOPR", "NELM", "FTVL", "NORD"}),
}


@functools.cache
def slim_record(record: str) -> type:
    """caproto's field class of ``record`` with only the fields in :data:`RECORD_FIELDS`.

    The other fields' attributes are None on the class, so caproto's own lookups of optional
    fields (``getattr(fields, "high_alarm_severity", None)``) find nothing instead of failing.
    """
    full = _caproto_records[record]
    keep = _COMMON_FIELDS | RECORD_FIELDS[record]
    dropped = {attr: None for attr, prop in full._pvs_.items() if prop.pvspec.name not in keep}
    slim = type(f"Slim{full.__name__}", (full,), {"_record_type": full._record_type, **dropped})
    slim._pvs_ = OrderedDict((attr, prop) for attr, prop in full._pvs_.items() if attr not in dropped)
    return slim


def _read_only_access(hostname: str, username: str) -> AccessRights:
    return AccessRights.READ


#: ``(address, user)`` of the CA client whose put is being handled (see :func:`_tracking_client`).
_put_client: contextvars.ContextVar[tuple[str | None, str | None]] = contextvars.ContextVar(
    "camioc_ca_put_client", default=(None, None))


def _tracking_client(channel: Any) -> None:
    """Wrap ``channel.auth_write`` so that its putter knows who writes (the put log)."""
    original = channel.auth_write

    async def auth_write(hostname, username, data, data_type, metadata, *, flags=0, user_address=None):
        address = str(user_address[0]) if user_address else hostname
        token = _put_client.set((address, username))
        try:
            return await original(hostname, username, data, data_type, metadata, flags=flags,
                                  user_address=user_address)
        finally:
            _put_client.reset(token)

    channel.auth_write = auth_write


def _make_putter(attr: str):
    async def putter(group: DeviceGroup, instance, value):
        device = group.device
        old = device.values.get(attr)
        kept = await device.put(attr, value)  # raising refuses the put: nothing is logged
        host, user = _put_client.get()
        putlog.record("ca", host, user, instance.pvname, old=old, new=kept)
        return kept

    putter.__name__ = f"put_{attr}"
    return putter


def pvproperty_for(spec: PVDef, *, ftvl: str | None = None, nelm: int | None = None) -> pvproperty:
    """The caproto ``pvproperty`` of one spec row (``ftvl``/``nelm`` decide an image waveform)."""
    kwargs: dict[str, Any] = {
        "name": spec.name,
        "record": slim_record(spec.record),
        "doc": spec.desc,
        "alarm_group": spec.attr,
        "read_only": not spec.writable,
    }
    if spec.writable:
        kwargs["put"] = _make_putter(spec.attr)
    record = spec.record
    if spec.is_enum:
        kwargs.update(dtype=ChannelType.ENUM, enum_strings=spec.enums, value=spec.initial_value())
    elif record in ("ai", "ao", "int64in"):
        kwargs.update(dtype=float, value=float(spec.initial_value()))
    elif record in ("longin", "longout"):
        kwargs.update(dtype=int, value=int(spec.initial_value()))
    elif record in ("stringin", "stringout"):
        kwargs.update(dtype=ChannelType.STRING, value=str(spec.initial_value()))
    elif spec.is_text:
        kwargs.update(dtype=str, value=str(spec.initial_value()), max_length=spec.nelm)
        if spec.nelm > TEXT_BACKLOG_THRESHOLD:
            kwargs["max_subscription_backlog"] = TEXT_SUBSCRIPTION_BACKLOG
    elif record == "waveform":
        element = ftvl or spec.ftvl
        length = nelm or spec.nelm
        if element not in _WAVEFORM_DTYPES or length <= 0:
            raise ValueError(f"{spec.name}: waveform needs an element type and a length, got {element!r}, {length}")
        initial = np.zeros(1, dtype=_WAVEFORM_NUMPY[element])
        initial.flags.writeable = False
        kwargs.update(dtype=_WAVEFORM_DTYPES[element], value=initial, max_length=length)
        if spec.is_image:
            kwargs["max_subscription_backlog"] = IMAGE_SUBSCRIPTION_BACKLOG
    else:
        raise ValueError(f"{spec.name}: unsupported record type {record!r}")
    if spec.egu:
        kwargs["units"] = spec.egu
    if spec.prec is not None:
        kwargs["precision"] = spec.prec
    if spec.has_limits:
        kwargs.update(
            lower_ctrl_limit=spec.low,
            upper_ctrl_limit=spec.high,
            lower_disp_limit=spec.low,
            upper_disp_limit=spec.high,
        )
    return pvproperty(**kwargs)


class DeviceGroup(PVGroup):
    """The PVs of one device on CA; generated subclasses (:func:`make_group_class`) add them."""

    SPECS: ClassVar[tuple[PVDef, ...]] = ()
    #: waveform element type per attr for the generated class (image waveforms).
    WAVEFORM_FTVL: ClassVar[dict[str, str]] = {}

    def __init__(self, prefix: str, device: Device, **kwargs: Any) -> None:
        super().__init__(prefix, **kwargs)
        self.device = device
        self.channels = {spec.attr: self.attr_pvdb[spec.attr] for spec in self.SPECS}
        for spec in self.SPECS:
            channel = self.channels[spec.attr]
            # caproto keeps the slim field class given as ``record``: report the record type name
            channel.record_type = channel.reported_record_type = spec.record
            if channel.field_inst is not None:
                for field in channel.fields.values():
                    field.check_access = _read_only_access
            if spec.is_image:
                # caproto raises the backlog of big arrays to >= 10 when it warns about memory.
                channel.max_subscription_backlog = IMAGE_SUBSCRIPTION_BACKLOG
            if spec.writable:
                _tracking_client(channel)
        device.attach(self)

    async def initialise(self) -> None:
        """Field values caproto does not link and the device's own initial values; call before
        the group is served."""
        for spec in self.SPECS:
            channel = self.channels[spec.attr]
            fields = channel.field_inst
            if fields is not None:
                if spec.scan != "Passive":  # as the db templates declare
                    await fields.scan_rate.write(spec.scan, verify_value=False)
                if spec.egu:
                    await fields.engineering_units.write(spec.egu, verify_value=False)
                if spec.mdel and spec.has_deadband:
                    # the deadband camioc.model.device applies; caproto reads MDEL/ADEL from these
                    for limit in ("value_atol", "log_atol"):  # numeric channels' attributes
                        setattr(channel, limit, spec.mdel)
                if spec.writable and spec.low is not None and spec.high is not None and spec.has_deadband:
                    # DRVL/DRVH: caproto enforces the ctrl limits but does not link these fields
                    await fields.drive_low_limit.write(spec.low, verify_value=False)
                    await fields.drive_high_limit.write(spec.high, verify_value=False)
                if spec.record == "waveform":
                    element = self.WAVEFORM_FTVL.get(spec.attr, spec.ftvl)
                    await fields.field_type_of_value.write(element, verify_value=False)
        for attr, value in self.device.initial.items():
            await self.channels[attr].write(value, verify_value=False)

    def capacity(self, attr: str) -> int:
        """Elements the waveform ``attr`` can hold (NELM; fixed for the PV's lifetime)."""
        length = self.channels[attr].max_length
        assert length is not None  # caproto sets it when the PV is made (max_length= of the pvproperty)
        return int(length)

    async def post(self, attr: str, value: Any, *, alarm: Alarm, timestamp: float | None, force: bool) -> bool:
        """Write one PV (no putter, no limit check) if its value or alarm changed, or ``force``."""
        channel = self.channels[attr]
        status, severity = AlarmStatus(alarm[0]), AlarmSeverity(alarm[1])
        if not force and channel.severity == severity and channel.status == status and _same(channel.value, value):
            return False
        kwargs: dict[str, Any] = {}
        if channel.severity != severity or channel.status != status:
            # caproto republishes a record's alarm fields (ACKT, ACKS, STAT, SEVR: four more writes
            # and monitor events) whenever a write names an alarm, changed or not: name it only
            # when it changes (measured: a third of the event loop's time under load, issue 11)
            kwargs.update(status=status, severity=severity)
        if timestamp:
            kwargs["timestamp"] = timestamp
        await channel.write(value, verify_value=False, **kwargs)
        await _share_loop()
        return True


#: Writes posted since the event loop last ran other tasks (:func:`_share_loop`).
_writes_since_yield = 0
#: One status of a pipeline is ~50 writes (~0.1 ms each); four pipelines at 10 Hz would hold
#: the loop for tens of ms at a time, and a client's read waits behind them (issue 11).
WRITES_PER_SLICE = 8


async def _share_loop() -> None:
    """Let the loop serve other tasks (CA requests) every :data:`WRITES_PER_SLICE` writes.

    caproto's ``write`` suspends only when a subscriber's queue is full, so a long series
    of posts would otherwise run as one uninterrupted step of the event loop."""
    global _writes_since_yield
    _writes_since_yield += 1
    if _writes_since_yield >= WRITES_PER_SLICE:
        _writes_since_yield = 0
        await asyncio.sleep(0)


def _same(current: Any, new: Any) -> bool:
    if isinstance(current, np.ndarray) or isinstance(new, np.ndarray):
        return False
    return current == new


def group_class(name: str, specs: Iterable[PVDef], *,
                waveforms: dict[str, tuple[str, int]] | None = None) -> type[DeviceGroup]:
    """A :class:`DeviceGroup` class with one pvproperty per spec row.

    ``waveforms`` maps attr -> (element type, length) for waveforms whose type and length are
    decided at runtime (the image, the profiles).
    """
    specs = tuple(specs)
    waveforms = dict(waveforms or {})
    attrs: dict[str, Any] = {}
    for spec in specs:
        ftvl, nelm = waveforms.get(spec.attr, (None, None))
        attrs[spec.attr] = pvproperty_for(spec, ftvl=ftvl, nelm=nelm)
    attrs["SPECS"] = specs
    attrs["WAVEFORM_FTVL"] = {attr: ftvl for attr, (ftvl, _) in waveforms.items()}
    return type(name, (DeviceGroup,), attrs)


@functools.lru_cache(maxsize=64)
def cached_group_class(name: str, specs: tuple[PVDef, ...],
                       waveforms: tuple[tuple[str, str, int], ...] = ()) -> type[DeviceGroup]:
    """:func:`group_class`, cached (blocks of the same tables and sizes share one class)."""
    return group_class(name, specs, waveforms={attr: (ftvl, nelm) for attr, ftvl, nelm in waveforms})


def waveform_class(name: str, specs: tuple[PVDef, ...], attrs: Iterable[str], ftvl: str | None,
                   elements: int) -> type[DeviceGroup]:
    """The group class of ``specs`` whose waveforms ``attrs`` hold ``elements`` of ``ftvl``
    (None: each spec's own element type)."""
    by_attr = {spec.attr: spec for spec in specs}
    return cached_group_class(f"{name}_{ftvl or 'DOUBLE'}_{elements}", specs,
                              tuple((attr, ftvl or by_attr[attr].ftvl, int(elements)) for attr in attrs))


__all__ = [
    "IMAGE_SUBSCRIPTION_BACKLOG",
    "RECORD_FIELDS",
    "DeviceGroup",
    "cached_group_class",
    "group_class",
    "pvproperty_for",
    "slim_record",
    "waveform_class",
]
