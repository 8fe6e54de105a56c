"""The errors imuzekit raises.

Every error derives from `ImuzekitError`, so one ``except`` catches them all. The tree
splits what the caller did wrong (configuration, validation: nothing was sent) from what went
wrong on the wire or at the provider:

    ImuzekitError
    ├── ConfigurationError          a provider or credential is missing
    ├── ClientClosedError           the Client was used after it was closed
    ├── LoopMismatchError           the Client was used from a second event loop
    ├── ValidationError             a request was refused before it was sent (names the field)
    ├── TransportError              connection failed / reset / TLS
    │   └── RequestTimeout
    ├── APIError                    .status .provider .body .request_id .method .url
    │   ├── BadRequestError (400, 422)
    │   ├── AuthenticationError (401)
    │   ├── PaymentRequiredError (402, 412)
    │   ├── PermissionDeniedError (403)
    │   ├── NotFoundError (404, 410)
    │   ├── NotReadyError (202)     the resource exists but is still being rendered
    │   ├── RateLimitError (429; .retry_after)
    │   └── ServerError (5xx, 596)
    ├── ParseError                  the provider answered with a shape we cannot read (.path, .body)
    ├── JobFailed (.job)            the provider reported the generation as failed
    │   └── JobTimeout (.job)       the job's deadline passed, or it stalled
    ├── JobNotReady (.job .state)   a job's result was asked for before the job was done
    └── DownloadError               a download could not be completed
        └── IntegrityError          size/hash/format check failed; nothing is left at dest

Messages never contain credentials: request URLs are reported with sensitive query values
redacted, and bodies are kept as the provider sent them, except the answer to a failed login,
which is withheld (``body`` is None) because it may echo the credentials. Causes chained from
the HTTP library keep neither the request's headers nor its unredacted URL.

This module imports nothing from the rest of the package (an import-linter contract checks it).
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "APIError",
    "AuthenticationError",
    "BadRequestError",
    "ClientClosedError",
    "ConfigurationError",
    "DownloadError",
    "ImuzekitError",
    "IntegrityError",
    "JobFailed",
    "JobNotReady",
    "JobTimeout",
    "LoopMismatchError",
    "NotFoundError",
    "NotReadyError",
    "ParseError",
    "PaymentRequiredError",
    "PermissionDeniedError",
    "RateLimitError",
    "RequestTimeout",
    "ServerError",
    "TransportError",
    "ValidationError",
    "error_for_status",
]


class ImuzekitError(Exception):
    """Base class of every error raised by imuzekit."""


class ConfigurationError(ImuzekitError):
    """A provider, credential or option is missing or inconsistent; the message says what to set."""


class ClientClosedError(ImuzekitError, RuntimeError):
    """The Client (or its connection pool) was used after ``close()``; create a new one."""


class LoopMismatchError(ImuzekitError, RuntimeError):
    """The Client was used from an event loop other than the one it first sent on.

    Its connection pool belongs to that loop; create one Client per event loop (per
    ``asyncio.run``). Raised at once, before anything is sent.
    """


class ValidationError(ImuzekitError, ValueError):
    """A request was refused before anything was sent.

    ``field`` names the offending argument as a path (``tags[2]``, ``structure[1].energy``).
    It also derives from `ValueError`, so generic argument checks keep working.
    """

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.reason = message


class TransportError(ImuzekitError):
    """The request could not be completed on the wire: connection refused, reset, TLS failure.

    ``sent`` is False only when the request provably never reached the server (the connection
    was never established); a create that failed that way is safe to send again.
    """

    def __init__(
        self,
        message: str,
        *,
        method: str = "",
        url: str = "",
        provider: str = "",
        sent: bool = True,
    ) -> None:
        super().__init__(message)
        self.method = method
        self.url = url
        self.provider = provider
        self.sent = sent


class RequestTimeout(TransportError):
    """A connect, read or total timeout of `imuzekit.Timeouts` expired."""


class APIError(ImuzekitError):
    """The provider answered with an error status.

    Attributes: ``status`` (HTTP status), ``provider`` (``"imuze"``, ...), ``body`` (the decoded
    JSON body when there is one, else the text), ``request_id`` (from the response headers when the
    provider sends one), ``method`` and ``url`` (of the request, sensitive query values redacted).

    `body` is typed `object`: it is whatever the provider sent (a dict, a list, a string, None),
    so narrow it before use (`if isinstance(exc.body, dict): ...`).
    """

    def __init__(
        self,
        message: str,
        *,
        status: int,
        provider: str = "",
        body: object = None,
        request_id: str | None = None,
        method: str = "",
        url: str = "",
    ) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.provider = provider
        self.body: object = body
        self.request_id = request_id
        self.method = method
        self.url = url

    def __str__(self) -> str:
        where = f" ({self.method} {self.url})" if self.method else ""
        return f"{self.provider or 'API'} answered {self.status}: {self.message}{where}"


class BadRequestError(APIError):
    """400 or 422: the provider refused the request's content."""


class AuthenticationError(APIError):
    """401: credentials are missing, wrong or expired (after one automatic re-login, if any)."""


class PaymentRequiredError(APIError):
    """402 or 412: the subscription or the credits do not cover the request."""


class PermissionDeniedError(APIError):
    """403: authenticated, but not allowed to do this."""


class NotFoundError(APIError):
    """404 or 410: the resource does not exist (any more)."""


class NotReadyError(APIError):
    """The resource exists but is not ready yet (a music still rendering); ``retry_after``
    is the provider's hint in seconds, when it gave one. Wait for the job instead."""

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class RateLimitError(APIError):
    """429: too many requests.

    ``retry_after`` is the wait in seconds the provider asked for, or None when it said nothing.
    Raised once retries are exhausted, or at once when the asked wait exceeds
    ``RetryPolicy.max_retry_after``. Also raised, without sending anything, while the provider
    is paused after an earlier 429 for longer than the call may wait (its ``max_retry_after``
    or its caller's deadline, such as a job wait's); ``retry_after`` is then the pause left.
    """

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ServerError(APIError):
    """5xx (and useapi.net's 596): the provider failed."""


class ParseError(ImuzekitError):
    """The provider answered with a shape imuzekit cannot read.

    ``path`` locates the problem in the body (``$.response[3].id``); ``body`` holds what was
    received (possibly truncated for very large bodies).
    """

    def __init__(self, message: str, *, path: str = "$", body: object = None) -> None:
        super().__init__(f"{message} at {path}")
        self.path = path
        self.body: object = body


class JobFailed(ImuzekitError):
    """A job ended in the FAILED state; ``job`` is the handle, ``reason`` the provider's text."""

    def __init__(self, message: str, *, job: Any = None, reason: str | None = None) -> None:
        super().__init__(message)
        self.job = job
        self.reason = reason


class JobTimeout(JobFailed):
    """A job did not finish before its deadline (or made no progress for ``stall_after``).

    The job itself may still finish remotely: ``job.token()`` lets you pick it up later.
    """


class JobNotReady(ImuzekitError):
    """A job's result was asked for (`job.result_or_raise()`) before the job was done.

    `job` is the handle and `state` its state's value when asked (`"queued"`,
    `"processing"` or `"unknown"`). Nothing failed: `await job.wait()` waits for the result.
    """

    def __init__(self, message: str, *, job: Any = None, state: str = "") -> None:
        super().__init__(message)
        self.job = job
        self.state = state


class DownloadError(ImuzekitError):
    """A download could not be completed; nothing is left at the destination."""


class IntegrityError(DownloadError):
    """A downloaded file failed its size, hash or format check; nothing is left at dest."""


_STATUS_ERRORS: dict[int, type[APIError]] = {
    400: BadRequestError,
    422: BadRequestError,
    401: AuthenticationError,
    402: PaymentRequiredError,
    412: PaymentRequiredError,
    403: PermissionDeniedError,
    404: NotFoundError,
    410: NotFoundError,
    429: RateLimitError,
    596: ServerError,
}


def error_for_status(status: int) -> type[APIError]:
    """Return the `APIError` subclass that stands for an HTTP ``status``."""
    if status in _STATUS_ERRORS:
        return _STATUS_ERRORS[status]
    return ServerError if 500 <= status <= 599 else APIError
