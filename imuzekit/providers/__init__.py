"""The providers, as pure request builders and response parsers plus a thin namespace each.

Nothing in this package performs I/O or imports aiohttp (an import-linter contract checks it):
namespaces send the Requests they build through the Client's transport.
"""

__all__: list[str] = []
