"""Name validation: names become file names, so path tricks are refused with a clear message."""

from __future__ import annotations

import pytest

from camioc.config.names import MAX_NAME_BYTES, is_valid_name, validate_name
from camioc.errors import CamiocError, InvalidNameError


@pytest.mark.parametrize(
    "name",
    [
        "simulation",
        "camera_example_1_sp",
        "SLG-LCAM-C102_data",
        "simulation_20240320_144334_156830",
        "cam:1",
        "a.b",
        "name with spaces",
        "Kamera-\u00fc",
        "x" * MAX_NAME_BYTES,
    ],
)
def test_valid_names_are_returned_unchanged(name: str) -> None:
    assert validate_name(name) == name
    assert is_valid_name(name)


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "must not be empty"),
        ("..", "must not contain '..'"),
        ("../etc/passwd", "path separators"),
        ("a/b", "path separators"),
        ("/abs", "path separators"),
        ("a\\b", "path separators"),
        ("..\\x", "path separators"),
        ("a..b", "must not contain '..'"),
        ("a\x00b", "NUL"),
        ("a\nb", "control characters"),
        (".hidden", "must not start with '.'"),
        (".", "must not start with '.'"),
        (" x", "whitespace"),
        ("x ", "whitespace"),
        ("x" * (MAX_NAME_BYTES + 1), "longer than"),
        ("\u00fc" * (MAX_NAME_BYTES // 2 + 1), "longer than"),
    ],
)
def test_invalid_names_are_refused_naming_the_problem(name: str, problem: str) -> None:
    with pytest.raises(InvalidNameError) as info:
        validate_name(name, "camera name")
    message = str(info.value)
    assert message.startswith("Invalid camera name")
    assert problem in message
    assert not is_valid_name(name)


def test_non_string_names_are_refused() -> None:
    with pytest.raises(InvalidNameError, match="must be a string, got int"):
        validate_name(5)  # type: ignore[arg-type]
    assert not is_valid_name(None)


def test_error_is_a_value_error_and_a_camioc_error() -> None:
    with pytest.raises(ValueError) as info:
        validate_name("../x")
    assert isinstance(info.value, CamiocError)
    assert str(info.value) == "Invalid name '../x': must not contain path separators ('/' or '\\')."


def test_default_kind_is_name() -> None:
    with pytest.raises(InvalidNameError, match=r"^Invalid name: must not be empty\.$"):
        validate_name("")
