"""A PV as camioc serves it: :class:`PVDef`, the record vocabulary, alarms and image formats.

A :class:`PVDef` describes one EPICS record (type, DESC, EGU, PREC, limits, enum strings, initial
value) independently of the protocol that serves it: the CA adapter (:mod:`camioc.ioc`) makes a
caproto PV of it, :mod:`camioc.model.dbgen` a ``db/`` record, :mod:`camioc.model.opigen` a screen
widget. The tables of every block are in :mod:`camioc.model.blocks`. Nothing here imports caproto.

Names and semantics follow areaDetector (reference/epics-conventions.md): settings are an output
record ``Name`` plus an input record ``Name_RBV`` showing the value in force; DESC <= 40 chars,
EGU <= 15 chars, enum strings <= 25 chars and <= 16 states (checked by tests).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from camioc.config.pv import DISABLE_ENABLE, NO_YES
from camioc.core.api import DetectorState

#: Output records: writable over CA. Everything else is read-only.
OUTPUT_RECORDS = frozenset({"ao", "bo", "mbbo", "longout", "stringout"})
#: Record types the tables may use.
RECORD_TYPES = frozenset(
    {"ai", "ao", "bi", "bo", "mbbi", "mbbo", "longin", "longout", "int64in", "stringin", "stringout", "waveform"}
)
#: Input record types (readbacks; a writable CHAR waveform is a setting).
INPUT_RECORDS = frozenset({"ai", "bi", "mbbi", "longin", "int64in", "stringin", "waveform"})
#: Numeric record types: they have MDEL/ADEL (``PVDef.mdel``).
DEADBAND_RECORDS = frozenset({"ai", "ao", "longin", "longout", "int64in"})
#: Enum record types (CA DBF_ENUM).
ENUM_RECORDS = frozenset({"bi", "bo", "mbbi", "mbbo"})
#: Waveform element types camioc uses (EPICS menuFtype names).
WAVEFORM_TYPES = ("CHAR", "UCHAR", "SHORT", "LONG", "FLOAT", "DOUBLE")

#: ``ftvl`` of the image waveform: its element type and length are chosen per camera at runtime.
IMAGE_FTVL = "$(FTVL)"

# ---------------------------------------------------------------------------------------- enums
#: ``DetectorState_RBV`` (ADBase order).
DETECTOR_STATES: tuple[str, ...] = tuple(state.name for state in DetectorState)
#: ``DataType_RBV`` (NDDataType_t order).
DATA_TYPES: tuple[str, ...] = (
    "Int8", "UInt8", "Int16", "UInt16", "Int32", "UInt32", "Int64", "UInt64", "Float32", "Float64",
)
#: ``ColorMode_RBV`` (NDColorMode_t order).
COLOR_MODES: tuple[str, ...] = ("Mono", "Bayer", "RGB1", "RGB2", "RGB3", "YUV444", "YUV422", "YUV421")


@dataclass(frozen=True, slots=True)
class PVDef:
    """One PV: an EPICS record as the IOC serves it and as ``db/`` declares it.

    ``name`` is relative to the block prefix. ``low``/``high`` are the control limits: enforced on
    puts (caproto refuses values outside them) and written as DRVL/DRVH + LOPR/HOPR. ``severities``
    gives the alarm severity of each enum state ("" = none; e.g. ``DetectorState_RBV`` Error).
    ``nelm`` is the waveform length (NELM); ``value`` the initial value.
    """

    attr: str
    name: str
    record: str
    desc: str
    egu: str = ""
    prec: int | None = None
    low: float | None = None
    high: float | None = None
    enums: tuple[str, ...] = ()
    severities: tuple[str, ...] = ()
    ftvl: str = ""
    nelm: int = 0
    value: Any = None
    #: the pipeline output (``results``/``arrays`` key) a result readback shows
    source: str = ""
    #: a waveform clients may write (a long string setting, e.g. ``BackgroundId``)
    output: bool = False
    #: for waveforms sized at runtime: the db macro of the length (``nelm`` is its default)
    nelm_macro: str = ""
    #: monitor deadband (MDEL, and ADEL: caproto posts value and archive events together): a
    #: numeric value that moved by at most this from the last posted one is not posted (0: every
    #: change is). Set on noisy diagnostics (rates, times), not on measurements (every change counts).
    mdel: float = 0.0
    #: a position or width on the image: its EGU is the unit of the camera's axes (``px`` unless
    #: the camera is calibrated, :func:`with_axis_unit`); db/ declares it as ``$(XYEGU=px)``
    axis_unit: bool = False
    #: a setting with no meaning for camioc's sources and pipelines (ADCore names clients expect):
    #: a put is accepted and kept, shown on its ``_RBV``, and changes nothing else (model.adcore)
    kept: bool = False

    @property
    def writable(self) -> bool:
        """Whether CA clients may put to the PV (output records, output waveforms)."""
        return self.record in OUTPUT_RECORDS or (self.output and self.record == "waveform")

    @property
    def scan(self) -> str:
        """``.SCAN``: readbacks are ``I/O Intr`` (posted when they change), settings ``Passive``."""
        return "I/O Intr" if self.record in INPUT_RECORDS and not self.writable else "Passive"

    @property
    def is_enum(self) -> bool:
        return self.record in ENUM_RECORDS

    @property
    def is_text(self) -> bool:
        """A long string served as a CHAR waveform (readable as text with ``.$`` / ``caget -S``)."""
        return self.record == "waveform" and self.ftvl == "CHAR"

    @property
    def is_image(self) -> bool:
        """The image waveform, whose element type and length are decided per camera."""
        return self.record == "waveform" and self.ftvl == IMAGE_FTVL

    @property
    def has_deadband(self) -> bool:
        """Whether the record has MDEL/ADEL fields (the numeric records)."""
        return self.record in DEADBAND_RECORDS

    @property
    def has_limits(self) -> bool:
        return self.low is not None and self.high is not None

    def initial_value(self) -> Any:
        """The value the PV holds before anything is posted."""
        if self.value is not None:
            return self.value
        if self.is_enum:
            return self.enums[0]
        if self.record in ("ai", "ao", "int64in"):
            return 0.0
        if self.record in ("longin", "longout"):
            return 0
        if self.record == "waveform" and not self.is_text and not self.is_image:
            empty = np.zeros(1)
            empty.flags.writeable = False
            return empty
        return ""


#: EGU of positions on an uncalibrated camera's image (its axes are pixel indices).
PIXEL_EGU = "px"
#: EGU of positions on a calibrated camera's image: the unit of ``reference_marker_width/height``,
#: which cam_server's config does not name (so none is claimed).
CALIBRATED_EGU = ""


def with_axis_unit(specs: tuple[PVDef, ...], egu: str) -> tuple[PVDef, ...]:
    """``specs`` with ``egu`` as the unit of every :attr:`PVDef.axis_unit` row."""
    return tuple(replace(spec, egu=egu) if spec.axis_unit and spec.egu != egu else spec for spec in specs)


def rbv(setting: PVDef, record: str, desc: str, enums: tuple[str, ...] | None = None) -> PVDef:
    """The ``_RBV`` input record of an output record: same units, precision and enum strings."""
    return PVDef(
        attr=f"{setting.attr}_rbv",
        name=f"{setting.name}_RBV",
        record=record,
        desc=desc,
        egu=setting.egu,
        prec=setting.prec,
        mdel=setting.mdel,
        low=setting.low,
        high=setting.high,
        enums=setting.enums if enums is None else enums,
        ftvl=setting.ftvl,
        nelm=setting.nelm,
        value=None if enums is not None else setting.value,
    )


def pair(setting: PVDef, rbv_record: str, rbv_desc: str,
          rbv_enums: tuple[str, ...] | None = None) -> tuple[PVDef, PVDef]:
    return setting, rbv(setting, rbv_record, rbv_desc, rbv_enums)


# =========================================================================================
# Image formats: numpy dtype -> areaDetector DataType_RBV and the CA waveform element type
# =========================================================================================
@dataclass(frozen=True, slots=True)
class ImageFormat:
    """How an image of one numpy dtype is served on CA.

    ``ftvl`` is the waveform element type (CA has no unsigned 16/32-bit types: UInt16 and UInt32
    are served as SHORT/LONG with the bits reinterpreted, as areaDetector's NDStdArrays does;
    clients use ``DataType_RBV`` or Phoebus ``unsigned`` to read them back). 64-bit integers are
    served as DOUBLE (what an EPICS int64 waveform gives CA clients).
    """

    data_type: str
    ftvl: str


_IMAGE_FORMATS: dict[str, ImageFormat] = {
    "int8": ImageFormat("Int8", "CHAR"),
    "uint8": ImageFormat("UInt8", "UCHAR"),
    "bool": ImageFormat("UInt8", "UCHAR"),
    "int16": ImageFormat("Int16", "SHORT"),
    "uint16": ImageFormat("UInt16", "SHORT"),
    "int32": ImageFormat("Int32", "LONG"),
    "uint32": ImageFormat("UInt32", "LONG"),
    "int64": ImageFormat("Int64", "DOUBLE"),
    "uint64": ImageFormat("UInt64", "DOUBLE"),
    "float16": ImageFormat("Float32", "FLOAT"),
    "float32": ImageFormat("Float32", "FLOAT"),
    "float64": ImageFormat("Float64", "DOUBLE"),
}
#: Format of an image PV created before the camera's dtype is known (most cameras are 16-bit).
DEFAULT_IMAGE_FORMAT = _IMAGE_FORMATS["uint16"]
#: Elements of an image PV created before the camera's sensor size is known (2048 x 2048).
DEFAULT_IMAGE_ELEMENTS = 2048 * 2048


def image_format(dtype: Any) -> ImageFormat:
    """The CA format of images of numpy dtype ``dtype`` (a dtype or its name)."""
    name = np.dtype(dtype).name
    try:
        return _IMAGE_FORMATS[name]
    except KeyError:
        raise ValueError(f"images of dtype {name} cannot be published on CA") from None


def wire_ftvl(ftvl: str) -> str:
    """The element type CA clients see for a waveform FTVL (DBF_UCHAR is served as DBR_CHAR)."""
    return "CHAR" if ftvl == "UCHAR" else ftvl


def spec_by_attr(table: tuple[PVDef, ...]) -> dict[str, PVDef]:
    return {pv.attr: pv for pv in table}


def spec_by_name(table: tuple[PVDef, ...]) -> dict[str, PVDef]:
    return {pv.name: pv for pv in table}


# =========================================================================================
# Alarms (EPICS menuAlarmStat / menuAlarmSevr numbers, so transports map them 1:1)
# =========================================================================================
class AlarmStatus(enum.IntEnum):
    NO_ALARM = 0
    STATE = 7
    COMM = 9
    UDF = 17


class AlarmSeverity(enum.IntEnum):
    NO_ALARM = 0
    MINOR_ALARM = 1
    MAJOR_ALARM = 2
    INVALID_ALARM = 3


#: An alarm: (status, severity).
Alarm = tuple[AlarmStatus, AlarmSeverity]
NO_ALARM: Alarm = (AlarmStatus.NO_ALARM, AlarmSeverity.NO_ALARM)
#: Readbacks without data (not running, no result yet, not a finite number, processing error).
NO_DATA: Alarm = (AlarmStatus.UDF, AlarmSeverity.INVALID_ALARM)
SEVERITIES: dict[str, AlarmSeverity] = {
    "": AlarmSeverity.NO_ALARM,
    "NO_ALARM": AlarmSeverity.NO_ALARM,
    "MINOR": AlarmSeverity.MINOR_ALARM,
    "MAJOR": AlarmSeverity.MAJOR_ALARM,
    "INVALID": AlarmSeverity.INVALID_ALARM,
}


def state_alarm(spec: PVDef, value: Any) -> Alarm:
    """The alarm of an enum value with per-state severities (e.g. ``DetectorState_RBV`` Error)."""
    if not spec.severities:
        return NO_ALARM
    try:
        index = spec.enums.index(value) if isinstance(value, str) else int(value)
        severity = SEVERITIES[spec.severities[index]]
    except (ValueError, IndexError, KeyError):
        return NO_ALARM
    if severity == AlarmSeverity.NO_ALARM:
        return NO_ALARM
    return (AlarmStatus.STATE, severity)


__all__ = [
    "COLOR_MODES",
    "DATA_TYPES",
    "DEFAULT_IMAGE_ELEMENTS",
    "DEFAULT_IMAGE_FORMAT",
    "DETECTOR_STATES",
    "DISABLE_ENABLE",
    "ENUM_RECORDS",
    "IMAGE_FTVL",
    "INPUT_RECORDS",
    "NO_ALARM",
    "NO_DATA",
    "NO_YES",
    "OUTPUT_RECORDS",
    "RECORD_TYPES",
    "WAVEFORM_TYPES",
    "Alarm",
    "AlarmSeverity",
    "AlarmStatus",
    "ImageFormat",
    "PVDef",
    "image_format",
    "rbv",
    "pair",
    "spec_by_attr",
    "spec_by_name",
    "state_alarm",
    "wire_ftvl",
]
