"""Every folder of camioc's code is a regular package, so a non-editable install ships it.

setuptools' ``packages.find`` skips folders without ``__init__.py`` (namespace packages): an editable
install still imports them from the source tree, a wheel (the Dockerfile's ``pip install .``) would
silently leave them out — as it once did with ``camioc/core``.
"""

from __future__ import annotations

from tests.support.server import REPO_ROOT


def test_every_code_folder_has_an_init() -> None:
    package = REPO_ROOT / "camioc"
    folders = {path.parent for path in package.rglob("*.py") if "__pycache__" not in path.parts}
    missing = sorted(str(folder.relative_to(REPO_ROOT)) for folder in folders if not (folder / "__init__.py").is_file())
    assert not missing, f"folders without __init__.py (left out of wheels): {missing}"
