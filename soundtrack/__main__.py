"""``python -m soundtrack``: the ``soundtrack`` command, for a Python without the console script on its PATH."""

from soundtrack.cli import run

if __name__ == "__main__":
    run()
