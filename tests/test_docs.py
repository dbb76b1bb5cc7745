"""Every Python example in the README and docs/ runs as written (blocks marked
```` ```python fragment ```` are excerpts and are not run)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
BLOCK = re.compile(r"```python\n(.*?)```", re.DOTALL)


def _blocks() -> list[tuple[str, str]]:
    found = []
    for document in DOCUMENTS:
        for index, code in enumerate(BLOCK.findall(document.read_text())):
            found.append((f"{document.name}[{index}]", code))
    return found


@pytest.mark.parametrize(("where", "code"), _blocks(), ids=[where for where, _ in _blocks()])
def test_example_runs(where: str, code: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The example runs to the end without raising."""
    exec(compile(code, where, "exec"), {"__name__": "__main__"})
