"""``python -m imuzekit.cli``: the ``imuzekit`` command line."""

from imuzekit.cli import main

if __name__ == "__main__":
    main()
