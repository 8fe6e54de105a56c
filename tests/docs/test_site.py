"""The documentation site as a reader meets it, built once with `mkdocs build --strict`.

Every public class shows its signature (attrs classes their fields), every public function
and method its signature; the async methods of `Client` and of the provider namespaces a
"Raises" table naming `imuzekit.errors` classes; no reST markup reached a page; user pages
speak to users (no seed file names, repository paths or issue numbers: those belong to the
pages under "For contributors"); code blocks fit the column.
"""

from __future__ import annotations

import importlib.util
import os
import pathlib
import subprocess
import sys

import pytest

import imuzekit
from tests.docs import _roles, _site

ROOT = pathlib.Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("mkdocs") is None, reason="needs the docs extra"
)


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> pathlib.Path:
    """The site, built strictly into a temporary directory (once for this module)."""
    out = tmp_path_factory.mktemp("docs") / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return out


@pytest.fixture(scope="module")
def reference(site: pathlib.Path) -> str:
    """The API reference page's HTML."""
    return (site / "reference" / "index.html").read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def documented(reference: str) -> dict[str, _site.DocObject]:
    """The reference's objects by anchor."""
    return _site.objects(reference)


def test_the_site_builds_strictly_with_every_name(reference: str) -> None:
    missing = [name for name in imuzekit.__all__ if f'id="imuzekit.{name}"' not in reference]
    # __version__ is a plain attribute described in prose, not an object with an anchor.
    assert missing in ([], ["__version__"]), missing


def test_every_public_class_shows_its_signature_and_fields(
    documented: dict[str, _site.DocObject],
) -> None:
    shown: dict[int, _site.DocObject] = {}
    for anchor, obj in documented.items():
        if obj.kind == "class" and (obj.signature or obj.members):
            shown.setdefault(id(_site.resolve(anchor)), obj)
    public = _site.public_classes()
    missing: list[str] = []
    no_signature: list[str] = []
    no_fields: list[str] = []
    for path, cls in public.items():
        found = shown.get(id(cls))
        if found is None:
            missing.append(path)
        elif _site.without_constructor(cls):
            if not found.members:
                no_signature.append(f"{path} (no members)")
        elif not found.signature:
            no_signature.append(path)
        else:
            absent = [f for f in _site.init_fields(cls) if f"{f}:" not in found.signature]
            if absent:
                no_fields.append(f"{path}: {absent}")
    assert missing == [], f"not in the reference: {missing}"
    assert no_signature == [], f"shown without a signature: {no_signature}"
    assert no_fields == [], f"fields missing from the signature: {no_fields}"
    classes = {id(c) for c in public.values()}
    with_fields = {id(c) for c in public.values() if _site.init_fields(c)}
    # The count a reader can check: every public class, attrs classes with their fields.
    assert len(classes) >= 100, len(classes)  # 121 when this was written
    assert len(with_fields) >= 50, len(with_fields)  # 63


def test_every_class_and_function_on_the_page_has_a_signature(
    documented: dict[str, _site.DocObject],
) -> None:
    unrendered = [
        anchor
        for anchor, obj in documented.items()
        if obj.kind in ("class", "function")
        and not obj.signature
        and not (obj.kind == "class" and _site.without_constructor(_site.resolve(anchor)))  # type: ignore[arg-type]
    ]
    assert unrendered == []
    functions = [o for o in documented.values() if o.kind == "function"]
    without_return = [o.id for o in functions if o.signature and "->" not in o.signature]
    assert without_return == [], without_return


# Async methods that raise no imuzekit error: closing is always safe.
NOTHING_TO_RAISE = frozenset({"imuzekit.Client.close"})


def test_async_methods_of_the_client_and_namespaces_show_what_they_raise(
    documented: dict[str, _site.DocObject],
) -> None:
    owners: dict[str, type] = {"imuzekit.Client": imuzekit.Client}
    for provider in ("imuze", "joplin", "mureka", "musescore"):
        module = f"imuzekit.providers.{provider}"
        for name in importlib.import_module(module).__all__:
            if name.endswith("API"):
                owners[f"{module}.{name}"] = getattr(importlib.import_module(module), name)
    methods = [
        f"{anchor}.{name}"
        for anchor, cls in owners.items()
        for name in _site.public_async_methods(cls)
        if f"{anchor}.{name}" not in NOTHING_TO_RAISE
    ]
    assert len(methods) >= 35, len(methods)  # 40 when this was written
    missing = [m for m in methods if m not in documented]
    assert missing == [], f"not in the reference: {missing}"
    without = [m for m in methods if not documented[m].raises]
    assert without == [], f"no Raises table: {without}"
    # Each row names an error of imuzekit.errors, linked to its entry in the reference.
    unlinked = {
        m: [e for e in documented[m].raises if not e.startswith("imuzekit.errors.")]
        for m in methods
    }
    assert {m: e for m, e in unlinked.items() if e} == {}
    for error in {e for m in methods for e in documented[m].raises}:
        assert error in documented, error
    for anchor in NOTHING_TO_RAISE:
        assert documented[anchor].raises == ()


def test_internal_hooks_are_not_documented(documented: dict[str, _site.DocObject]) -> None:
    private = [a for a in documented if any(p.startswith("_") for p in a.split("."))]
    assert private == []
    # The poller feeds a job through these; a user never calls them.
    for hook in ("take_response", "apply_status"):
        assert f"imuzekit.Job.{hook}" not in documented
    assert "imuzekit.Job.wait" in documented
    assert "imuzekit.Job.token" in documented


def test_no_rest_markup_reached_a_page(site: pathlib.Path) -> None:
    left = {
        name: sorted({m.group() for m in _site.ROLE_IN_HTML.finditer(article)})
        for name, article in _site.pages(site)
        if name != "changelog" and _site.ROLE_IN_HTML.search(article)
    }
    assert left == {}


def test_no_rest_markup_left_in_docstrings() -> None:
    left = {
        str(path.relative_to(ROOT)): count
        for path in sorted((ROOT / "imuzekit").rglob("*.py"))
        if (count := _roles.convert(path.read_text(encoding="utf-8"))[1])
    }
    assert left == {}, "run: python tests/docs/_roles.py " + " ".join(left)


def test_user_pages_speak_to_users(site: pathlib.Path) -> None:
    found = {
        name: sorted({m.group() for m in _site.VOCABULARY.finditer(_site.page_text(article))})
        for name, article in _site.pages(site)
        if name not in _site.MAINTAINER_PAGES | {"changelog"}
    }
    assert {name: words for name, words in found.items() if words} == {}


def test_code_blocks_fit_the_column() -> None:
    wide = {
        page.name: [f"{number}: {line}" for number, line in _site.wide_lines(page)]
        for page in sorted((ROOT / "docs").glob("*.md"))
        if page.stem not in _site.MAINTAINER_PAGES | {"changelog"}
    }
    assert {name: lines for name, lines in wide.items() if lines} == {}


def test_contributor_pages_are_in_their_own_section() -> None:
    config = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    section = config[config.index("- For contributors:") :]
    for page in sorted(_site.MAINTAINER_PAGES):
        assert f"{page}.md" in section, page
