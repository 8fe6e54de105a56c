"""`docs/conformance.md`: every seed row has a row, and every row names an existing SDK-level test.

The page is one Markdown table per seed document (`| seed row | kind | test |`). The checks read
the seeds themselves (through `require_seed`, so with `CI=true` missing seeds fail) and extract
what a row must exist for: each endpoint, each documented parameter and each field of the
example answers and models. A test cell is a pytest node id under `tests/e2e/` (the public API
against the emulator); the ids are checked with pytest's own collection.
"""

from __future__ import annotations

import functools
import re
import subprocess
import sys
from pathlib import Path

import attrs
import pytest

from tests.conftest import require_seed

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "conformance.md"
SEEDS = (
    "000_dab64e63c5e343e3.txt",
    "001_d9d84d674d628908.txt",
    "002_c137e2abe7489977.txt",
    "003_771e5dea5eac4d3c.txt",
    "004_ba0ec72fffa093ba.txt",
)
KINDS = {"endpoint", "parameter", "field", "format", "status"}


@attrs.frozen
class Row:
    seed: str
    text: str
    kind: str
    test: str

    def words(self) -> set[str]:
        """The identifiers quoted in backticks in the row's first cell."""
        quoted = " ".join(re.findall(r"`([^`]*)`", self.text))
        return set(re.findall(r"\w+", quoted))


@functools.cache
def rows() -> tuple[Row, ...]:
    found: list[Row] = []
    seed = ""
    for line in PAGE.read_text().splitlines():
        heading = re.match(r"## (\d{3}_[0-9a-f]+\.txt)", line)
        if heading:
            seed = heading.group(1)
            continue
        if not line.startswith("|") or line.startswith(("| seed row", "|---")):
            continue
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        assert len(cells) == 3, f"a row of three cells: {line!r}"
        assert seed, f"a row outside a seed's section: {line!r}"
        found.append(Row(seed, cells[0], cells[1], cells[2].strip("`")))
    return tuple(found)


def rows_of(seed: str) -> list[Row]:
    return [row for row in rows() if row.seed == seed]


@functools.cache
def collected() -> frozenset[str]:
    """Every node id pytest collects in the test files the page names (one collection run)."""
    files = sorted({row.test.split("::")[0] for row in rows() if "::" in row.test})
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "--collect-only", "-q", "-p", "no:cacheprovider", *files],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return frozenset(line.strip() for line in run.stdout.splitlines() if "::" in line)


def seed_endpoints(seed: str) -> set[str]:
    """`METHOD /path` (or a bare path or file name) of every endpoint the seed documents."""
    text = require_seed(seed).read_text()
    if seed.startswith(("000", "001")):
        pairs = re.findall(r"`(GET|POST|PUT|DELETE) https?://[^/`]+(/[^`]*)`", text)
        return {f"{method} {path.removeprefix('/api/4')}" for method, path in pairs}
    if seed.startswith(("002", "003")):
        paths = re.findall(r"^https://api\.useapi\.net/v1/mureka(/\S*?)(?:\?…)?$", text, re.M)
        return {f"GET {path}" for path in paths}
    endpoints = {f"{m} {p}" for m, p in re.findall(r"^(GET|POST|PUT|DELETE) (/\S+) ", text, re.M)}
    endpoints |= set(re.findall(r"http://(?:api\.)?musescore\.com(/oauth/\w+)", text))
    endpoints |= set(re.findall(r"http://musescore\.com(/oembed/endpoint)", text))
    endpoints |= set(re.findall(r"http://static\.musescore\.com/\{id\}/\{secret\}/(\S+)", text))
    extensions = re.findall(r"extension can be anything in ([^.]+)\.", text)[0]
    endpoints |= {f"score.{ext}" for ext in re.findall(r"\b(pdf|mid|mxl|mscz|mp3)\b", extensions)}
    return endpoints


def seed_names(seed: str) -> set[str]:
    """Every parameter name and every field of the seed's example answers and models."""
    text = require_seed(seed).read_text()
    if seed.startswith(("000", "001")):
        names = set(re.findall(r"^(\w+) \| ", text, re.M)) - {"Parameter"}
        for block in re.findall(r"```moonscript\n(.*?)```", text, re.S):
            names |= set(re.findall(r'"(\w+)":', block))
        return names
    if seed.startswith(("002", "003")):
        names = set(re.findall(r'"(\w+)":', text))
        for model in re.findall(r"\nModel\n\{(.*?)\n\}\n", text, re.S):
            names |= set(re.findall(r"^\s+(\w+)\??: ", model, re.M))
        return names
    names = set(re.findall(r'"(\w+)":', text))
    kinds = r"string|integer|2 letters language code|license|file, required|boolean"
    names |= set(re.findall(rf"^([a-z_]+)(?:{kinds})", text, re.M))
    names |= set(re.findall(r"^(\w+)(?:sort |most recent|\(default\) sort)", text, re.M))
    names |= set(
        re.findall(r"^(url|format|maxwidth|maxheight|callback)(?:The |\(opt|In )", text, re.M)
    )
    return names


def test_the_page_has_a_table_per_seed_and_is_in_the_nav() -> None:
    assert {row.seed for row in rows()} == set(SEEDS)
    assert all(row.kind in KINDS for row in rows()), {row.kind for row in rows()} - KINDS
    assert "conformance.md" in (ROOT / "mkdocs.yml").read_text()


def test_no_row_has_an_empty_test() -> None:
    assert [row.text for row in rows() if not row.test] == []


def test_no_row_is_pending() -> None:
    assert [f"{row.seed}: {row.text}" for row in rows() if row.test.startswith("PENDING")] == []


def test_every_named_test_exists_and_runs_through_the_public_api() -> None:
    named = [row.test for row in rows() if not row.test.startswith("PENDING")]
    assert named
    assert [test for test in named if not test.startswith("tests/e2e/")] == []
    assert sorted({test for test in named if test not in collected()}) == []


@pytest.mark.parametrize("seed", SEEDS)
def test_every_seed_endpoint_has_a_row(seed: str) -> None:
    endpoints = seed_endpoints(seed)
    assert endpoints
    texts = [row.text for row in rows_of(seed)]
    missing = {e for e in endpoints if not any(f"`{e}`" in t or e in t for t in texts)}
    assert sorted(missing) == []
    kinds = {row.text for row in rows_of(seed) if row.kind == "endpoint"}
    assert all(any(e in text for text in kinds) for e in endpoints)


@pytest.mark.parametrize("seed", SEEDS)
def test_every_seed_parameter_and_field_has_a_row(seed: str) -> None:
    names = seed_names(seed)
    assert names
    quoted = set().union(*(row.words() for row in rows_of(seed)))
    assert sorted(names - quoted) == []
