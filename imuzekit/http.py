"""The HTTP values imuzekit's layers exchange: `Request` in, `Response` out.

Providers build `Request` values and parse `Response` values, and never touch the network; a
transport turns one into the other. `imuzekit.testing.MockTransport` answers with a function of
`Request`, so tests can swap the network out (as httpx's `MockTransport` does).
"""

from imuzekit._http import Request, Response, Timeouts, WireTransport

__all__ = ["Request", "Response", "Timeouts", "WireTransport"]
