"""The transport seam: what the send pipeline hands one attempt to.

* `protocol`: `Adapter` (one attempt, buffered or streamed) and `OpenStream`;
* `wire`: `WireAdapter`, any `imuzekit.http.WireTransport` (a ``handle(request)``) as an adapter;
* `mock`: `MockTransport`, the test double (public as `imuzekit.testing.MockTransport`);
* `aiohttp_adapter`: `AiohttpAdapter`, the only code that does HTTP (pool, proxies, timeouts).

Everything above (gate, auth flows, retries, error mapping) is `imuzekit._pipeline`'s. Importing
this package loads no aiohttp; only `aiohttp_adapter` (and its `_wire`, `_watchdog`) does.
"""

from imuzekit._transports.protocol import Adapter, OpenStream

__all__ = ["Adapter", "OpenStream"]
