"""Test doubles for code that uses imuzekit: `MockTransport` answers requests from a function.

```python
from imuzekit import Client, ImuzeConfig
from imuzekit.http import Request, Response
from imuzekit.testing import MockTransport, respond

def handler(request: Request) -> Response:
    if request.url.endswith("/arrangements/1"):
        return respond(request, json={"response": {"id": 1, "name": "Piano"}})
    return respond(request, 404, json={"error": "not found"})

async with Client(imuze=ImuzeConfig(token="t"), transport=MockTransport(handler)) as kit:
    await kit.imuze.arrangements.get(1)
```

Everything above the wire still runs: the rate-limit gate, logins and re-logins, retries,
error mapping, jobs and downloads (files are written to disk as usual). No socket is opened.
For a whole stateful service, use the emulator (`imuzekit.emulator`) instead.
"""

from imuzekit._transports.mock import Handler, MockTransport, respond

__all__ = ["Handler", "MockTransport", "respond"]
