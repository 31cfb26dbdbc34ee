"""Reading the generated screens as their tools do: the PV names a ``.bob`` or ``.ui`` file uses.

Phoebus macros are ``$(NAME)`` (with ``$(pv_name)`` the widget's own PV), PyDM's are ``${NAME}``
(``string.Template``). Names come back with the protocol the tool would use (``pva://`` for
PV Access; Phoebus' bare names and PyDM's ``ca://`` are Channel Access).
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

from tests.support.phoebus_schema import PV_PROPERTIES

_PHOEBUS_MACRO = re.compile(r"\$\(([^()]+)\)")
_PYDM_MACRO = re.compile(r"\$\{([^{}]+)\}")


def expand_phoebus(text: str, macros: dict[str, str]) -> str:
    """``$(NAME)`` / ``$(NAME=default)`` expanded; an unknown macro without default fails."""

    def replace(match: re.Match[str]) -> str:
        name, _, default = match.group(1).partition("=")
        if name in macros:
            return macros[name]
        if default:
            return default
        raise AssertionError(f"unresolved macro $({name}) in {text!r}")

    previous = None
    while previous != text:
        previous, text = text, _PHOEBUS_MACRO.sub(replace, text)
    return text


def expand_pydm(text: str, macros: dict[str, str]) -> str:
    def replace(match: re.Match[str]) -> str:
        if match.group(1) not in macros:
            raise AssertionError(f"unresolved macro ${{{match.group(1)}}} in {text!r}")
        return macros[match.group(1)]

    return _PYDM_MACRO.sub(replace, text)


def macro_names(text: str) -> set[str]:
    """Every macro a file uses (either syntax), without ``pv_name`` (Phoebus' widget property)."""
    names = {m.group(1).partition("=")[0] for m in _PHOEBUS_MACRO.finditer(text)}
    names |= {m.group(1) for m in _PYDM_MACRO.finditer(text)}
    return names - {"pv_name"}


def bob_widgets(path: Path) -> Iterator[ET.Element]:
    yield from ET.parse(path).getroot().iter("widget")


def bob_pvs(path: Path, macros: dict[str, str]) -> set[str]:
    """Every PV name of a ``.bob`` file, macros expanded (``$(pv_name)`` per widget)."""
    used = set()
    for widget in bob_widgets(path):
        own = widget.findtext("pv_name")
        local = dict(macros, pv_name=expand_phoebus(own, macros) if own else "")
        for element in _own_elements(widget):
            if element.tag in PV_PROPERTIES and element.text:
                used.add(expand_phoebus(element.text, local))
    return used


def _own_elements(widget: ET.Element) -> Iterator[ET.Element]:
    """The elements of ``widget`` without those of the widgets nested in it (a group's children)."""
    for child in widget:
        if child.tag != "widget":
            yield child
            yield from _own_elements(child)


def ui_channels(path: Path, macros: dict[str, str]) -> set[str]:
    """Every channel of a PyDM ``.ui`` file (widget channels and plot curves), macros expanded."""
    used = set()
    for prop in ET.parse(path).getroot().iter("property"):
        name = prop.get("name")
        if name in ("channel", "imageChannel", "widthChannel") and (text := prop.findtext("string")):
            used.add(expand_pydm(text, macros))
        elif name == "curves":
            for item in prop.iter("string"):
                curve = json.loads(item.text or "{}")
                used |= {expand_pydm(curve[key], macros) for key in ("x_channel", "y_channel") if curve.get(key)}
    return used


def split_protocol(name: str) -> tuple[str, str]:
    """``("pva", name)`` or ``("ca", name)`` (a bare name is Channel Access, as Phoebus' default)."""
    protocol, sep, rest = name.partition("://")
    return (protocol, rest) if sep else ("ca", name)


__all__ = ["bob_pvs", "bob_widgets", "expand_phoebus", "expand_pydm", "macro_names", "split_protocol", "ui_channels"]
