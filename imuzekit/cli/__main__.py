"""``python -m imuzekit.cli``: the ``imuzekit`` command line."""

from imuzekit.cli import main

main()
