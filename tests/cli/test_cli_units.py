"""Pure pieces of the CLI: durations, the TOML writer, the manifest, the journal, the docs."""

from __future__ import annotations

import json
import pathlib
import re
import sqlite3
import string
import tomllib
from typing import Any

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from imuzekit import errors
from imuzekit.batch._journal import Journal, JournalError, marker_for
from imuzekit.batch._manifest import ManifestError, load_manifest, manifest_schema, parse_line
from imuzekit.batch._runner import marked_params, markers_in
from imuzekit.cli._common import describe_error, parse_duration_ms
from imuzekit.cli._config import dump_toml, load_settings, update_config_file
from imuzekit.cli._progress import ByteMeter
from imuzekit.providers.imuze._api import check_title

DOCS = pathlib.Path(__file__).resolve().parents[2] / "docs" / "cli.md"


@pytest.mark.parametrize(
    ("text", "ms"),
    [
        ("30s", 30_000),
        ("1m30s", 90_000),
        ("45000ms", 45_000),
        ("90", 90_000),
        ("1.5s", 1_500),
        ("2m", 120_000),
        ("1h", 3_600_000),
        (" 1M 5S ", 65_000),
    ],
)
def test_durations(text: str, ms: int) -> None:
    assert parse_duration_ms(text) == ms


@pytest.mark.parametrize("text", ["", "soon", "30x", "s30", "-5", "0", "0s", "1m30", "nan", "30s!"])
def test_bad_durations(text: str) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration_ms(text)


def test_toml_writer_escapes_everything() -> None:
    data: dict[str, Any] = {
        "top": 'a "quoted" \\ value\n\ttab \x01\x7f é 🎵',
        "musescore": {"token": "t", "token_secret": "s\"'\\"},
        "weird key.with dots": {"x y": [1, 2.5, True, "z"], "n": -3, "inf": float("inf")},
        "nested": {"a": {"b": {"c": "deep"}}, "inline": [{"k": "v"}]},
        "empty": {},
        "0\n": {"1\n": "a key ending in a newline is quoted, not bare"},
    }
    assert tomllib.loads(dump_toml(data)) == data


_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=20)
_scalars = st.one_of(_text, st.integers(), st.booleans(), st.floats(allow_nan=False))
_tables = st.dictionaries(_text, st.one_of(_scalars, st.lists(_scalars, max_size=3)), max_size=4)


@settings(max_examples=60, deadline=None)
@given(st.dictionaries(_text, st.one_of(_scalars, _tables), max_size=4))
def test_toml_writer_round_trips(data: dict[str, Any]) -> None:
    assert tomllib.loads(dump_toml(data)) == data


def test_update_config_file_keeps_other_values(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "dir" / "config.toml"
    update_config_file(path, "musescore", {"token": "a"})
    update_config_file(path, "imuze", {"email": "e"})
    update_config_file(path, "musescore", {"token_secret": "b"})
    assert tomllib.loads(path.read_text()) == {
        "musescore": {"token": "a", "token_secret": "b"},
        "imuze": {"email": "e"},
    }
    assert path.stat().st_mode & 0o777 == 0o600
    assert list(path.parent.iterdir()) == [path]  # no temporary file left


def test_settings_types_and_errors(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "c.toml"
    path.write_text('[mureka]\ntoken = "t"\naccounts = "1, 2"\nfailure_states = [4]\n')
    settings = load_settings(path, env={"IMUZEKIT_MUREKA_MAX_PARALLEL_PER_ACCOUNT": "4"})
    config = settings.config("mureka")
    assert config.accounts == ("1", "2") and config.failure_states == (4,)
    assert config.max_parallel_per_account == 4
    assert settings.config("imuze") is None
    with pytest.raises(errors.ConfigurationError, match="IMUZEKIT_POLL_INITIAL must be a number"):
        load_settings(path, env={"IMUZEKIT_POLL_INITIAL": "fast"})
    path.write_text("[mureka]\nmax_parallel_per_account = 'ten'\n")
    with pytest.raises(errors.ConfigurationError, match="max_parallel_per_account in"):
        load_settings(path, env={})
    path.write_text("[jopplin]\n")
    with pytest.raises(errors.ConfigurationError, match="unknown table"):
        load_settings(path, env={})


def test_error_lines_say_what_to_do() -> None:
    message, code = describe_error(errors.ValidationError("title", "must not be empty"))
    assert (message, code) == ("invalid title: must not be empty", 2)
    limited = errors.RateLimitError("slow down", status=429, provider="imuze", retry_after=3)
    assert "try again in 3 s" in describe_error(limited)[0]
    assert describe_error(errors.ServerError("boom", status=503, provider="imuze"))[1] == 1


def test_byte_meter_counts_each_file_once() -> None:
    seen: list[tuple[int, int]] = []
    meter = ByteMeter(lambda done, total: seen.append((done, total)))
    first, second = meter.callback(), meter.callback()
    first(10, 100)
    second(5, None)
    first(60, 100)
    first(20, 100)  # restarted: nothing new until it passes 60
    first(100, 100)
    assert sum(d for d, _ in seen) == 105 and sum(t for _, t in seen) == 100


# -- the manifest ---------------------------------------------------------------------------


def _line(**fields: Any) -> str:
    return json.dumps(fields)


@pytest.mark.parametrize(
    ("fields", "field", "reason"),
    [
        ({"provider": "suno"}, "provider", "must be one of"),
        (
            {"provider": "imuze", "title": "Morning Song", "arrangement_id": 1},
            "desired_length",
            "required",
        ),
        (
            {"provider": "imuze", "title": "", "arrangement_id": 1, "desired_length": 3},
            "title",
            "must not be empty",
        ),
        (
            {
                "provider": "imuze",
                "title": "Morning Song",
                "arrangement_id": "1",
                "desired_length": 3,
            },
            "arrangement_id",
            "must be an integer, got string",
        ),
        (
            {
                "provider": "imuze",
                "title": "Morning Song",
                "arrangement_id": 1,
                "desired_length": 3,
                "tags": "rock",
            },
            "tags",
            "list of strings",
        ),
        (
            {
                "provider": "imuze",
                "title": "Morning Song",
                "arrangement_id": 1,
                "desired_length": 3,
                "colour": "red",
            },
            "colour",
            "is not a field of imuze create",
        ),
        (
            {
                "provider": "joplin",
                "genre": "g",
                "subgenre": "s",
                "duration_ms": 1000,
                "structure": "calm:0.5,dynamic:0.4",
            },
            "structure",
            "add up to 1",
        ),
        (
            {
                "provider": "joplin",
                "genre": "g",
                "subgenre": "s",
                "duration_ms": 1000,
                "structure": [{"start": 0, "duration": 1, "energy": "loud"}],
            },
            "structure[0].energy",
            "must be one of",
        ),
        (
            {
                "provider": "joplin",
                "genre": "g",
                "subgenre": "s",
                "duration_ms": 0,
                "structure": "calm:1",
            },
            "duration_ms",
            ">= 1",
        ),
        (
            {"provider": "imuze", "title": "Song 42", "arrangement_id": 1, "desired_length": 3},
            "title",
            "has '4', which iMuze does not allow (4 to 255 characters, ASCII letters",
        ),
        (
            {"provider": "imuze", "title": "abc", "arrangement_id": 1, "desired_length": 3},
            "title",
            "must be at least 4 characters, got 3",
        ),
        (
            {"provider": "imuze", "title": "a" * 256, "arrangement_id": 1, "desired_length": 3},
            "title",
            "must be at most 255 characters, got 256",
        ),
        ({"provider": "mureka", "kind": "remix"}, "kind", "must be one of"),
        ({"provider": "mureka", "kind": "create_advanced"}, "lyrics", "required"),
        ({"provider": "mureka", "prompt": "x" * 3001}, "prompt", "at most 3000"),
        ({"provider": "imuze", "kind": "create"}, "kind", "only Mureka"),
        ({"provider": "mureka", "key": ["a"]}, "key", "string or an integer"),
    ],
)
def test_manifest_errors_name_the_line_and_field(
    fields: dict[str, Any], field: str, reason: str
) -> None:
    with pytest.raises(ManifestError) as caught:
        parse_line(7, _line(**fields))
    assert caught.value.line == 7 and caught.value.field == field
    assert reason in caught.value.reason
    assert str(caught.value).startswith(f"manifest line 7, field {field!r}: ")


def test_manifest_keys(tmp_path: pathlib.Path) -> None:
    path = tmp_path / "m.jsonl"
    song = {"provider": "imuze", "title": "Morning Song", "arrangement_id": 1, "desired_length": 3}
    path.write_text("\n".join([_line(**song), "", _line(**song, key="b"), _line(**song, key=9)]))
    lines = load_manifest(path)
    assert [(line.number, line.key) for line in lines] == [(1, "1"), (3, "b"), (4, "9")]
    path.write_text("\n".join([_line(**song, key="a/b"), _line(**song, key="A_b")]))
    with pytest.raises(ManifestError, match="would name the same file"):
        load_manifest(path)
    path.write_text("\n".join([_line(**song, key=2), _line(**song)]))
    with pytest.raises(ManifestError, match="already the key of line 1"):
        load_manifest(path)
    path.write_text("{not json\n")
    with pytest.raises(ManifestError, match="line 1: not valid JSON"):
        load_manifest(path)


def test_markers_go_in_titles_and_tags(tmp_path: pathlib.Path) -> None:
    with Journal(tmp_path / "j.sqlite") as journal:
        manifest = tmp_path / "m.jsonl"
        manifest.write_text(
            "\n".join(
                [
                    _line(provider="imuze", title="T" * 255, arrangement_id=1, desired_length=3),
                    _line(provider="mureka", kind="create_advanced", lyrics="la", title="x" * 50),
                    _line(provider="mureka", kind="create_instrumental", prompt="p"),
                    _line(provider="mureka", prompt="p"),
                    _line(
                        provider="joplin",
                        genre="g",
                        subgenre="s",
                        duration_ms=9,
                        structure="calm:1",
                    ),
                ]
            )
        )
        assert journal.sync(load_manifest(manifest)) == []
        rows = {row.key: row for row in journal.lines()}
        imuze = marked_params(rows["1"])
        marker = marker_for(journal.batch_id, "1")
        # iMuze titles are letters and spaces: the marker's hex digits are spelled a-p there.
        spelled = "ik " + marker[3:].translate(
            str.maketrans("0123456789abcdef", "abcdefghijklmnop")
        )
        assert imuze["title"] == "T" * (255 - len(spelled) - 1) + " " + spelled
        assert len(imuze["title"]) == 255 and check_title("title", imuze["title"])
        # Only in the title: iMuze's tags steer the arrangement it chooses (issue 16).
        assert markers_in(imuze["title"]) == {marker}
        assert imuze["tags"] == []
        advanced = marked_params(rows["2"])["title"]
        assert len(advanced) == 50 and advanced.endswith(f"[{rows['2'].marker}]")
        assert marked_params(rows["3"])["title"] == f"[{rows['3'].marker}]"
        assert rows["4"].marker is None and "title" not in marked_params(rows["4"])
        assert rows["5"].marker is None and str(marked_params(rows["5"])["structure"]) == "calm:1"
        assert re.fullmatch(r"ik:[0-9a-f]{12}", marker)


@pytest.mark.parametrize("key", ["1", "b", "Morning", "a" * 200])
def test_imuze_marker_round_trips_through_a_title(tmp_path: pathlib.Path, key: str) -> None:
    with Journal(tmp_path / "j.sqlite") as journal:
        manifest = tmp_path / "m.jsonl"
        line = {"provider": "imuze", "title": "Morning Song", "arrangement_id": 1}
        manifest.write_text(_line(**line, desired_length=3, key=key))
        journal.sync(load_manifest(manifest))
        (row,) = journal.lines()
        assert row.marker == marker_for(journal.batch_id, key)
        title = marked_params(row)["title"]
        assert title.startswith("Morning Song ik ") and len(title) == len("Morning Song") + 16
        assert check_title("title", title) == title
        # Found again in the title alone, as iMuze's list shows it, and in any case of text
        # around it; an old journal's "[ik:<hex>]" form is still recognized.
        assert markers_in(title) == {row.marker}
        assert markers_in(f"{title}, remastered") == {row.marker}
        assert markers_in(f"Old Song [{row.marker}]") == {row.marker}
        assert (
            markers_in(
                title.upper(),
                "Morning Song ik abcd",
                "Pik abcdefghijkl",
                "ik abcdefghijklm",
                "ik abcdefghijklq",
            )
            == set()
        )
    # Without a title, the marker alone is a valid title.
    request = json.dumps({"provider": "imuze", "kind": "create", "params": {**line, "tags": []}})
    bare = marked_params(attrs.evolve(row, request=request.replace('"Morning Song"', "null")))
    assert bare["tags"] == []
    bare = bare["title"]
    assert bare == title.removeprefix("Morning Song ")
    assert check_title("title", bare) == bare


def test_docs_show_the_manifest_schema() -> None:
    text = DOCS.read_text()
    block = re.search(r"<!-- manifest-schema -->\n```json\n(.*?)\n```", text, re.S)
    assert block is not None, "docs/cli.md lost its manifest schema block"
    assert json.loads(block.group(1)) == manifest_schema()


def test_docs_cover_every_command() -> None:
    from imuzekit.cli import cli

    text = DOCS.read_text()

    def walk(group: Any, prefix: str) -> list[str]:
        names = []
        for name, command in group.commands.items():
            full = f"{prefix} {name}".strip()
            names.append(full)
            if hasattr(command, "commands"):
                names.extend(walk(command, full))
        return names

    for name in walk(cli, ""):
        assert f"imuzekit {name}" in text, name


def test_mureka_model_texts_name_v9_as_the_default() -> None:
    from click.testing import CliRunner

    from imuzekit.batch._manifest import VARIANTS
    from imuzekit.cli import cli

    result = CliRunner().invoke(cli, ["mureka", "create", "--help"])
    assert result.exit_code == 0
    words = " ".join(result.output.split())
    assert "Model: V9 (the service's default), V8, O2 or V7.6." in words
    assert "V8 (default)" not in words
    models = {
        spec.description
        for variant in VARIANTS.values()
        for spec in variant.fields
        if variant.provider == "mureka" and spec.name == "model"
    }
    assert models == {"Mureka model: V9 (the service's default), V8, O2 or V7.6."}


# -- the journal ----------------------------------------------------------------------------


def _journal_with_line(tmp_path: pathlib.Path) -> Journal:
    manifest = tmp_path / "m.jsonl"
    manifest.write_text(
        _line(provider="imuze", title="Morning Song", arrangement_id=1, desired_length=3)
    )
    journal = Journal(tmp_path / "j.sqlite")
    journal.sync(load_manifest(manifest))
    return journal


def test_journal_is_durable_and_refuses_bad_moves(tmp_path: pathlib.Path) -> None:
    with _journal_with_line(tmp_path) as journal:
        mode = journal._db.execute("PRAGMA journal_mode").fetchone()[0]
        sync = journal._db.execute("PRAGMA synchronous").fetchone()[0]
        assert (mode, sync) == ("wal", 2)  # 2 is FULL
        with pytest.raises(JournalError, match="from pending to ready"):
            journal.transition("1", "ready")
        journal.transition("1", "submitting", count_attempt=True)
        journal.transition("1", "submitted", token="{}", remote_id="5")
        with pytest.raises(JournalError, match="from submitted to downloaded"):
            journal.downloaded("1", [])
        assert journal.line("1").attempts == 1
        assert journal.counts()["submitted"] == 1
    db = sqlite3.connect(tmp_path / "j.sqlite")
    events = db.execute("SELECT from_state, to_state FROM events ORDER BY id").fetchall()
    db.close()
    assert events == [(None, "pending"), ("pending", "submitting"), ("submitting", "submitted")]


def test_journal_notices_edited_lines(tmp_path: pathlib.Path) -> None:
    with _journal_with_line(tmp_path) as journal:
        journal.transition("1", "submitting")
        edited = tmp_path / "m2.jsonl"
        edited.write_text(
            _line(provider="imuze", title="Evening Song", arrangement_id=1, desired_length=3)
        )
        (conflict,) = journal.sync(load_manifest(edited))
        assert "manifest line 1 (key '1') changed since it was submitted" in conflict
    with pytest.raises(JournalError, match="no journal"):
        Journal(tmp_path / "missing.sqlite", create=False)
    (tmp_path / "bad.sqlite").write_bytes(b"not a database at all" * 100)
    with pytest.raises(JournalError, match="not a usable journal"):
        Journal(tmp_path / "bad.sqlite")


def test_marker_depends_on_batch_and_key() -> None:
    assert marker_for("a", "1") != marker_for("b", "1") != marker_for("a", "2")
    assert set(marker_for("a", "1")[3:]) <= set(string.hexdigits.lower())
