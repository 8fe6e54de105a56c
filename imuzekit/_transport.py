"""`Transport`: the Client's send pipeline over the aiohttp adapter (or another wire).

The loop every request goes through (gate -> auth flow -> attempt -> decide) is
`imuzekit._pipeline.Pipeline`'s; the mechanics of one attempt are
`imuzekit._transports.aiohttp_adapter.AiohttpAdapter`'s (or, with ``wire=``, a
`imuzekit._transports.wire.WireAdapter` around `imuzekit.testing.MockTransport` and the like).
This module joins the two behind the constructor the Client has always called.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from ssl import SSLContext
from typing import TYPE_CHECKING

from imuzekit._answers import plain_http_host
from imuzekit._http import Auth, Sender, Timeouts, WireTransport
from imuzekit._pipeline import Pipeline
from imuzekit._retry import RetryPolicy
from imuzekit._transports._wire import StreamResponse, default_user_agent
from imuzekit._transports.aiohttp_adapter import AiohttpAdapter, check_http_setup
from imuzekit._transports.wire import WireAdapter

if TYPE_CHECKING:
    import aiohttp

    from imuzekit._transports._watchdog import Deadlines

# Protocols re-exported for convenience.
__all__ = [
    "DEFAULT_MAX_BODY_BYTES",
    "Auth",
    "Sender",
    "StreamResponse",
    "Transport",
    "check_http_setup",
    "default_user_agent",
    "plain_http_host",
]

DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024

# The pipeline's and the adapter's logger (one per layer: this is the HTTP layer).
_log = logging.getLogger("imuzekit.http")


class Transport(Pipeline):
    """Sends requests for every provider of one Client over one connection pool.

    Created by the Client; the aiohttp session itself is opened on first use (it needs a
    running event loop). Once closed it stays closed. With ``wire=`` another last step
    replaces aiohttp (`imuzekit.testing.MockTransport`: no socket).
    """

    def __init__(
        self,
        *,
        retry: RetryPolicy | None = None,
        timeouts: Timeouts | None = None,
        max_connections: int = 100,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        verify_ssl: bool = True,
        user_agent: str | None = None,
        session: aiohttp.ClientSession | None = None,
        proxy: str | None = None,
        trust_env: bool = True,
        ssl: SSLContext | bool | None = None,
        trace_configs: Sequence[aiohttp.TraceConfig] = (),
        default_headers: Mapping[str, str] | None = None,
        wire: WireTransport | None = None,
    ) -> None:
        # `ssl` wins; `verify_ssl=False` is the older spelling of `ssl=False`.
        self.ssl: SSLContext | bool = verify_ssl if ssl is None else ssl
        self.user_agent = user_agent or default_user_agent()
        self.max_body_bytes = max_body_bytes
        self._aiohttp = AiohttpAdapter(
            max_connections=max_connections,
            max_body_bytes=max_body_bytes,
            ssl=self.ssl,
            user_agent=self.user_agent,
            user_agent_given=user_agent is not None,
            session=session,
            proxy=proxy,
            trust_env=trust_env,
            trace_configs=trace_configs,
            default_headers=default_headers or {},
        )
        adapter = (
            self._aiohttp if wire is None else WireAdapter(wire, max_body_bytes=max_body_bytes)
        )
        super().__init__(adapter, retry=retry, timeouts=timeouts)

    @property
    def verify_ssl(self) -> bool:
        """Whether certificates are checked (`ssl` is not False); kept for older callers."""
        return self.ssl is not False

    @property
    def max_connections(self) -> int:
        """The pool's connection limit."""
        return self._aiohttp.max_connections

    @property
    def _session(self) -> aiohttp.ClientSession | None:
        return self._aiohttp.session

    def _get_session(self) -> aiohttp.ClientSession:
        return self._aiohttp.get_session()

    @property
    def _deadlines(self) -> Deadlines:
        return self._aiohttp.deadlines

    async def close(self) -> None:
        """Close the connection pool (a caller's session stays open); safe to call again."""
        await self.adapter.close()
        if self.adapter is not self._aiohttp:
            await self._aiohttp.close()
