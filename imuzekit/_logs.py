"""imuzekit's loggers, and the `IMUZEKIT_LOG` switch (as `OPENAI_LOG` is for openai-python).

One logger per layer, all below `imuzekit`:

- `imuzekit.http`: one DEBUG line per request (with `extra` fields `provider`, `method`, `url`
  (redacted), `status`, `elapsed`, `attempt`), one INFO line per retry, backoff, 429 pause and
  re-login, the WARNING about credentials over plain `http://`;
- `imuzekit.jobs`: the poller (stalls, failure budgets);
- `imuzekit.downloads` and `imuzekit.batch`: their own layers.

No line carries a credential: URLs are redacted and headers are never logged.
"""

from __future__ import annotations

import logging
import sys

from imuzekit import errors

__all__ = ["LEVELS", "log_to_stderr"]

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO}
"""The values `IMUZEKIT_LOG` takes."""


def log_to_stderr(level: str) -> None:
    """Send imuzekit's log lines of ``level`` (`"debug"` or `"info"`) and above to stderr.

    What `IMUZEKIT_LOG=debug|info` does when read by `Client.from_env()` or the CLI. Calling it
    again changes the level; it never adds a second handler.
    """
    try:
        number = LEVELS[level.strip().lower()]
    except (KeyError, AttributeError):
        raise errors.ConfigurationError(
            f"IMUZEKIT_LOG must be one of {', '.join(LEVELS)}, got {level!r}"
        ) from None
    logger = logging.getLogger("imuzekit")
    if not any(getattr(handler, "_imuzekit", False) for handler in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler._imuzekit = True  # type: ignore[attr-defined]
        logger.addHandler(handler)
    logger.setLevel(number)
