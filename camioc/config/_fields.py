"""Field types and error formatting shared by the camera and pipeline config models.

Every field type is an ``Annotated`` pydantic type whose ``BeforeValidator`` does the whole check
and raises ``ValueError(<reason>)``; :func:`config_error` turns pydantic's ``ValidationError`` into one
:class:`~camioc.errors.ConfigError` whose message names the key, the bad value (as JSON) and the
reason, e.g. ``Invalid value for 'rotate': 1.5 (must be an integer)``.

Values are checked strictly (JSON types): an integer is an ``int`` (not ``true``, not ``1.0``), a
number is an ``int`` or a finite ``float``, a boolean is ``true``/``false``. numpy scalars and
arrays are accepted as the equivalent Python values, so adapters may pass what they received.
"""

from __future__ import annotations

import copy
import json
import math
import numbers
from collections.abc import Callable, Iterable, Mapping
from typing import Annotated, Any, ClassVar

import numpy as np
from pydantic import BaseModel, BeforeValidator, ConfigDict, PrivateAttr, ValidationError

from camioc.config.names import name_problem
from camioc.config.pv import BIN_LIMIT
from camioc.errors import ConfigError

Check = Callable[[Any], Any]

# --------------------------------------------------------------------------------------------
# scalar checks


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool | np.bool_)


def check_bool(value: Any) -> bool:
    if _is_bool(value):
        return bool(value)
    raise ValueError("must be true or false")


def check_int(value: Any) -> int:
    if isinstance(value, numbers.Integral) and not _is_bool(value):
        return int(value)
    raise ValueError("must be an integer")


def check_number(value: Any) -> int | float:
    """An int stays an int (cam_server writes ``10``, not ``10.0``), a float must be finite."""
    if isinstance(value, numbers.Integral) and not _is_bool(value):
        return int(value)
    if isinstance(value, numbers.Real) and not _is_bool(value):
        result = float(value)
        if not math.isfinite(result):
            raise ValueError("must be a finite number")
        return result
    raise ValueError("must be a number")


def check_float(value: Any) -> float:
    return float(check_number(value))


def check_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    raise ValueError("must be a string")


def name_check(kind: str, *, allow_empty: bool = False) -> Check:
    """A string that is (or will be) used as a file name: camera, pipeline, background names."""

    def _check(value: Any) -> str:
        text = check_str(value)
        if not text and allow_empty:
            return text
        problem = name_problem(text) if text else "must not be empty"
        if problem is not None:
            raise ValueError(f"not a valid {kind}: {problem}")
        return text

    return _check


def optional(check: Check) -> Check:
    def _check(value: Any) -> Any:
        return None if value is None else check(value)

    return _check


def int_range(minimum: int | None = None, maximum: int | None = None) -> Check:
    def _check(value: Any) -> int:
        result = check_int(value)
        if minimum is not None and maximum is not None and not minimum <= result <= maximum:
            raise ValueError(f"must be an integer from {minimum} to {maximum}")
        if minimum is not None and result < minimum:
            raise ValueError(f"must be an integer >= {minimum}")
        if maximum is not None and result > maximum:
            raise ValueError(f"must be an integer <= {maximum}")
        return result

    return _check


def positive_number(value: Any) -> int | float:
    result = check_number(value)
    if result <= 0:
        raise ValueError("must be a number > 0")
    return result


def positive_float(value: Any) -> float:
    return float(positive_number(value))


def int_within(minimum: int, maximum: int) -> Check:
    """An integer >= ``minimum`` and <= ``maximum``, the message naming the bound it misses.

    For settings that size memory, threads or work (and had only a lower bound before, whose
    message stays as it was)."""

    def _check(value: Any) -> int:
        result = check_int(value)
        if result < minimum:
            raise ValueError(f"must be an integer >= {minimum}")
        if result > maximum:
            raise ValueError(f"must be an integer <= {maximum}")
        return result

    return _check


def number_range(minimum: float, maximum: float, *, above: bool = False) -> Check:
    """A number >= ``minimum`` (> with ``above``) and <= ``maximum``, the message naming the bound
    it misses (settings that size memory or work)."""

    def _check(value: Any) -> int | float:
        result = check_number(value)
        if result <= minimum if above else result < minimum:
            raise ValueError(f"must be a number {'>' if above else '>='} {minimum:g}")
        if result > maximum:
            raise ValueError(f"must be a number <= {maximum:g}")
        return result

    return _check


def _nul_path(value: Any, path: str) -> str | None:
    """The key path of the first string with a NUL character in ``value``, None if there is none."""
    if isinstance(value, str):
        return path if "\x00" in value else None
    if isinstance(value, Mapping):
        for key, item in value.items():
            found = _nul_path(key, path) or _nul_path(item, f"{path}.{key}" if path else str(key))
            if found:
                return found
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            found = _nul_path(item, f"{path}[{index}]")
            if found:
                return found
    return None


def choice(*values: str, upper: bool = False) -> Check:
    """One of ``values``; with ``upper`` the input is compared upper-cased (``"pub"`` -> ``"PUB"``)."""
    shown = ", ".join(repr(v) for v in values)

    def _check(value: Any) -> str:
        if isinstance(value, str):
            candidate = value.upper() if upper else value
            if candidate in values:
                return candidate
        raise ValueError(f"must be one of {shown}")

    return _check


# --------------------------------------------------------------------------------------------
# compound checks


def as_list(value: Any) -> list[Any] | None:
    """``value`` as a list if it is a list, tuple or 1-d numpy array, else None."""
    if isinstance(value, list | tuple):
        return list(value)
    if isinstance(value, np.ndarray) and value.ndim == 1:
        return value.tolist()
    return None


def check_str_tuple(value: Any) -> tuple[str, ...]:
    """A string or a list of strings (cam_server's ``alias``/``group`` accept both)."""
    if isinstance(value, str):
        return (value,)
    items = as_list(value)
    if items is None or not all(isinstance(item, str) for item in items):
        raise ValueError("must be a string or a list of strings")
    return tuple(items)


def int_list(length: int, what: str, minimums: tuple[int | None, ...] | None = None) -> Check:
    """A list of exactly ``length`` integers; ``what`` describes the items in the message."""

    def _check(value: Any) -> tuple[int, ...]:
        items = as_list(value)
        if (
            items is None
            or len(items) != length
            or not all(isinstance(i, numbers.Integral) and not _is_bool(i) for i in items)
        ):
            raise ValueError(f"must be a list of {length} integers {what}")
        result = tuple(int(i) for i in items)
        for item, minimum in zip(result, minimums or (), strict=False):
            if minimum is not None and item < minimum:
                raise ValueError(f"must be a list of {length} integers {what} (offsets >= 0, sizes >= 1)")
        return result

    return _check


def number_list(length: int, what: str) -> Check:
    def _check(value: Any) -> tuple[int | float, ...]:
        items = as_list(value)
        if items is None or len(items) != length:
            raise ValueError(f"must be a list of {length} numbers {what}")
        try:
            return tuple(check_number(i) for i in items)
        except ValueError:
            raise ValueError(f"must be a list of {length} numbers {what}") from None

    return _check


def roi_or_none(value: Any) -> tuple[int, int, int, int] | None:
    """``[offset_x, size_x, offset_y, size_y]``; ``null`` or ``[]`` mean no ROI."""
    if value is None:
        return None
    items = as_list(value)
    if items == []:
        return None
    result = int_list(4, "[offset_x, size_x, offset_y, size_y]", (0, 1, 0, 1))(value)
    return (result[0], result[1], result[2], result[3])


def mapping_or_none(what: str) -> Check:
    """A JSON object (sub-section) or null; ``None`` values inside are dropped (defaults apply)."""

    def _check(value: Any) -> Any:
        if value is None or isinstance(value, BaseModel):
            return value
        if not isinstance(value, Mapping):
            raise ValueError(f"must be an object {what} or null")
        return drop_none(value)

    return _check


#: bsread compressions camioc's sender implements (``true`` in a config means bitshuffle_lz4).
#: Plain ``lz4`` is refused: bsread implementations disagree on its size prefix.
COMPRESSIONS: tuple[str, ...] = ("bitshuffle_lz4",)


def check_compression(value: Any) -> str | None:
    """cam_server's compression keys: null/false (none), true (= bitshuffle_lz4) or a name."""
    if value is True:
        return "bitshuffle_lz4"
    if value is False or value is None:
        return None
    if isinstance(value, str) and value in COMPRESSIONS:
        return value
    raise ValueError(
        "must be null, true (= 'bitshuffle_lz4'), false or 'bitshuffle_lz4' "
        "('lz4' is not supported: bsread implementations disagree on its size prefix)"
    )


def refuse_unsupported(raw: Mapping[str, Any], unsupported: Mapping[str, str], what: str) -> None:
    """Refuse cam_server options camioc does not implement, rather than store and ignore them.

    A key of ``unsupported`` present with a value other than null/false/0 raises
    :class:`ConfigError` naming the key and what to do instead (``unsupported[key]``).
    """
    for key, advice in unsupported.items():
        value = raw.get(key)
        if value is None or value is False or (isinstance(value, (int, float)) and value == 0):
            continue
        raise ConfigError(f"'{key}' is a cam_server {what} option that camioc does not support: {advice}.")


# --------------------------------------------------------------------------------------------
# annotated types (the core type is what the JSON schema shows)

Bool = Annotated[bool, BeforeValidator(check_bool)]
Int = Annotated[int, BeforeValidator(check_int)]
OptInt = Annotated[int | None, BeforeValidator(optional(check_int))]
PosInt = Annotated[int, BeforeValidator(int_range(1))]
OptPosInt = Annotated[int | None, BeforeValidator(optional(int_range(1)))]
NonNegInt = Annotated[int, BeforeValidator(int_range(0))]
OptPort = Annotated[int | None, BeforeValidator(optional(int_range(1, 65535)))]
Float = Annotated[float, BeforeValidator(check_float)]
PosFloat = Annotated[float, BeforeValidator(positive_float)]
#: binning factor (camera and pipeline): at most BIN_LIMIT
Binning = Annotated[int, BeforeValidator(int_within(1, BIN_LIMIT))]
Number = Annotated[int | float, BeforeValidator(check_number)]
OptNumber = Annotated[int | float | None, BeforeValidator(optional(check_number))]
OptPosNumber = Annotated[int | float | None, BeforeValidator(optional(positive_number))]
Str = Annotated[str, BeforeValidator(check_str)]
OptStr = Annotated[str | None, BeforeValidator(optional(check_str))]
OptBackgroundName = Annotated[str | None, BeforeValidator(optional(name_check("background name")))]
StrTuple = Annotated[tuple[str, ...], BeforeValidator(check_str_tuple)]
OptStrTuple = Annotated[tuple[str, ...] | None, BeforeValidator(optional(check_str_tuple))]
Roi = Annotated[tuple[int, int, int, int] | None, BeforeValidator(roi_or_none)]
OptCompression = Annotated[str | None, BeforeValidator(check_compression)]


class ConfigModel(BaseModel):
    """Base of CameraConfig and PipelineConfig: frozen; keeps the raw mapping it was built from.

    Equality is on the typed values and the extra keys (so ``"alias": "x"`` equals
    ``"alias": ["x"]``); the hash is on the typed values.
    """

    model_config = ConfigDict(frozen=True, extra="ignore", json_schema_extra={"additionalProperties": True})

    #: raw keys that are another name of a typed key (PipelineConfig: ``pause`` -> ``paused``)
    ALIASES: ClassVar[dict[str, str]] = {}

    _raw: dict[str, Any] = PrivateAttr(default_factory=dict)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, ConfigModel)
        return self.__dict__ == other.__dict__ and self.extras == other.extras

    def __hash__(self) -> int:
        return hash((type(self), *self.__dict__.values()))

    @classmethod
    def known_keys(cls) -> frozenset[str]:
        """The typed keys and their aliases (cached: ``model_fields`` is slow to query)."""
        cached = cls.__dict__.get("_known_keys_cache")
        if cached is None:
            cached = frozenset(cls.model_fields) | frozenset(cls.ALIASES)
            type.__setattr__(cls, "_known_keys_cache", cached)
        return cached

    @classmethod
    def typed_keys(cls) -> frozenset[str]:
        """The typed keys (attributes) only."""
        return cls.known_keys() - frozenset(cls.ALIASES)

    @property
    def extras(self) -> dict[str, Any]:
        """Every key that is not a typed attribute (unknown and ``_``-prefixed keys), as given."""
        known = type(self).known_keys()
        return {k: copy.deepcopy(v) for k, v in self._raw.items() if k not in known}

    @property
    def raw(self) -> dict[str, Any]:
        """A copy of the mapping this config was built from (with the ``name`` argument applied)."""
        return copy.deepcopy(self._raw)

    @classmethod
    def json_schema(cls) -> dict[str, Any]:
        """JSON schema of the typed keys (unknown keys are allowed)."""
        return cls.model_json_schema()


class SubModel(BaseModel):
    """Base of sub-sections (calibration, good region, slices, rotation): frozen, unknown keys
    ignored by the model (the owning config keeps them in its raw mapping and in ``to_dict``)."""

    model_config = ConfigDict(frozen=True, extra="ignore", json_schema_extra={"additionalProperties": True})


# --------------------------------------------------------------------------------------------
# raw-mapping helpers


def drop_none(mapping: Mapping[str, Any]) -> dict[str, Any]:
    """cam_server's expansion rule: a ``None`` value never overwrites a default."""
    return {k: v for k, v in mapping.items() if v is not None}


def check_raw_mapping(mapping: Any, empty_message: str) -> dict[str, Any]:
    """Deep copy of a config mapping; refuses non-mappings, empty mappings, non-str keys and
    values that cannot be written as JSON."""
    if mapping is None or (isinstance(mapping, Mapping | list | tuple | str | bytes) and not mapping):
        raise ConfigError(empty_message % (mapping,))
    if not isinstance(mapping, Mapping):
        raise ConfigError(f"Config object must be a JSON object (mapping), got {type(mapping).__name__}.")
    bad_keys = [k for k in mapping if not isinstance(k, str)]
    if bad_keys:
        raise ConfigError(f"Config keys must be strings, got {bad_keys!r}.")
    nul = _nul_path(mapping, "")
    if nul is not None:
        # a NUL would be cut by C tools (EPICS, HDF5) and by some file systems: refused, never stored cut
        raise ConfigError(f"Invalid value for '{nul or '<key>'}': NUL characters are not allowed.")
    return copy.deepcopy(dict(mapping))


def check_json_values(raw: Mapping[str, Any], keys: Iterable[str]) -> None:
    """Refuse keys (kept as-is in ``to_dict``) whose values cannot be written as JSON."""
    keys = list(keys)
    try:  # one pass for the usual case; find the culprit only on failure
        json.dumps([raw[key] for key in keys])
        return
    except (TypeError, ValueError):
        pass
    for key in keys:
        try:
            json.dumps(raw[key], allow_nan=True)
        except (TypeError, ValueError) as exc:
            raise ConfigError(
                f"Invalid value for '{key}': {raw[key]!r} (cannot be represented in JSON: {exc})"
            ) from None


def merge_ordered(raw: Mapping[str, Any], typed: Mapping[str, Any]) -> dict[str, Any]:
    """Keys in the order of ``raw`` (typed value where there is one, else the raw value, deep
    copied), followed by the typed keys that ``raw`` lacks."""
    result: dict[str, Any] = {}
    for key, value in raw.items():
        result[key] = typed[key] if key in typed else copy.deepcopy(value)
    for key, value in typed.items():
        if key not in result:
            result[key] = value
    return result


def section_dict(raw_section: Any, model: BaseModel | None) -> Any:
    """A sub-section as JSON: the model's values, plus unknown keys of the raw sub-mapping."""
    if model is None:
        return None
    typed = model.model_dump(mode="json")
    if isinstance(raw_section, Mapping):
        return merge_ordered(raw_section, typed)
    return typed


# --------------------------------------------------------------------------------------------
# error formatting


def show_value(value: Any) -> str:
    try:
        return json.dumps(value)
    except (TypeError, ValueError):
        return repr(value)


_MISSING = object()


def _lookup(data: Any, keys: list[str]) -> Any:
    for key in keys:
        if not isinstance(data, Mapping) or key not in data:
            return _MISSING
        data = data[key]
    return data


def _reason(error: Mapping[str, Any]) -> str:
    ctx = error.get("ctx") or {}
    if error["type"] == "value_error" and "error" in ctx:
        return str(ctx["error"])
    if error["type"] == "literal_error" and "expected" in ctx:
        return f"must be one of {ctx['expected']}"
    if error["type"] == "missing":
        return "required"
    return str(error.get("msg", "invalid"))


def config_error(exc: ValidationError, data: Mapping[str, Any]) -> ConfigError:
    """One ConfigError for all errors of ``exc``; ``data`` is the mapping that was validated."""
    parts: list[str] = []
    for error in exc.errors(include_url=False):
        keys = [str(p) for p in error["loc"] if isinstance(p, str)]
        key = ".".join(keys) or "config"
        value = _lookup(data, keys)
        if value is _MISSING:
            value = error.get("input")
        message = f"Invalid value for '{key}': {show_value(value)} ({_reason(error)})"
        if message not in parts:
            parts.append(message)
    return ConfigError("; ".join(parts))


def merge_changes(
    current: Mapping[str, Any], changes: Mapping[str, Any], merged_sections: Iterable[str]
) -> dict[str, Any]:
    """``current`` updated with ``changes``; sub-mappings named in ``merged_sections`` are merged
    key by key when both sides are mappings, everything else is replaced."""
    sections = set(merged_sections)
    result = copy.deepcopy(dict(current))
    for key, value in changes.items():
        old = result.get(key)
        if key in sections and isinstance(value, Mapping) and isinstance(old, Mapping):
            section = dict(old)
            section.update(copy.deepcopy(dict(value)))
            result[key] = section
        else:
            result[key] = copy.deepcopy(value)
    return result


def group_members(members: Iterable[tuple[str, tuple[str, ...]]]) -> dict[str, list[str]]:
    """``{group: [names]}`` from ``(name, groups)`` pairs, in order, without duplicates."""
    groups: dict[str, list[str]] = {}
    for name, member_groups in members:
        for group in member_groups:
            names = groups.setdefault(group, [])
            if name not in names:
                names.append(name)
    return groups


def check_changes(changes: Any) -> Mapping[str, Any]:
    """cam_server's message for an empty (or unparsable, i.e. None) config update."""
    if not changes:
        raise ConfigError("Config updates cannot be empty.")
    if not isinstance(changes, Mapping):
        raise ConfigError(f"Config updates must be a JSON object (mapping), got {type(changes).__name__}.")
    return changes

