"""camioc.config.paths: what lies inside a root folder, on real files and symlinks."""

from __future__ import annotations

from pathlib import Path

import pytest

from camioc.config.paths import confined_path, default_data_dir, format_bytes, is_inside, real_path
from camioc.errors import ConfigError, ProcessingError
from camioc.processing.functions import function_file


@pytest.fixture
def root(tmp_path: Path) -> Path:
    folder = tmp_path / "root"
    (folder / "sub").mkdir(parents=True)
    (tmp_path / "elsewhere").mkdir()
    (folder / "link").symlink_to(tmp_path / "elsewhere")
    (folder / "inner_link").symlink_to(folder / "sub")
    return folder


@pytest.mark.parametrize("name", ["x.h5", "sub/x.h5", "sub/../x.h5", "inner_link/x.h5", "new/deeper/x.h5"])
def test_inside(root: Path, name: str) -> None:
    assert confined_path(name, root, what="File", root_name="data folder").is_relative_to(real_path(root))
    assert confined_path(root / name, root, what="File", root_name="data folder") == real_path(root / name)


@pytest.mark.parametrize(("name", "how"), [
    ("../x.h5", "'..' leads out of it"),
    ("sub/../../x.h5", "'..' leads out of it"),
    ("/etc/passwd", "an absolute path elsewhere"),
    ("link/x.h5", "a symlink leads out of it"),
])
def test_outside_is_refused_naming_the_root(root: Path, name: str, how: str) -> None:
    with pytest.raises(ConfigError) as info:
        confined_path(name, root, what=f"File '{name}'", root_name="data folder")
    message = str(info.value)
    assert f"File '{name}' is outside the data folder {real_path(root)} ({how})" in message
    assert not is_inside(root / name, root)


def test_nul_and_helpers(root: Path) -> None:
    with pytest.raises(ConfigError, match="NUL"):
        confined_path("x\0.h5", root, what="File", root_name="data folder")
    assert default_data_dir(root / "configs") == real_path(root) / "data"
    assert format_bytes(10 * 1024 * 1024) == "10 MB (10485760 bytes)"
    assert format_bytes(4096) == "4 kB (4096 bytes)" and format_bytes(1000) == "1000 bytes"


def test_function_file_is_confined_to_the_scripts_folder(root: Path) -> None:
    (root / "f.py").write_text("def process_image(*a):\n    return {}\n")
    (root.parent / "elsewhere" / "g.py").write_text("")
    (root / "g.py").symlink_to(root.parent / "elsewhere" / "g.py")
    assert function_file("f", root) == real_path(root / "f.py")
    assert function_file(str(root / "f.py"), root) == real_path(root / "f.py")
    assert function_file("transparent", root) is None  # a built-in
    for name, how in (("../elsewhere/g.py", "'..' leads out of it"), ("g.py", "a symlink leads out of it"),
                      (str(root.parent / "elsewhere" / "g.py"), "an absolute path elsewhere")):
        with pytest.raises(ProcessingError, match=f"outside the user scripts folder .*{how}"):
            function_file(name, root)
    with pytest.raises(ProcessingError, match="no user scripts folder is configured"):
        function_file(str(root / "f.py"), None)
    assert function_file("default", None) is None
