"""The walk over a config class: every field marked :class:`~camioc.config.pv.PV` or
:class:`~camioc.config.pv.Section` becomes a setting (setpoint + ``_RBV``), in field order.

:class:`DeviceSettings` is what a transport needs of a config class: the PV rows
(:meth:`DeviceSettings.pvs`), what each ``_RBV`` shows for a config (:meth:`DeviceSettings.in_force`)
and, per section, which config value the setpoints describe (:meth:`SectionDef.describes`).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from camioc.config.pv import PV, RBV_RECORDS, Section
from camioc.model.records import PVDef, rbv


@dataclass(frozen=True)
class SettingDef:
    """One setting: config ``key`` (the field), its marker, the section it belongs to (or None)."""

    key: str
    pv: PV
    section: SectionDef | None = None

    @property
    def attr(self) -> str:
        return self.pv.attr

    @functools.cached_property
    def setpoint(self) -> PVDef:
        pv = self.pv
        text = pv.record == "waveform"
        return PVDef(pv.attr, pv.name, pv.record, pv.desc, egu=pv.egu, prec=pv.prec, low=pv.low, high=pv.high,
                     enums=pv.enums, ftvl="CHAR" if text else "", nelm=pv.nelm, value=pv.value, output=text)

    @functools.cached_property
    def readback(self) -> PVDef:
        return rbv(self.setpoint, RBV_RECORDS[self.pv.record], self.pv.rbv_desc)


@dataclass(frozen=True, eq=False)
class SectionDef:
    """A :class:`~camioc.config.pv.Section` field: its members and how setpoints make its value."""

    key: str
    marker: Section
    members: tuple[SettingDef, ...] = ()

    def describes(self, values: Mapping[str, Any]) -> Any:
        """The config value the PV values ``values`` (by attr) describe: None unless every switch
        is on and every ``positive`` member > 0; else a list (by index) or an object (by key)."""
        parts = [m for m in self.members if not m.pv.switch]
        if any(values[m.attr] != m.pv.enums[1] for m in self.members if m.pv.switch):
            return None
        if any(values[attr] <= 0 for attr in self.marker.positive):
            return None
        if self.marker.shape is list:
            items: list[Any] = [None] * len(parts)
            for member in parts:
                items[int(member.pv.item or 0)] = member.pv.codec.to_config(values[member.attr])
            return items
        return {str(member.pv.item): member.pv.codec.to_config(values[member.attr]) for member in parts}

    def in_force(self, value: Any) -> dict[str, Any]:
        """What each member's ``_RBV`` shows for the config value ``value``."""
        present = self._present(value)
        shown: dict[str, Any] = {}
        for member in self.members:
            pv = member.pv
            if pv.switch:
                shown[member.attr] = pv.enums[1 if present is not None else 0]
            elif present is None:
                shown[member.attr] = pv.codec.to_pv(None)
            elif isinstance(present, list):
                shown[member.attr] = pv.codec.to_pv(present[int(pv.item or 0)])
            else:
                shown[member.attr] = pv.codec.to_pv(present.get(str(pv.item)))
        return shown

    def cleared(self) -> dict[str, Any]:
        """Setpoints that stop describing a section (posted when it was removed elsewhere)."""
        switches = {m.attr: m.pv.enums[0] for m in self.members if m.pv.switch}
        return switches or dict.fromkeys(self.marker.positive, 0)

    def _present(self, value: Any) -> list[int] | Mapping[str, Any] | None:
        if value is None:
            return None
        if self.marker.shape is list:
            try:
                items = [int(item) for item in value]
            except (TypeError, ValueError):
                return None
            return items if len(items) == sum(1 for m in self.members if not m.pv.switch) else None
        return value if isinstance(value, Mapping) else None


@dataclass(frozen=True)
class DeviceSettings:
    """Every setting of one config class, in field order."""

    settings: tuple[SettingDef, ...]
    sections: tuple[SectionDef, ...]

    @classmethod
    def of(cls, config_class: type[BaseModel]) -> DeviceSettings:
        settings: list[SettingDef] = []
        sections: list[SectionDef] = []
        for key, info in config_class.model_fields.items():
            for marker in info.metadata:
                if isinstance(marker, PV):
                    settings.append(SettingDef(key, marker))
                elif isinstance(marker, Section):
                    section = SectionDef(key, marker)
                    members = tuple(SettingDef(key, member, section) for member in marker.members)
                    object.__setattr__(section, "members", members)
                    sections.append(section)
                    settings.extend(members)
        return cls(tuple(settings), tuple(sections))

    @functools.cached_property
    def by_attr(self) -> dict[str, SettingDef]:
        return {setting.attr: setting for setting in self.settings}

    @property
    def plain(self) -> tuple[SettingDef, ...]:
        """Settings that are a config key of their own (no section)."""
        return tuple(setting for setting in self.settings if setting.section is None)

    def pvs(self) -> tuple[PVDef, ...]:
        """The setpoint and ``_RBV`` rows of every setting, in order."""
        return tuple(pv for setting in self.settings for pv in (setting.setpoint, setting.readback))

    def pvs_of(self, key: str) -> tuple[PVDef, ...]:
        """The rows of the settings of config key ``key``."""
        return tuple(pv for s in self.settings if s.key == key for pv in (s.setpoint, s.readback))

    def in_force(self, config: Mapping[str, Any]) -> dict[str, Any]:
        """What each setting's ``_RBV`` shows (by setting attr) for an effective config."""
        shown: dict[str, Any] = {}
        for setting in self.plain:
            shown[setting.attr] = setting.pv.codec.to_pv(config.get(setting.key))
        for section in self.sections:
            shown.update(section.in_force(config.get(section.key)))
        return {setting.attr: shown[setting.attr] for setting in self.settings}


__all__ = ["DeviceSettings", "SectionDef", "SettingDef"]
