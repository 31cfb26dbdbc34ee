"""The README's "Stock EPICS clients" snippets, as the tests run them (drift check: the test runs
the README's text, so README and test cannot differ)."""

from __future__ import annotations

import re

from tests.support.server import REPO_ROOT

_SNIPPET = re.compile(r"<!-- snippet: (?P<name>[\w-]+) -->\s*```python\n(?P<code>.*?)```", re.S)


def snippet(name: str) -> str:
    """The Python code block that follows ``<!-- snippet: name -->`` in README.md."""
    found = {m["name"]: m["code"] for m in _SNIPPET.finditer((REPO_ROOT / "README.md").read_text())}
    assert name in found, f"README.md has no snippet {name!r} (has {sorted(found)})"
    return found[name]


def run_snippet(name: str, **environment: str) -> dict[str, object]:
    """Run snippet ``name`` as a script would (its own globals); its globals afterwards."""
    import os

    saved = {key: os.environ.get(key) for key in environment}
    os.environ.update(environment)
    try:
        namespace: dict[str, object] = {"__name__": f"readme_{name}"}
        exec(compile(snippet(name), f"README.md:{name}", "exec"), namespace)  # noqa: S102 - the README's code
        return namespace
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
