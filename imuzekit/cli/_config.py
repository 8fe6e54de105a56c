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
``imuzekit config show`` can say so. The file is written (by ``musescore login``) with mode 0600
through tomlkit, which keeps the user's comments and layout.
"""

from __future__ import annotations

import os
import pathlib
import tempfile
import tomllib
import typing
from collections.abc import Mapping
from typing import Any, Literal

import attrs

from imuzekit import Client, PollPolicy, errors
from imuzekit.providers import registry
from imuzekit.providers._env import POLL_FIELDS
from imuzekit.providers._spec import env_var, has_credentials

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
        try:
            config = registry().get(provider).config(**values)
        except errors.ValidationError as exc:
            # `imuze.base_url` -> where the user set it: the variable, or the file's table.
            name = exc.field.partition(".")[2].partition("[")[0]
            given = self.providers[provider].get(name)
            where = (
                env_var(provider, name)
                if given is not None and given.source == "env"
                else f"{name} in [{provider}] of {self.path}"
            )
            raise errors.ValidationError(where, exc.reason) from None
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


def dump_toml(data: Mapping[str, Any], *, header: str = "") -> str:
    """``data`` (what ``tomllib`` reads) as TOML text (tomlkit); nested dicts become tables."""
    import tomlkit

    document = tomlkit.document()
    for line in header.splitlines():
        document.add(tomlkit.comment(line))
    for key, value in data.items():
        document[key] = value
    return tomlkit.dumps(document)


def update_config_file(path: pathlib.Path, table: str, values: Mapping[str, Any]) -> None:
    """Set ``values`` in ``[table]`` of the config file, keeping the rest, with mode 0600.

    The file is edited with tomlkit, so its comments, order and layout are kept; it is
    written through a temporary file created 0600 in the same directory and renamed over it,
    so that a secret is never readable by others, not even for a moment, and a crash never
    leaves half a file.
    """
    import tomlkit
    from tomlkit.exceptions import TOMLKitError

    _read_file(path)  # the same errors as reading it (not TOML, unreadable)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    try:
        document = tomlkit.parse(text)
    except TOMLKitError as exc:  # pragma: no cover - tomllib refused it first
        raise errors.ConfigurationError(f"the config file {path} is not valid TOML: {exc}") from exc
    if not text:
        document.add(tomlkit.comment("imuzekit configuration (see `imuzekit config show`)"))
    section = document.get(table)
    if section is None:
        section = tomlkit.table()
        document[table] = section
    elif not isinstance(section, dict):
        raise errors.ConfigurationError(f"{table} in {path} must be a table ([{table}])")
    for key, value in values.items():
        section[key] = value
    output = tomlkit.dumps(document)
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd, temporary = tempfile.mkstemp(prefix=".config-", suffix=".toml", dir=path.parent)
    try:
        # mkstemp creates the file 0600 already; chmod again in case of an unusual umask path.
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(output)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        pathlib.Path(temporary).unlink(missing_ok=True)
        raise
    os.chmod(path, 0o600)
