"""Python code blocks of the documentation, turned into modules that `mypy --strict` checks.

Where the blocks come from: every fenced block marked `python` (or `py`) in `docs/*.md`,
`README.md` and the docstrings of the package's public modules (the reference renders them;
not the CLI's).

The harness, so that a fragment is checked as a user would paste it:

- a block that is a whole module (its own imports, no name it does not define) is checked as
  it is;
- a block that uses `await`, `async for` or `async with` outside a function, or one of the
  known names below without defining it, is wrapped in `async def _block(<those names>) ->
  None:` (or a plain `def` when nothing awaits), its imports staying at the top of the module;
- the known names stand for what the pages around such fragments have set up:

  | name              | type                              |
  |-------------------|-----------------------------------|
  | `kit`             | `imuzekit.Client` (open)          |
  | `emu`             | `imuzekit.emulator.Emulator`      |
  | `job`             | `imuzekit.Job[Song]` (an iMuze song's) |
  | `token`           | `str` (a `job.token()`)           |
  | `song_id`         | `int`                             |
  | `request_id`      | `str`                             |
  | `app`             | `aiohttp.web.Application`         |
  | `request_path`, `request_headers`, `request_body` | `str`, `Mapping[str, str]`, `bytes` |
  | `MY_SPEC`         | `imuzekit.providers.ProviderSpec` |

  Any other name a block uses without defining it fails the check, naming the block;
- a block whose preceding line is `<!-- no-check: why -->` is skipped (the reason is
  required, and the test lists the skipped blocks); use it only for a block that cannot be
  checked (pseudo-code, a shell transcript marked as Python).
"""

from __future__ import annotations

import ast
import builtins
import pathlib
import re

import attrs

ROOT = pathlib.Path(__file__).resolve().parents[2]

KNOWN: dict[str, tuple[str, tuple[str, ...]]] = {
    "kit": ("Client", ("from imuzekit import Client",)),
    "emu": ("Emulator", ("from imuzekit.emulator import Emulator",)),
    "job": (
        "Job[Song]",
        ("from imuzekit import Job", "from imuzekit.providers.imuze import Song"),
    ),
    "token": ("str", ()),
    "song_id": ("int", ()),
    "request_id": ("str", ()),
    "app": ("web.Application", ("from aiohttp import web",)),
    "request_path": ("str", ()),
    "request_headers": ("Mapping[str, str]", ("from collections.abc import Mapping",)),
    "request_body": ("bytes", ()),
    "MY_SPEC": ("ProviderSpec", ("from imuzekit.providers import ProviderSpec",)),
}
"""Names a fragment may use without defining them: their types and the imports they need."""

_FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})[ \t]*(?P<info>[^`\n]*)$")
_NO_CHECK = re.compile(r"^\s*<!--\s*no-check:\s*(?P<reason>\S.*?)\s*-->\s*$")


@attrs.frozen
class Block:
    """One fenced Python block: where it is (`path`, 1-based `line` of its first code line)."""

    path: pathlib.Path
    line: int
    code: str
    skip: str | None = None

    @property
    def where(self) -> str:
        """`docs/page.md:12`."""
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def module(self) -> str:
        """A module name unique to this block (`docs_concepts_L88`)."""
        stem = re.sub(r"\W", "_", str(self.path.relative_to(ROOT).with_suffix("")))
        return f"{stem}_L{self.line}".lower()


def _public(path: pathlib.Path) -> bool:
    """A module of the public API, whose docstrings the reference renders (not the CLI's)."""
    parts = path.relative_to(ROOT / "imuzekit").parts
    if parts[0] == "cli":
        return False
    return not any(p.startswith("_") and p != "__init__.py" for p in parts)


def sources() -> list[pathlib.Path]:
    """The files whose blocks are checked: docs pages, the README and the docstrings of the
    package's public modules."""
    pages = [*sorted((ROOT / "docs").glob("*.md")), ROOT / "README.md"]
    return pages + sorted(p for p in (ROOT / "imuzekit").rglob("*.py") if _public(p))


def blocks_in(path: pathlib.Path) -> list[Block]:
    """Every `python` fenced block of `path`, dedented by its fence's indentation."""
    lines = path.read_text(encoding="utf-8").splitlines()
    found: list[Block] = []
    index = 0
    while index < len(lines):
        opening = _FENCE.match(lines[index])
        if opening is None:
            index += 1
            continue
        fence = opening["fence"]
        closing = re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
        end = index + 1
        while end < len(lines) and not closing.match(lines[end]):
            end += 1
        language = (opening["info"].split() or [""])[0].lower()
        if language in ("python", "py"):
            previous = next((t for t in reversed(lines[:index]) if t.strip()), "")
            marker = _NO_CHECK.match(previous)
            body = [text[len(opening["indent"]) :] for text in lines[index + 1 : end]]
            found.append(
                Block(
                    path=path,
                    line=index + 2,
                    code="\n".join(body) + "\n",
                    skip=None if marker is None else marker["reason"],
                )
            )
        index = end + 1
    return found


def all_blocks() -> list[Block]:
    """The blocks of every source, in order."""
    return [block for path in sources() for block in blocks_in(path)]


def _awaits_at_top(tree: ast.Module) -> bool:
    """Whether the module awaits outside any function (await, async for/with/comprehension)."""
    scopes = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef)
    pending: list[ast.AST] = list(tree.body)
    while pending:
        node = pending.pop()
        if isinstance(node, ast.Await | ast.AsyncFor | ast.AsyncWith):
            return True
        if isinstance(node, ast.comprehension) and node.is_async:
            return True
        if not isinstance(node, scopes):
            pending.extend(ast.iter_child_nodes(node))
    return False


def _free_names(tree: ast.Module) -> set[str]:
    """Names the block reads but never binds (scopes flattened: enough for fragments)."""
    bound: set[str] = set()
    read: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            (read if isinstance(node.ctx, ast.Load) else bound).add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            bound.add(node.name)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, ast.alias):
            bound.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
    return read - bound - set(dir(builtins))


@attrs.frozen
class Module:
    """A block as a module: its text, and the block line of each module line (0: harness)."""

    text: str
    origin: tuple[int, ...]


class BlockError(Exception):
    """A block the harness cannot turn into a module (a syntax error, an unknown name)."""


def to_module(block: Block) -> Module:
    """The module that checks `block` (see the harness in this module's docstring)."""
    try:
        tree = ast.parse(block.code)
    except SyntaxError as exc:
        raise BlockError(f"{block.where}: not valid Python: {exc}") from None
    free = _free_names(tree)
    unknown = sorted(free - set(KNOWN))
    if unknown:
        raise BlockError(
            f"{block.where}: uses {', '.join(unknown)} without defining it "
            "(define it in the block, or add it to KNOWN in tests/docs/_blocks.py)"
        )
    code = block.code.splitlines()
    awaits = _awaits_at_top(tree)
    own_future = any(isinstance(n, ast.ImportFrom) and n.module == "__future__" for n in tree.body)
    head: list[tuple[str, int]] = [] if own_future else [("from __future__ import annotations", 0)]
    body = [(text, n) for n, text in enumerate(code, start=1)]
    if free or awaits:
        imports = [n for n in tree.body if isinstance(n, ast.Import | ast.ImportFrom)]
        taken = {line for n in imports for line in range(n.lineno, (n.end_lineno or n.lineno) + 1)}
        head += [(code[line - 1], line) for line in sorted(taken)]
        head += [(text, 0) for name in sorted(free) for text in KNOWN[name][1]]
        params = ", ".join(f"{name}: {KNOWN[name][0]}" for name in sorted(free))
        head.append((f"{'async def' if awaits else 'def'} _block({params}) -> None:", 0))
        body = [(f"    {text}" if text else "", n) for text, n in body if n not in taken]
    lines = head + body
    return Module(text="\n".join(t for t, _ in lines) + "\n", origin=tuple(n for _, n in lines))


def write_modules(
    blocks: list[Block], folder: pathlib.Path
) -> tuple[dict[str, tuple[Block, Module]], list[str]]:
    """Write each block's module into `folder`; return them by file name, and the blocks that
    could not be made into a module (`BlockError`'s messages)."""
    written: dict[str, tuple[Block, Module]] = {}
    problems: list[str] = []
    for block in blocks:
        try:
            module = to_module(block)
        except BlockError as exc:
            problems.append(str(exc))
            continue
        name = f"{block.module}.py"
        (folder / name).write_text(module.text, encoding="utf-8")
        written[name] = (block, module)
    return written, problems


def explain(report: str, written: dict[str, tuple[Block, Module]]) -> str:
    """mypy's report with each block module's line turned into its page and line."""
    out: list[str] = []
    for line in report.splitlines():
        match = re.match(r"^(?:.*/)?(?P<name>[\w]+\.py):(?P<line>\d+):(?P<rest>.*)$", line)
        if match is None or match["name"] not in written:
            out.append(line)
            continue
        block, module = written[match["name"]]
        number = int(match["line"])
        origin = module.origin[number - 1] if 0 < number <= len(module.origin) else 0
        where = (
            f"{block.path.relative_to(ROOT)}:{block.line + origin - 1}"
            if origin
            else f"{block.where} (harness line {number})"
        )
        out.append(f"{where}:{match['rest']}")
    return "\n".join(out)
