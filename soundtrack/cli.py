"""Entry point of the ``soundtrack`` console script.

Subcommands live one per module in :mod:`soundtrack.commands`. Every error prints one
sentence on stderr and exits with status 2, never a traceback (``-v`` adds the
traceback of an unexpected one): the product's own errors, a library that is not a
database or is locked (the CLI waits :data:`CLI_BUSY_TIMEOUT` seconds, not the
library's 30), files it cannot read or write. ``--json`` output goes to stdout alone,
so it can be piped.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import pkgutil
import sys
import traceback
from collections.abc import Sequence
from importlib import import_module
from types import ModuleType
from typing import Any, TextIO

import soundtrack.commands as commands_pkg

#: Seconds a command waits for a library database another process holds locked.
CLI_BUSY_TIMEOUT = 3.0


def _command_modules() -> list[ModuleType]:
    mods = [import_module(f"soundtrack.commands.{m.name}") for m in pkgutil.iter_modules(commands_pkg.__path__)]
    return sorted((m for m in mods if hasattr(m, "NAME")), key=lambda m: getattr(m, "ORDER", 100))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="soundtrack",
        description="Find or compose music whose emotional arc follows a video's.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="log progress details on stderr")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for mod in _command_modules():
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


#: Where :func:`print_json` writes while :func:`main` sends everything else on stdout to stderr.
_json_out: TextIO | None = None


def print_json(data: Any) -> None:
    """Write ``data`` as JSON on stdout (the only thing ``--json`` prints there)."""
    out = _json_out or sys.stdout
    json.dump(data, out, indent=2, default=str)
    out.write("\n")


@contextlib.contextmanager
def _stdout_for_json(enabled: bool) -> Any:
    """With ``--json``, anything but :func:`print_json` that writes to stdout goes to stderr.

    Libraries print on import (pyfluidsynth says where it found libfluidsynth when ``CI``
    is set, and pretty_midi imports it), and one such line would break a JSON pipe.
    """
    global _json_out
    if not enabled:
        yield
        return
    _json_out = sys.stdout
    try:
        with contextlib.redirect_stdout(sys.stderr):
            yield
    finally:
        _json_out = None


def describe(err: BaseException) -> str:
    """One sentence for an error the product did not raise on purpose."""
    if type(err).__module__.startswith("sqlalchemy"):
        cause = str(getattr(err, "orig", None) or err).splitlines()[0]
        if "locked" in cause or "busy" in cause:
            return (f"the library database is locked by another process (waited {CLI_BUSY_TIMEOUT:g} s); "
                    "try again when it has finished")
        if "not a database" in cause or "malformed" in cause or "encrypted" in cause:
            return f"`--library` does not name a database this program can read ({cause})"
        return f"the library database could not be used ({cause})"
    if isinstance(err, OSError):
        where = f"{err.filename}: " if err.filename else ""
        return f"{where}{err.strerror or err}"
    if isinstance(err, RecursionError):
        return "the input is nested too deeply to be read"
    detail = str(err).splitlines()[0] if str(err) else "no detail"
    return f"unexpected {type(err).__name__}: {detail} (run `soundtrack -v ...` for the traceback)"


def main(argv: Sequence[str] | None = None) -> int:
    from analysis.errors import SoundtrackError

    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        with _stdout_for_json(bool(getattr(args, "json", False))):
            return int(args._run(args) or 0)
    except SoundtrackError as err:
        print(f"soundtrack {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"soundtrack {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader (e.g. `| head`) went away: stop quietly, as Unix tools do.
        sys.stderr.close()
        return 141
    except Exception as err:
        if args.verbose:
            traceback.print_exc()
        print(f"soundtrack {args.command}: error: {describe(err)}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    # `python -m soundtrack.cli` runs this file as __main__; the commands import
    # `soundtrack.cli`, so run that module's main to share one `_json_out`.
    from soundtrack.cli import main as _main

    sys.exit(_main())
