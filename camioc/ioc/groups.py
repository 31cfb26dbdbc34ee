"""caproto ``PVGroup`` classes made from the rows of :mod:`camioc.ioc.pvspec`.

:func:`make_group_class` turns a table into a ``PVGroup`` subclass of a :class:`SpecGroup` base
that holds the behaviour. Every generated PV gets:

- ``record=`` (so ``.RTYP``, ``.DESC``, ``.EGU``, ``.PREC``, ``.NAME`` ... answer), ``doc`` = DESC,
  units, precision, control and display limits, enum strings. The records are *slim*
  (:func:`slim_record`): the fields EPICS tools use (:data:`RECORD_FIELDS`), not all 44-104 fields of
  caproto's full records (each a ChannelData object: a pipeline block of ~150 full records took
  ~0.5 s and ~20 MB to build; slim, a third of that). Other fields are not served;
- its own ``alarm_group`` (caproto shares one alarm per group otherwise: an alarm on one PV would
  show on all of them, reference/caproto.md §3.2);
- ``.EGU`` and ``.FTVL`` field values set (caproto does not link them to ``units``/the dtype);
- read-only record fields: caproto lets any client write ``.DESC``, ``.HOPR`` (which moves the
  enforced limit) ... even of read-only PVs; camioc's fields are read-only over CA;
- for output records, a putter that validates enum input (an out-of-range index put as a number
  would otherwise be stored and poison every later read) and dispatches to ``put_<attr>``; an
  enum setpoint always stores its state string (never the index a client sent).

Readbacks are written with :meth:`SpecGroup.post`, which writes only changed values and never runs
putters (``verify_value=False``).
"""

from __future__ import annotations

import functools
import logging
import math
import types
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any, ClassVar, TypeVar, cast

import numpy as np
from caproto import AccessRights, AlarmSeverity, AlarmStatus, ChannelType
from caproto.server import PVGroup, pvproperty
from caproto.server.records import records as _caproto_records

from camioc.ioc.pvspec import PVDef

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
_SEVERITIES = {
    "": AlarmSeverity.NO_ALARM,
    "NO_ALARM": AlarmSeverity.NO_ALARM,
    "MINOR": AlarmSeverity.MINOR_ALARM,
    "MAJOR": AlarmSeverity.MAJOR_ALARM,
    "INVALID": AlarmSeverity.INVALID_ALARM,
}
#: Images are big: keep at most this many updates queued per subscription (a slow client then
#: skips images instead of making the server hold many of them).
IMAGE_SUBSCRIPTION_BACKLOG = 2

#: Long text waveforms (JSON lists) keep a short backlog too: only the latest text matters.
TEXT_BACKLOG_THRESHOLD = 1024
TEXT_SUBSCRIPTION_BACKLOG = 10

#: An alarm: (status, severity).
Alarm = tuple[AlarmStatus, AlarmSeverity]
NO_ALARM: Alarm = (AlarmStatus.NO_ALARM, AlarmSeverity.NO_ALARM)


_MBB_FIELDS = ("ZR", "ON", "TW", "TH", "FR", "FV", "SX", "SV", "EI", "NI", "TE", "EL", "TV", "TT", "FT", "FF")
_COMMON_FIELDS = frozenset({"NAME", "RTYP", "DESC", "SCAN", "PROC", "SEVR", "STAT", "ACKS", "ACKT", "UDF", "TSE"})
#: No alarm-limit fields (HIHI ... LLSV): camioc sets no alarm limits, and fields are read-only.
_NUMERIC_FIELDS = frozenset({"EGU", "PREC", "HOPR", "LOPR", "DRVH", "DRVL"})
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


def _make_putter(attr: str):
    async def putter(group: SpecGroup, instance, value):
        return await group.handle_put(attr, instance, value)

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


class SpecGroup(PVGroup):
    """Behaviour shared by every spec-made group; subclasses implement ``put_<attr>`` handlers."""

    SPECS: ClassVar[tuple[PVDef, ...]] = ()
    #: waveform element type per attr for the generated class (image waveforms).
    WAVEFORM_FTVL: ClassVar[dict[str, str]] = {}

    def __init__(self, prefix: str, **kwargs: Any) -> None:
        super().__init__(prefix, **kwargs)
        self._specs = {spec.attr: spec for spec in self.SPECS}
        for spec in self.SPECS:
            self._finish_instance(getattr(self, spec.attr), spec)

    def _finish_instance(self, instance, spec: PVDef) -> None:
        # Instance for the SpecGroup subclass, after caproto made it: the record type name (caproto
        # keeps the slim field class given as ``record``), field values caproto does not link,
        # read-only fields, a small backlog for images.
        instance.record_type = instance.reported_record_type = spec.record
        fields = instance.field_inst
        if fields is not None:
            if spec.egu:
                fields.engineering_units._data["value"] = spec.egu
            if spec.record == "waveform":
                element = self.WAVEFORM_FTVL.get(spec.attr, spec.ftvl)
                fields.field_type_of_value._data["value"] = element
            for field in instance.fields.values():
                field.check_access = _read_only_access
        if spec.is_image:
            # caproto raises the backlog of big arrays to >= 10 when it warns about memory.
            instance.max_subscription_backlog = IMAGE_SUBSCRIPTION_BACKLOG

    # ------------------------------------------------------------------------------ puts
    async def handle_put(self, attr: str, instance, value):
        """Validate a client put and hand it to ``put_<attr>``; raising refuses the put."""
        spec = self._specs[attr]
        if spec.is_enum:
            value = self._checked_enum(instance, value)
        elif spec.record in ("ao",) and isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{spec.name}: {value} is not a finite number")
        handler = getattr(self, f"put_{attr}", None)
        if handler is None:
            raise PermissionError(f"{spec.name} is not writable")
        result = await handler(instance, value)
        if result is None and spec.is_enum:
            return value  # store the state string, also when the client sent an index
        return result

    @staticmethod
    def _checked_enum(instance, value) -> str:
        strings = list(instance.enum_strings)
        if isinstance(value, str) and value in strings:
            return value
        if isinstance(value, (float, np.floating)) and float(value).is_integer():
            value = int(value)
        if isinstance(value, (int, np.integer)) and 0 <= int(value) < len(strings):
            return strings[int(value)]
        shown = int(value) if isinstance(value, (int, np.integer)) else value
        raise ValueError(f"{shown!r} is not a valid state; valid states: " + ", ".join(
            f"{index}={text}" for index, text in enumerate(strings)))

    # ------------------------------------------------------------------------------ posts
    def spec(self, attr: str) -> PVDef:
        return self._specs[attr]

    async def post(self, attr: str, value: Any, *, alarm: Alarm | None = None,
                   timestamp: float | None = None, force: bool = False) -> bool:
        """Write a readback (no putter, no limit check) if its value or alarm changed.

        For enum PVs with per-state severities (e.g. ``DetectorState_RBV`` Error = MAJOR) the
        state's severity applies unless ``alarm`` is given. Returns whether anything was written.
        """
        instance = getattr(self, attr)
        spec = self._specs[attr]
        if alarm is None:
            alarm = self._state_alarm(spec, value)
        status, severity = alarm
        if not force and instance.severity == severity and instance.status == status and _same(instance.value, value):
            return False
        kwargs: dict[str, Any] = {"status": status, "severity": severity}
        if timestamp:
            kwargs["timestamp"] = timestamp
        await instance.write(value, verify_value=False, **kwargs)
        return True

    @staticmethod
    def _state_alarm(spec: PVDef, value: Any) -> Alarm:
        if not spec.severities:
            return NO_ALARM
        try:
            index = spec.enums.index(value) if isinstance(value, str) else int(value)
            severity = _SEVERITIES[spec.severities[index]]
        except (ValueError, IndexError, KeyError):
            return NO_ALARM
        if severity == AlarmSeverity.NO_ALARM:
            return NO_ALARM
        return (AlarmStatus.STATE, severity)


def roi_list(value: Any) -> list[int] | None:
    """A config ROI (``[x, width, y, height]``: camera ``roi``, pipeline ``image_region_of_interest``)
    as four ints for the ROI PVs, or None when there is none (or it is not four integers)."""
    if value is None:
        return None
    try:
        values = [int(v) for v in value]
    except (TypeError, ValueError):
        return None
    return values if len(values) == 4 else None


def _same(current: Any, new: Any) -> bool:
    if isinstance(current, np.ndarray) or isinstance(new, np.ndarray):
        return False
    return current == new


#: A behaviour class (a :class:`SpecGroup` subclass) and the generated classes made from it.
BehaviourT = TypeVar("BehaviourT", bound=SpecGroup)


def make_group_class(
    name: str,
    base: type[BehaviourT],
    specs: Iterable[PVDef],
    *,
    waveforms: dict[str, tuple[str, int]] | None = None,
) -> type[BehaviourT]:
    """A ``PVGroup`` class with one pvproperty per spec row, behaviour from ``base``.

    ``waveforms`` maps attr -> (element type, length) for waveforms whose type and length are
    decided at runtime (the image).
    """
    specs = tuple(specs)
    waveforms = dict(waveforms or {})
    attrs: dict[str, Any] = {}
    for spec in specs:
        ftvl, nelm = waveforms.get(spec.attr, (None, None))
        attrs[spec.attr] = pvproperty_for(spec, ftvl=ftvl, nelm=nelm)
    attrs["SPECS"] = specs
    attrs["WAVEFORM_FTVL"] = {attr: ftvl for attr, (ftvl, _) in waveforms.items()}
    attrs["__module__"] = base.__module__
    # types.new_class is typed as returning ``type``: the class it makes here subclasses ``base``.
    return cast(type[BehaviourT], types.new_class(name, (base,), exec_body=lambda namespace: namespace.update(attrs)))


@functools.lru_cache(maxsize=64)
def cached_group_class(name: str, base: type[BehaviourT], specs: tuple[PVDef, ...],
                       waveforms: tuple[tuple[str, str, int], ...] = ()) -> type[BehaviourT]:
    """:func:`make_group_class`, cached (image groups of the same format share one class)."""
    return make_group_class(name, base, specs, waveforms={attr: (ftvl, nelm) for attr, ftvl, nelm in waveforms})


__all__ = [
    "roi_list",
    "IMAGE_SUBSCRIPTION_BACKLOG",
    "RECORD_FIELDS",
    "NO_ALARM",
    "Alarm",
    "SpecGroup",
    "cached_group_class",
    "make_group_class",
    "pvproperty_for",
    "slim_record",
]
