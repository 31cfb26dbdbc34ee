"""A device row as a PV Access Normative Type, and a device post as a PVA value.

The mapping follows what QSRV (EPICS' own PVA server for records) serves for the same record
types, so PVA clients see what they would see of an IOC built from ``db/``:

========================================  ======================================================
record                                    Normative Type
========================================  ======================================================
``ai``, ``ao``, ``int64in``               NTScalar ``double``, display (limits, description,
                                          precision, units) and control limits
``longin``, ``longout``                   NTScalar ``int``, display and control
``bi``, ``bo``, ``mbbi``, ``mbbo``        NTEnum (index + choices)
``stringin``, ``stringout``, text         NTScalar ``string`` (a CHAR waveform holding text is the
waveforms                                 string it holds, as ``caget -S`` shows it)
numeric waveforms (profiles, axes)        NTScalarArray ``double[]``
========================================  ======================================================

The image waveform (``ArrayData``) has no row here: over PVA an image block serves its frames as
the NTNDArray ``Pva1:Image`` (:mod:`camioc.pva.images`), as areaDetector's NDPluginPva does.

Alarms: the severity is the post's; the status and message say what EPICS' status did
(``UDF`` -> UNDEFINED, ``COMM`` -> DRIVER, ``STATE`` -> RECORD) with the EPICS name as message.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import numpy as np
from p4p.nt import NTEnum, NTScalar

from camioc.model.records import NO_ALARM, Alarm, AlarmStatus, PVDef

#: pvData alarm status (``alarm_t.status``) of each EPICS alarm status camioc posts.
_PVA_STATUS: dict[int, int] = {
    AlarmStatus.NO_ALARM: 0,
    AlarmStatus.STATE: 3,  # RECORD
    AlarmStatus.COMM: 2,  # DRIVER
    AlarmStatus.UDF: 6,  # UNDEFINED
}


def served(spec: PVDef) -> bool:
    """Whether a row is served as a PVA scalar/array/enum (the image waveform is not)."""
    return not spec.is_image


def type_code(spec: PVDef) -> str:
    """The p4p type code of a row's ``value`` field ("d", "i", "s", "ad"; "enum" for NTEnum)."""
    if spec.is_enum:
        return "enum"
    if spec.record in ("ai", "ao", "int64in"):
        return "d"
    if spec.record in ("longin", "longout"):
        return "i"
    if spec.record in ("stringin", "stringout") or spec.is_text:
        return "s"
    if spec.record == "waveform":
        return "ad"
    raise ValueError(f"{spec.name}: record type {spec.record!r} has no PVA type")


@dataclass(frozen=True)
class RowType:
    """How one row travels over PVA: its NT (for the SharedPV) and conversions both ways."""

    spec: PVDef
    code: str
    nt: Any

    @classmethod
    def of(cls, spec: PVDef) -> RowType:
        code = type_code(spec)
        if code == "enum":
            nt: Any = NTEnum(display=True)
        else:
            nt = NTScalar(code, display=True, control=code in ("d", "i"), form=code in ("d", "i"))
        return cls(spec, code, nt)

    @property
    def signature(self) -> tuple[Any, ...]:
        """What must be equal for a PV of this row to be reused by another block's row."""
        spec = self.spec
        return (self.code, spec.enums, spec.egu, spec.prec, spec.low, spec.high, spec.desc)

    def initial(self, value: Any, alarm: Alarm = NO_ALARM, timestamp: float | None = None) -> Any:
        """The first value of the PV: metadata and ``value`` (a p4p ``Value``)."""
        spec = self.spec
        fields: dict[str, Any] = {}
        if self.code == "enum":
            fields["value"] = {"index": self._index(value), "choices": list(spec.enums)}
            fields["display"] = {"description": spec.desc}
        else:
            fields["value"] = self._plain(value)
            display: dict[str, Any] = {"description": spec.desc, "units": spec.egu}
            if self.code in ("d", "i"):
                if spec.prec is not None:
                    display["precision"] = int(spec.prec)
                if spec.has_limits:
                    display.update(limitLow=spec.low, limitHigh=spec.high)
                    fields["control"] = {"limitLow": spec.low, "limitHigh": spec.high}
            fields["display"] = display
        fields["alarm"] = alarm_fields(alarm)
        return self.nt.wrap(fields, timestamp=timestamp or time.time())

    def update(self, value: Any, alarm: Alarm, timestamp: float | None) -> Any:
        """A post: only value, alarm and time stamp change (the metadata stays as opened)."""
        if self.code == "enum":
            fields: dict[str, Any] = {"value.index": self._index(value)}
        else:
            fields = {"value": self._plain(value)}
        value_ = self.nt.type()
        for key, item in fields.items():
            value_[key] = item
        value_["alarm"] = alarm_fields(alarm)
        return self.nt.wrap(value_, timestamp=timestamp or time.time())

    def from_client(self, value: Any) -> Any:
        """A client's put value (p4p's unwrapped NT value) as the device takes it."""
        if self.code == "enum":
            return int(value)
        if self.code == "d":
            return float(value)
        if self.code == "i":
            return int(value)
        if self.code == "s":
            return str(value)
        return np.asarray(value, dtype=np.float64)

    def _index(self, value: Any) -> int:
        enums = self.spec.enums
        if isinstance(value, str):
            return enums.index(value) if value in enums else 0
        return int(value) if 0 <= int(value) < len(enums) else 0

    def _plain(self, value: Any) -> Any:
        if self.code == "d":
            return float(value) if value is not None else float("nan")
        if self.code == "i":
            return int(value or 0)
        if self.code == "s":
            return "" if value is None else str(value)
        return np.asarray(value if value is not None else (), dtype=np.float64)


def alarm_fields(alarm: Alarm) -> dict[str, Any]:
    """``alarm_t`` of an EPICS (status, severity)."""
    status, severity = int(alarm[0]), int(alarm[1])
    message = AlarmStatus(status).name if status in AlarmStatus._value2member_map_ and status else ""
    return {"severity": severity, "status": _PVA_STATUS.get(status, 3 if status else 0), "message": message}


__all__ = ["RowType", "alarm_fields", "served", "type_code"]
