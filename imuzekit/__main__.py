"""``python -m imuzekit``: the ``imuzekit`` command line (needs the ``cli`` extra)."""

from imuzekit.cli import main

if __name__ == "__main__":
    main()
