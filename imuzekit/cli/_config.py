"""The command line's configuration: environment over the config file over defaults.

The file is TOML (``$XDG_CONFIG_HOME/imuzekit/config.toml``, default
``~/.config/imuzekit/config.toml``, or ``--config PATH``) with one table per provider whose keys
are the config classes' field names:

    [imuze]
    email = "you@example.com"
    password = "..."

    [mureka]
    token = "..."
    accounts = ["111", "222"]

    [poll]            # the Client's poll policy (the CLI's own addition)
    initial = 2.0

Every field can also come from ``IMUZEKIT_<PROVIDER>_<FIELD>`` (``IMUZEKIT_POLL_INITIAL`` for
the poll table), which wins over the file. Values remember where they came from, so that
``imuzekit config show`` can say so. The file is written (by ``musescore login``) with mode 0600,
by hand: the standard library reads TOML but cannot write it, and this needs no dependency.
"""

from __future__ import annotations

import datetime as dt
import math
import os
import pathlib
import re
import tempfile
import tomllib
import typing
from collections.abc import Mapping
from typing import Any, Literal

import attrs

from imuzekit import Client, PollPolicy, errors
from imuzekit.providers import registry
from imuzekit.providers._spec import has_credentials

__all__ = [
    "Settings",
    "Value",
    "default_config_path",
    "dump_toml",
    "load_settings",
    "providers",
    "secret_fields",
    "update_config_file",
]

POLL_FIELDS: dict[str, type] = {"initial": float, "max_interval": float, "timeout": float}
# The config classes' ``poll`` takes a PollPolicy object: the [poll] table covers it for all.
_SKIPPED = frozenset({"poll"})

Source = Literal["env", "file", "default"]


def providers() -> dict[str, type[Any]]:
    """Every registered provider's config class, by name (built-ins first), from the
    provider registry: a provider plugged in gets its table and its variables."""
    return {spec.name: spec.config for spec in registry()}


def secret_fields() -> dict[str, frozenset[str]]:
    """Every registered provider's secret config fields (declared once, in its config class)."""
    return {spec.name: spec.secret_fields for spec in registry()}


@attrs.frozen
class Value:
    """One configuration value and where it came from."""

    value: Any
    source: Source
    secret: bool = False

    def shown(self) -> str:
        """The value for display: secrets masked as ``***``."""
        if self.value is None or self.value == ():
            return "-"
        if self.secret:
            return "***"
        if isinstance(self.value, tuple):
            return ", ".join(str(v) for v in self.value)
        return str(self.value)


def default_config_path(env: Mapping[str, str] | None = None) -> pathlib.Path:
    """``$XDG_CONFIG_HOME/imuzekit/config.toml``, else ``~/.config/imuzekit/config.toml``."""
    source = os.environ if env is None else env
    xdg = source.get("XDG_CONFIG_HOME", "")
    # The XDG spec says a relative value is invalid and must be ignored.
    base = pathlib.Path(xdg) if xdg and os.path.isabs(xdg) else pathlib.Path.home() / ".config"
    return base / "imuzekit" / "config.toml"


def _field_kinds(cls: type[Any]) -> dict[str, Any]:
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in attrs.fields(cls) if f.name not in _SKIPPED}


def _convert(raw: Any, kind: Any, where: str, *, from_env: bool) -> Any:
    """``raw`` (an env string or a TOML value) as the field's type; ConfigurationError if not."""
    if kind == tuple[str, ...]:
        if isinstance(raw, str):
            return tuple(part.strip() for part in raw.split(",") if part.strip())
        if isinstance(raw, list) and all(isinstance(v, str | int) for v in raw):
            return tuple(str(v) for v in raw)
        raise errors.ConfigurationError(f"{where} must be a list of strings")
    if kind == tuple[int, ...]:
        try:
            if isinstance(raw, str):
                return tuple(int(part) for part in raw.split(",") if part.strip())
            if isinstance(raw, list) and all(type(v) is int for v in raw):
                return tuple(raw)
        except ValueError:
            pass
        raise errors.ConfigurationError(f"{where} must be a list of integers")
    if kind is int:
        if type(raw) is int:
            return raw
        if from_env and isinstance(raw, str):
            try:
                return int(raw)
            except ValueError:
                pass
        raise errors.ConfigurationError(f"{where} must be an integer")
    if kind is float:
        if type(raw) in (int, float):
            return float(raw)
        if from_env and isinstance(raw, str):
            try:
                return float(raw)
            except ValueError:
                pass
        raise errors.ConfigurationError(f"{where} must be a number")
    if not isinstance(raw, str):
        raise errors.ConfigurationError(f"{where} must be a string")
    return raw


def _read_file(path: pathlib.Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise errors.ConfigurationError(f"the config file {path} is not valid TOML: {exc}") from exc
    except OSError as exc:
        raise errors.ConfigurationError(f"cannot read the config file {path}: {exc}") from exc


@attrs.frozen
class Settings:
    """The effective configuration: per provider, each field's value and its source."""

    path: pathlib.Path
    file_exists: bool
    providers: Mapping[str, Mapping[str, Value]]
    poll: Mapping[str, Value]

    def config(self, provider: str) -> Any:
        """The provider's config object, or None when it has no credentials."""
        values = {
            name: value.value
            for name, value in self.providers[provider].items()
            if value.source != "default"
        }
        config = registry().get(provider).config(**values)
        return config if has_credentials(config) else None

    def poll_policy(self) -> PollPolicy | None:
        """The Client's poll policy when any of its fields is set, else None (the SDK's)."""
        given = {k: v.value for k, v in self.poll.items() if v.source != "default"}
        if not given:
            return None
        try:
            return PollPolicy(**given)
        except (TypeError, ValueError) as exc:
            raise errors.ConfigurationError(f"invalid poll settings: {exc}") from exc

    def client(self) -> Client:
        """A Client with every provider that has credentials."""
        configs = {name: self.config(name) for name in self.providers}
        return Client(**configs, poll=self.poll_policy())


def load_settings(
    path: pathlib.Path | None = None, env: Mapping[str, str] | None = None
) -> Settings:
    """Read the environment and the config file (``path`` or the default location)."""
    source_env = os.environ if env is None else env
    file_path = path if path is not None else default_config_path(source_env)
    data = _read_file(file_path)
    configs = providers()
    secrets = secret_fields()
    known_tables = {*configs, "poll"}
    for table, content in data.items():
        if table not in known_tables:
            raise errors.ConfigurationError(
                f"unknown table [{table}] in {file_path}; known: {', '.join(sorted(known_tables))}"
            )
        if not isinstance(content, dict):
            raise errors.ConfigurationError(f"{table} in {file_path} must be a table ([{table}])")
    tables: dict[str, dict[str, Value]] = {}
    for provider, cls in configs.items():
        kinds = _field_kinds(cls)
        defaults = {f.name: f.default for f in attrs.fields(cls) if f.name in kinds}
        tables[provider] = _resolve(
            provider,
            kinds,
            defaults,
            data.get(provider, {}),
            source_env,
            file_path,
            secrets[provider],
        )
    defaults = {f.name: f.default for f in attrs.fields(PollPolicy) if f.name in POLL_FIELDS}
    poll = _resolve(
        "poll", POLL_FIELDS, defaults, data.get("poll", {}), source_env, file_path, frozenset()
    )
    return Settings(path=file_path, file_exists=file_path.is_file(), providers=tables, poll=poll)


def _resolve(
    table: str,
    kinds: Mapping[str, Any],
    defaults: Mapping[str, Any],
    file_table: Mapping[str, Any],
    env: Mapping[str, str],
    file_path: pathlib.Path,
    secrets: frozenset[str],
) -> dict[str, Value]:
    unknown = sorted(set(file_table) - set(kinds))
    if unknown:
        raise errors.ConfigurationError(
            f"unknown field {unknown[0]!r} in [{table}] of {file_path}; known: {', '.join(kinds)}"
        )
    values: dict[str, Value] = {}
    for name, kind in kinds.items():
        secret = name in secrets
        variable = f"IMUZEKIT_{table.upper()}_{name.upper()}"
        raw_env = env.get(variable)
        if raw_env:  # an empty variable counts as unset, as in Client.from_env
            values[name] = Value(_convert(raw_env, kind, variable, from_env=True), "env", secret)
        elif name in file_table:
            where = f"{name} in [{table}] of {file_path}"
            values[name] = Value(
                _convert(file_table[name], kind, where, from_env=False), "file", secret
            )
        else:
            values[name] = Value(defaults[name], "default", secret)
    return values


# -- writing TOML -------------------------------------------------------------------------------

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "\b": "\\b",
    "\t": "\\t",
    "\n": "\\n",
    "\f": "\\f",
    "\r": "\\r",
}


def _string(text: str) -> str:
    out = []
    for char in text:
        if char in _ESCAPES:
            out.append(_ESCAPES[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\u{ord(char):04X}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _key(key: str) -> str:
    # fullmatch: `$` would also match before a trailing newline ("0\n" is not a bare key).
    return key if _BARE_KEY.fullmatch(key) else _string(key)


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_scalar(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f"{_key(k)} = {_scalar(v)}" for k, v in value.items()) + "}"
    raise TypeError(f"cannot write a {type(value).__name__} as TOML")


def dump_toml(data: Mapping[str, Any], *, header: str = "") -> str:
    """``data`` (what ``tomllib`` reads) as TOML text; nested dicts become ``[a.b]`` tables."""
    lines: list[str] = [f"# {line}" for line in header.splitlines()]

    def table(prefix: tuple[str, ...], content: Mapping[str, Any]) -> None:
        scalars = {k: v for k, v in content.items() if not isinstance(v, dict)}
        tables = {k: v for k, v in content.items() if isinstance(v, dict)}
        if prefix and (scalars or not tables):
            if lines:
                lines.append("")
            lines.append("[" + ".".join(_key(p) for p in prefix) + "]")
        for key, value in scalars.items():
            lines.append(f"{_key(key)} = {_scalar(value)}")
        for key, value in tables.items():
            table((*prefix, key), value)

    table((), data)
    return "\n".join(lines) + "\n"


def update_config_file(path: pathlib.Path, table: str, values: Mapping[str, Any]) -> None:
    """Set ``values`` in ``[table]`` of the config file, keeping the rest, with mode 0600.

    The file is rewritten whole (comments are not kept) through a temporary file created 0600
    in the same directory and renamed over it, so that a secret is never readable by others,
    not even for a moment, and a crash never leaves half a file.
    """
    data = _read_file(path)
    section = data.setdefault(table, {})
    if not isinstance(section, dict):
        raise errors.ConfigurationError(f"{table} in {path} must be a table ([{table}])")
    section.update(values)
    text = dump_toml(
        data, header="imuzekit configuration (rewritten by `imuzekit musescore login`)"
    )
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, temporary = tempfile.mkstemp(prefix=".config-", suffix=".toml", dir=path.parent)
    try:
        # mkstemp creates the file 0600 already; chmod again in case of an unusual umask path.
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        pathlib.Path(temporary).unlink(missing_ok=True)
        raise
    os.chmod(path, 0o600)
