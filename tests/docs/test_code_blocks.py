"""Every example in examples/ and every Python block of the docs, the README and the package's
docstrings passes `mypy --strict`, in one mypy call (the harness: tests/docs/_blocks.py)."""

from __future__ import annotations

import pathlib

import pytest

from tests.docs._blocks import (
    ROOT,
    Block,
    BlockError,
    all_blocks,
    blocks_in,
    explain,
    to_module,
    write_modules,
)
from tests.docs._mypy import mypy_strict

MIN_CHECKED = 32
"""Blocks checked today, give or take: the test fails if extraction silently finds fewer."""


def _checked() -> list[Block]:
    return [block for block in all_blocks() if block.skip is None]


def test_blocks_are_found_and_few_are_skipped() -> None:
    blocks = all_blocks()
    checked = [b for b in blocks if b.skip is None]
    skipped = [f"{b.where}: {b.skip}" for b in blocks if b.skip is not None]
    assert len(checked) >= MIN_CHECKED, (len(checked), skipped)
    assert len(skipped) <= 3, skipped
    pages = {b.path.name for b in checked}
    assert {"README.md", "quickstart.md", "concepts.md", "recipes.md"} <= pages


def test_every_example_and_block_passes_mypy_strict(tmp_path: pathlib.Path) -> None:
    folder = tmp_path / "blocks"
    folder.mkdir()
    written, problems = write_modules(_checked(), folder)
    examples = sorted((ROOT / "examples").glob("*.py"))
    assert len(examples) >= 8
    report = mypy_strict([*examples, *sorted(folder.iterdir())], cache=tmp_path / "cache")
    failures = [*problems, *explain(report, written).splitlines()]
    assert not failures, "\n".join(["", *failures])


def test_the_harness_wraps_a_fragment_and_names_an_unknown_name(tmp_path: pathlib.Path) -> None:
    page = ROOT / "docs" / "concepts.md"
    fragment = Block(page, 10, "from imuzekit import errors\nsong = await kit.imuze.songs.get(1)\n")
    module = to_module(fragment)
    assert module.text == (
        "from __future__ import annotations\n"
        "from imuzekit import errors\n"
        "from imuzekit import Client\n"
        "async def _block(kit: Client) -> None:\n"
        "    song = await kit.imuze.songs.get(1)\n"
    )
    assert module.origin == (0, 1, 0, 0, 2)
    written = {f"{fragment.module}.py": (fragment, module)}
    report = f"/tmp/x/{fragment.module}.py:5: error: boom\nSuccess"
    assert explain(report, written) == "docs/concepts.md:11: error: boom\nSuccess"
    harness = explain(f"{fragment.module}.py:4: error: bad", written)
    assert harness == "docs/concepts.md:10 (harness line 4): error: bad"
    with pytest.raises(BlockError, match=r"docs/concepts.md:10: uses mystery without"):
        to_module(Block(page, 10, "print(mystery)\n"))
    whole = Block(page, 3, "import asyncio\n\nasyncio.run(asyncio.sleep(0))\n")
    assert to_module(whole).text == "from __future__ import annotations\n" + whole.code


MARKED = """<!-- no-check: pseudo-code -->
```python
whatever(
```

<!-- no-check -->
```python
x = 1
```

- a list item:

    ```py
    y = 2
    ```
"""


def test_a_no_check_marker_needs_a_reason(tmp_path: pathlib.Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(MARKED)
    first, second, third = blocks_in(page)
    assert (first.skip, first.line, first.code) == ("pseudo-code", 3, "whatever(\n")
    assert second.skip is None  # no reason given: checked anyway
    assert (third.code, third.line) == ("y = 2\n", 14)
