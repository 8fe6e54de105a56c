"""The provider contract: what one provider declares, once, for every other layer to read.

Pure: no I/O, no aiohttp. A provider package holds one `ProviderSpec` (in its `_spec` module)
and the registry (`imuzekit.providers.registry()`) lists them. From a spec:

- the `Client` builds the provider's namespace (`kit.imuze`), checks and shows its config,
  reads it from the environment (`Client.from_env`) and resumes its jobs (`kit.resume(token)`);
- the converter (`imuzekit.providers._common.converter`) takes its wire hooks;
- the batch manifest and the CLI can read its create calls, their fields and their limits
  (`ProviderSpec.creates`), where a reconciliation marker goes in a create
  (`CreateCall.mark`) and how to find a creation again after a crash
  (`ProviderSpec.find_created`, or `kit.find_created(provider, markers)`);
- `Emulator.client()` takes the config that points at the emulator (`emulator_config`).

A config class is a frozen attrs class with a `CREDENTIALS` class attribute (the groups of
fields of which one complete group configures the provider) and its secret fields declared
with `secret_field()`: that one mark masks them in `repr`, in `imuzekit config show` and
anywhere else that asks `secret_fields(cls)`.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from typing import Any, ClassVar, Literal

import attrs
import cattrs

from imuzekit import errors
from imuzekit._http import Request, Response, StreamSender
from imuzekit._retry import RetryPolicy
from imuzekit.auth import LoginResult, TokenLogin
from imuzekit.jobs import Job, PollPolicy
from imuzekit.jobs._poller import Poller
from imuzekit.providers._fields import check_http_url, check_text, text_field, url_field

__all__ = [
    "SECRET",
    "Connected",
    "Connection",
    "CreateCall",
    "ErrorDialect",
    "FieldKind",
    "FieldSpec",
    "Found",
    "LoginConfig",
    "ProviderConfig",
    "ProviderSpec",
    "check_http_url",
    "check_text",
    "config_from_env",
    "driver_kind",
    "env_hint",
    "env_var",
    "env_variables",
    "has_credentials",
    "markers_in",
    "secret_field",
    "secret_fields",
    "spelled_marker",
    "text_field",
    "token_login",
    "url_field",
    "with_marker",
]

SECRET = "imuzekit_secret"
"""The attrs metadata key that marks a config field as a secret (see `secret_field`)."""

_MARKER = re.compile(r"ik:[0-9a-f]{12}")
# A title that allows only letters and spaces (iMuze's) carries the marker's 12 hex digits
# spelled with the letters a-p ("ik:09af..." -> "ik ajkp..."), as a word of its own.
_SPELLED_MARKER = re.compile(r"(?<![A-Za-z])ik ([a-p]{12})(?![A-Za-z])")
_HEX_TO_LETTERS = str.maketrans("0123456789abcdef", "abcdefghijklmnop")
_LETTERS_TO_HEX = str.maketrans("abcdefghijklmnop", "0123456789abcdef")
_NAME = re.compile(r"[a-z][a-z0-9_]*")


# -- configs ---------------------------------------------------------------------------------


def _mask(value: object) -> str:
    return "None" if value is None else "'***'"


def secret_field(default: str | None = None) -> Any:
    """An attrs field for a secret (a token, a password): a string or None, masked in `repr`
    as `'***'` and listed by `secret_fields`, the one mark every display of a config reads."""
    return attrs.field(default=default, repr=_mask, metadata={SECRET: True}, validator=check_text)


def secret_fields(config_class: type[Any]) -> frozenset[str]:
    """The names of `config_class`'s fields declared with `secret_field`."""
    return frozenset(f.name for f in attrs.fields(config_class) if f.metadata.get(SECRET))


def has_credentials(config: object) -> bool:
    """Whether `config` sets every field of at least one of its class's `CREDENTIALS` groups
    (always, for a class without `CREDENTIALS`)."""
    groups: tuple[tuple[str, ...], ...] | None = getattr(type(config), "CREDENTIALS", None)
    if groups is None:
        return True  # a config class that names no credentials is complete once given
    return any(all(getattr(config, name) for name in group) for group in groups)


@attrs.frozen
class ProviderConfig:
    """A base for config classes: `has_credentials` from the class's `CREDENTIALS` groups
    (a subclass that sets none is configured whenever it is given)."""

    CREDENTIALS: ClassVar[tuple[tuple[str, ...], ...]]

    @property
    def has_credentials(self) -> bool:
        """Whether every field of one of the `CREDENTIALS` groups is set."""
        return has_credentials(self)


@attrs.frozen
class LoginConfig(ProviderConfig):
    """A base for providers that take a `token`, or an `email` and `password` to log in with
    (on first use, and again once on a 401), or both."""

    CREDENTIALS: ClassVar[tuple[tuple[str, ...], ...]] = (("token",), ("email", "password"))

    token: str | None = secret_field()
    email: str | None = text_field()
    password: str | None = secret_field()


def env_var(provider: str, field: str) -> str:
    """The environment variable of one config field: `IMUZEKIT_<PROVIDER>_<FIELD>`."""
    return f"IMUZEKIT_{provider.upper()}_{field.upper()}"


def env_hint(provider: str, config_class: type[Any]) -> str:
    """What to set to configure `provider`, from its config class's `CREDENTIALS` groups and
    `SUGGESTED` fields: ``IMUZEKIT_IMUZE_TOKEN, or IMUZEKIT_IMUZE_EMAIL and ..._PASSWORD``."""
    groups: tuple[tuple[str, ...], ...] = getattr(config_class, "CREDENTIALS", ())
    hint = ", or ".join(" and ".join(env_var(provider, f) for f in group) for group in groups)
    suggested: tuple[str, ...] = getattr(config_class, "SUGGESTED", ())
    if suggested:
        hint += f" (and {', '.join(env_var(provider, f) for f in suggested)})"
    return hint


def _field_types(config_class: type[Any]) -> dict[str, Any]:
    return typing.get_type_hints(config_class)


def _env_value(kind: Any, raw: str, variable: str) -> Any:
    """``raw`` read as a field of type ``kind``; `_SKIP` for a type the environment cannot set."""
    if kind == tuple[str, ...]:
        return tuple(part.strip() for part in raw.split(",") if part.strip())
    if kind == tuple[int, ...]:
        try:
            return tuple(int(part) for part in raw.split(",") if part.strip())
        except ValueError as exc:
            raise errors.ConfigurationError(f"{variable} must be comma-separated integers") from exc
    if kind is int:
        try:
            return int(raw)
        except ValueError as exc:
            raise errors.ConfigurationError(f"{variable} must be an integer") from exc
    if kind in (str, str | None):
        return raw
    return _SKIP


_SKIP = object()


def env_variables(provider: str, config_class: type[Any]) -> list[str]:
    """The variables that set `config_class`'s fields (a field of a type the environment
    cannot set, such as `poll`, has none)."""
    kinds = _field_types(config_class)
    settable = (tuple[str, ...], tuple[int, ...], int, str, str | None)
    return [
        env_var(provider, field.name)
        for field in attrs.fields(config_class)
        if kinds[field.name] in settable
    ]


def config_from_env(provider: str, config_class: type[Any], env: Mapping[str, str]) -> Any:
    """A `config_class` from `IMUZEKIT_<PROVIDER>_<FIELD>` variables in `env`, or None when
    they set no complete group of credentials.

    Strings are taken as they are, integers parsed, tuples split on commas; a field of any
    other type (a `PollPolicy`) has no variable.
    """
    kinds = _field_types(config_class)
    values: dict[str, Any] = {}
    for field in attrs.fields(config_class):
        variable = env_var(provider, field.name)
        raw = env.get(variable)
        if raw is None or raw == "":
            continue
        value = _env_value(kinds[field.name], raw, variable)
        if value is not _SKIP:
            values[field.name] = value
    if not values:
        return None
    config = config_class(**values)
    return config if has_credentials(config) else None


# -- create calls ----------------------------------------------------------------------------

FieldKind = Literal["string", "integer", "boolean", "tags", "structure"]
"""A create field's JSON kind: `tags` is a list of strings, `structure` a joplin structure."""


def _as_given(value: Any) -> Any:
    return value


@attrs.frozen
class FieldSpec:
    """One keyword argument of a create call, with the limits the SDK checks it against.

    A limit is None where the provider's wire module checks no named limit (the create call
    still checks what it checks before sending). Every limit is read from the provider's wire
    module (`_api`), where it is a named constant: no layer restates one as a literal.
    """

    name: str
    kind: FieldKind
    description: str
    required: bool = False
    min_length: int | None = None
    max_length: int | None = None
    pattern: str | None = None
    """A regular expression the whole string must match (`re.fullmatch`; written as the
    provider's schema writes it, anchors included), when there is one."""
    minimum: int | None = None
    maximum: int | None = None
    rule: str | None = None
    """`pattern` in words, for an error about a character it refuses ("iMuze does not allow
    (...)")."""
    at_most: str | None = None
    """The name of another field of the call whose value this one must not exceed
    (joplin's `fadeout_ms` is at most its `duration_ms`)."""
    choices: str | None = None
    """The name of a namespace attribute listing the values this field may take, when that
    list is not empty (a Mureka `account` is one of `kit.mureka.accounts`)."""
    parse: Callable[[Any], Any] = _as_given
    """Turns the field's JSON value (from a batch manifest) into what the call takes (a list
    of joplin movement objects into a `Structure`); a value of the right type passes as it is."""


def spelled_marker(marker: str) -> str:
    """A marker as a letters-only title carries it: ``"ik ajkp..."`` (hex digits as a-p)."""
    return "ik " + marker.removeprefix("ik:").translate(_HEX_TO_LETTERS)


def markers_in(*texts: str | None) -> set[str]:
    """Every reconciliation marker found in `texts`, as ``ik:<12 hex>``.

    Both spellings are read: ``ik:<12 hex>`` (tags, Mureka titles, and iMuze titles written
    before iMuze's title rule was followed) and a letters-only title's ``ik <12 letters a-p>``
    (see `spelled_marker`).
    """
    found: set[str] = set()
    for text in texts:
        if text:
            found.update(_MARKER.findall(text))
            found.update(
                "ik:" + m.translate(_LETTERS_TO_HEX) for m in _SPELLED_MARKER.findall(text)
            )
    return found


def with_marker(title: str | None, marker: str, limit: int | None, *, letters: bool = False) -> str:
    """``"<title> [<marker>]"`` within `limit` characters (the title is shortened to fit);
    with `letters`, ``"<title> ik <12 letters>"`` (`spelled_marker`) for a title that allows
    only letters and spaces."""
    suffix = spelled_marker(marker) if letters else f"[{marker}]"
    if not title:
        return suffix
    if limit is None:
        return f"{title} {suffix}"
    room = limit - len(suffix) - 1
    kept = title[:room].rstrip() if room > 0 else ""
    return f"{kept} {suffix}" if kept else suffix


def _one_output(result: Any) -> list[tuple[str, Any]]:
    return [(str(result.id), result)]


@attrs.frozen
class CreateCall:
    """One paid create call of a provider's namespace, described as data.

    `kind` names it in a batch manifest (`create`, `create_advanced`, ...); `method` is its
    path on the namespace (`"songs.create"`); `fields` its keyword arguments with their limits,
    and `defaults` the values of those the call needs but a batch line may leave out.
    A reconciliation marker goes in the title field `marker_title` (appended as
    ``" [ik:...]"`` within the field's `max_length`, or as ``" ik <12 letters>"`` with
    `marker_letters`, for a title that allows only letters and spaces) and/or the tags field
    `marker_tags`; a call with neither cannot be found again after a crash.

    What a finished create makes: `outputs(result)` lists its files as (remote id, source to
    download) pairs, `files` of them (a Mureka generation makes two songs), and
    `output_again(namespace, remote_id)` reads one again for a fresh link (a creation found
    complete after a crash, with no job to resume). `outputs` None: it makes no file to
    download, and a batch manifest does not take it.
    """

    kind: str
    method: str
    description: str
    fields: tuple[FieldSpec, ...]
    marker_title: str | None = None
    marker_tags: str | None = None
    marker_letters: bool = False
    defaults: Mapping[str, Any] = attrs.field(factory=dict)
    outputs: Callable[[Any], Sequence[tuple[str, Any]]] | None = _one_output
    files: int = 1
    output_again: Callable[[Any, str], Awaitable[Any]] | None = None

    @property
    def searchable(self) -> bool:
        """Whether a create made by this call carries a marker it can be found by."""
        return self.marker_title is not None or self.marker_tags is not None

    def field(self, name: str) -> FieldSpec:
        """The field called `name`; KeyError when the call has none."""
        for spec in self.fields:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def mark(self, params: Mapping[str, Any], marker: str) -> dict[str, Any]:
        """`params` with `marker` placed where this call carries it (unchanged otherwise)."""
        marked = dict(params)
        if self.marker_title is not None:
            limit = self.field(self.marker_title).max_length
            marked[self.marker_title] = with_marker(
                marked.get(self.marker_title), marker, limit, letters=self.marker_letters
            )
        if self.marker_tags is not None:
            marked[self.marker_tags] = [*(marked.get(self.marker_tags) or ()), marker]
        return marked

    def arguments(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The call's keyword arguments from `params` as a batch manifest holds them (JSON
        values): the `defaults` of those left out, each value through its field's `parse`."""
        parsers = {spec.name: spec.parse for spec in self.fields}
        arguments = {**self.defaults, **params}
        return {
            name: parsers.get(name, _as_given)(value) if value is not None else None
            for name, value in arguments.items()
        }

    async def call(self, namespace: Any, **params: Any) -> Job[Any]:
        """Make the create through `namespace` (`kit.imuze`, ...) and return its job
        (`params` go through `arguments`)."""
        target = namespace
        for part in self.method.split("."):
            target = getattr(target, part)
        job: Job[Any] = await target(**self.arguments(params))
        return job


# -- errors, connection, search --------------------------------------------------------------


@attrs.frozen
class ErrorDialect:
    """How a provider's error answers read.

    `message_keys`: the JSON keys, in order, that hold the message of an error body;
    `statuses`: statuses the provider gives a meaning of its own (useapi.net's 596, an
    expired account session), with that meaning in words.
    """

    message_keys: tuple[str, ...] = ("error", "message", "detail", "errorDetails")
    statuses: Mapping[int, str] = attrs.field(factory=dict)


@attrs.frozen
class Connection:
    """What the Client hands a provider's `connect`: its send pipeline, the retry policy, the
    provider's poller and the poll policy its jobs use (already resolved)."""

    sender: StreamSender
    retry: RetryPolicy
    poller: Poller
    poll_policy: PollPolicy
    webhooks: Any = None
    """The Client's push receiver (`imuzekit.webhooks.Webhooks`) when it has one: a provider
    whose creations take a callback URL (Mureka) sends ``replyUrl``/``replyRef`` and
    registers its jobs with it."""
    auth: Any = None
    """The provider's authentication when the Client already has one (a view made by
    `Client.with_options` shares its client's logins): `connect` uses it instead of making
    its own, so a token or an OAuth access token is never held twice."""


@attrs.frozen
class Connected:
    """What `connect` returns: the namespace (`kit.<name>`) and the authentication the
    Client installs on its transport for the provider's requests."""

    namespace: Any
    auth: Any
    """What the transport's `set_auth(provider, auth)` takes (a `TokenLogin`, ...)."""


def token_login(
    provider: str,
    config: LoginConfig,
    *,
    build_login: Callable[[str, str, str], Request],
    parse_login: Callable[[Response], LoginResult],
    scheme: str | None = None,
    expires_at: float | None = None,
) -> TokenLogin:
    """Token authentication from `config`'s token, logging in with its `email` and
    `password` when both are given (on first use, and again once on a 401) through
    `build_login(base_url, email, password)` and `parse_login`."""
    root = str(getattr(config, "base_url", "")).rstrip("/")
    login: Callable[[], Request] | None = None
    if config.email and config.password:
        account, secret = config.email, config.password

        def login() -> Request:
            return build_login(root, account, secret)

    return TokenLogin(
        provider=provider,
        token=config.token,
        login=login,
        parse=parse_login if login else None,
        scheme=scheme,
        expires_at=expires_at,
    )


@attrs.frozen
class Found:
    """A creation found again by its marker (see `ProviderSpec.find_created`).

    `job` is set when the creation is (or may be) still running, or its state is best read
    again: wait on it, or keep `job.token()`. `result` is set instead when the creation is
    complete and has no job left to poll (a Mureka feed found in the account's list). With
    `settled` False the creation was seen half-made and its job was not found: look again
    later rather than create it again.
    """

    marker: str
    remote_id: str | None = None
    job: Job[Any] | None = None
    result: Any = None
    settled: bool = True


Connect = Callable[[Any, Connection], Connected]
"""`connect(config, connection) -> Connected`: build the namespace and its auth."""
Resume = Callable[[Any, str, str, Mapping[str, Any]], Job[Any]]
"""`resume(namespace, kind, job_id, data) -> Job`: rebuild a job from a token's fields."""
FindCreated = Callable[[Any, Collection[str]], Awaitable[dict[str, Found]]]
"""`find_created(namespace, markers) -> {marker: Found}`: the markers found, the others left
out (not found: safe to create again once no create could still land)."""
JobFor = Callable[[Any, str], Job[Any]]
"""`job_for(namespace, remote_id) -> Job`: the job of a creation known by the id the provider
gave it (ValidationError for an id it cannot be); builds a handle and sends nothing."""


def driver_kind(driver_class: type[Any]) -> str:
    """The job kind an attrs job driver class records in tokens (its `kind` default)."""
    return str(attrs.fields(driver_class).kind.default)


def _namespace_resume(namespace: Any, kind: str, job_id: str, data: Mapping[str, Any]) -> Any:
    return namespace.resume(kind, job_id, data)


def _check_name(_: object, __: object, name: str) -> None:
    if not _NAME.fullmatch(name):
        raise ValueError(f"a provider name is lower-case letters, digits and _, got {name!r}")


@attrs.frozen
class ProviderSpec:
    """One provider, declared once.

    - `name`: the Client keyword and attribute (`kit.<name>`), the environment prefix
      (`IMUZEKIT_<NAME>_...`) and the provider recorded in requests and job tokens;
    - `title`: the provider for people (`"iMuze API v4"`);
    - `config`: the config class (see the module docstring);
    - `connect`: builds the namespace and its auth from a config and a `Connection`;
    - `job_kinds`: the job kinds its tokens carry, and `resume` to rebuild one (by default the
      namespace's `resume(kind, job_id, data)`);
    - `creates`: its paid create calls, with fields and limits;
    - `error_dialect`: how its error answers read;
    - `converter_hooks`: functions that register its wire rules on the package converter;
    - `default_poll`: its jobs' poll policy when neither its config nor the Client names one;
    - `find_created`: how to find creations again by marker after a crash (None: it cannot);
    - `job_for`: the job of a creation known by its remote id (`imuzekit batch resolve
      --remote-id`; None: the provider has no such handle);
    - `emulator_config`: the config that points at an `imuzekit.emulator.Emulator` (None: the
      emulator does not serve it).
    """

    name: str = attrs.field(validator=_check_name)
    title: str
    config: type[Any]
    connect: Connect
    job_kinds: tuple[str, ...] = ()
    resume: Resume = _namespace_resume
    creates: tuple[CreateCall, ...] = ()
    error_dialect: ErrorDialect = attrs.field(factory=ErrorDialect)
    converter_hooks: tuple[Callable[[cattrs.Converter], None], ...] = ()
    default_poll: PollPolicy | None = None
    find_created: FindCreated | None = None
    emulator_config: Callable[[Any], Any] | None = None
    job_for: JobFor | None = None

    @property
    def env_hint(self) -> str:
        """What to set in the environment to configure this provider."""
        return env_hint(self.name, self.config)

    @property
    def secret_fields(self) -> frozenset[str]:
        """The config fields that are secrets (masked wherever a config is shown)."""
        return secret_fields(self.config)

    def config_from_env(self, env: Mapping[str, str]) -> Any:
        """This provider's config from `IMUZEKIT_<NAME>_<FIELD>` variables, or None."""
        return config_from_env(self.name, self.config, env)

    def create(self, kind: str) -> CreateCall:
        """The create call named `kind`; ValidationError naming the known ones otherwise."""
        for call in self.creates:
            if call.kind == kind:
                return call
        known = ", ".join(call.kind for call in self.creates) or "none"
        raise errors.ValidationError("kind", f"{self.name} has no create {kind!r}; known: {known}")

    def not_configured(self) -> errors.ConfigurationError:
        """The error for using this provider without a config: says what to pass or set."""
        return errors.ConfigurationError(
            f"{self.title} is not configured: pass "
            f"Client({self.name}={self.config.__name__}(...)) or set {self.env_hint}"
        )
