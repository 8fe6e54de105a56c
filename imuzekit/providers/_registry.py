"""The provider registry: the built-in four, and any provider plugged in with one line.

```python
from imuzekit.providers import registry

registry().register(MY_SPEC)          # a `ProviderSpec`; then Client(myname=MyConfig(...))
```

The registry is built on first use (nothing at import time). The built-ins are named by their
spec modules (`imuzekit.providers.<name>._spec`, each with a `spec()` function) and imported
when the registry is first read, like entry points: so this module, and the converter that
reads the providers' wire hooks from it, import no provider package, and the provider packages
stay independent of each other and of everything above them.
"""

from __future__ import annotations

import functools
import importlib
from collections.abc import Callable, Iterator

import cattrs

from imuzekit import errors
from imuzekit.providers._spec import ProviderSpec

__all__ = ["BUILTIN_PROVIDERS", "ProviderRegistry", "registry"]

BUILTIN_PROVIDERS = ("imuze", "joplin", "mureka", "musescore")
"""The providers that ship with imuzekit, in the order they are listed everywhere."""


class ProviderRegistry:
    """The providers a Client, the converter, the CLI and the emulator's client know.

    Iterating yields the specs: the built-ins first, then the registered ones in order.
    """

    def __init__(self, builtins: tuple[str, ...] = BUILTIN_PROVIDERS) -> None:
        self._builtin_names = builtins
        self._specs: dict[str, ProviderSpec] | None = None
        self._hooks: tuple[Callable[[cattrs.Converter], None], ...] | None = None

    def _loaded(self) -> dict[str, ProviderSpec]:
        if self._specs is None:
            specs: dict[str, ProviderSpec] = {}
            for name in self._builtin_names:
                module = importlib.import_module(f"imuzekit.providers.{name}._spec")
                spec: ProviderSpec = module.spec()
                specs[spec.name] = spec
            self._specs = specs
        return self._specs

    def register(self, spec: ProviderSpec, *, replace: bool = False) -> ProviderSpec:
        """Add `spec` (and return it). A name already taken is refused unless `replace`;
        a built-in provider is never replaced."""
        if not isinstance(spec, ProviderSpec):
            raise errors.ValidationError(
                "spec", f"must be a ProviderSpec, got {type(spec).__name__}"
            )
        specs = self._loaded()
        if spec.name in self._builtin_names:
            raise errors.ValidationError("spec", f"{spec.name!r} is a built-in provider")
        if spec.name in specs and not replace:
            raise errors.ValidationError("spec", f"a provider {spec.name!r} is registered")
        specs[spec.name] = spec
        self._hooks = None
        return spec

    def unregister(self, name: str) -> None:
        """Remove a registered provider (a built-in stays); nothing when it is not there."""
        if name in self._builtin_names:
            raise errors.ValidationError("name", f"{name!r} is a built-in provider")
        if self._loaded().pop(name, None) is not None:
            self._hooks = None

    def get(self, name: str) -> ProviderSpec:
        """The spec called `name`; KeyError when there is none."""
        return self._loaded()[name]

    def __contains__(self, name: object) -> bool:
        return name in self._loaded()

    def __iter__(self) -> Iterator[ProviderSpec]:
        return iter(list(self._loaded().values()))

    def names(self) -> tuple[str, ...]:
        """Every provider's name, built-ins first."""
        return tuple(self._loaded())

    def converter_hooks(self) -> tuple[Callable[[cattrs.Converter], None], ...]:
        """Every provider's converter hooks, in registry order (remembered until a change)."""
        hooks = self._hooks
        if hooks is None:
            hooks = self._hooks = tuple(
                hook for spec in self._loaded().values() for hook in spec.converter_hooks
            )
        return hooks


@functools.cache
def registry() -> ProviderRegistry:
    """The process's provider registry (built on first use)."""
    return ProviderRegistry()
