"""The providers, as pure request builders and response parsers plus a thin namespace each.

Nothing in this package performs I/O or imports aiohttp (an import-linter contract checks it):
namespaces send the Requests they build through the Client's transport.

Each provider declares itself once in a `ProviderSpec` (its `_spec` module), and the registry
lists them: the built-in four, and any provider plugged in with one line:

    from imuzekit.providers import registry

    registry().register(MY_SPEC)   # then Client(myname=MyConfig(...)), kit.namespace("myname")

See `imuzekit.providers._spec` for what a spec declares.
"""

from imuzekit.providers._registry import ProviderRegistry, registry
from imuzekit.providers._spec import ProviderSpec

__all__ = ["ProviderRegistry", "ProviderSpec", "registry"]
