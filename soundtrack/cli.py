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
import gc
import logging
import pkgutil
import sys
import traceback
from collections.abc import Sequence
from importlib import import_module
from types import ModuleType

import soundtrack.commands as commands_pkg
from soundtrack.jsonout import json_stdout

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
        p = sub.add_parser(mod.NAME, help=mod.HELP, description=mod.HELP, epilog=getattr(mod, "EPILOG", None))
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


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


def _hint_dashed_files(argv: list[str]) -> None:
    """After a usage error: name the files whose names start with a dash, which were read as options.

    ``soundtrack analyze -take1.mp4`` said only "the following arguments are required: clip"."""
    from pathlib import Path

    words = argv[: argv.index("--")] if "--" in argv else argv
    for word in words:
        if word.startswith("-") and len(word) > 1 and Path(word).is_file():
            print(f"soundtrack: {word} was read as an option; for the file, write ./{word} or put -- before it",
                  file=sys.stderr)


def main(argv: Sequence[str] | None = None) -> int:
    from analysis.errors import SoundtrackError

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as stop:
        if stop.code == 2:
            _hint_dashed_files(argv)
        raise
    logging.basicConfig(
        level=logging.INFO if args.verbose else logging.WARNING, format="%(levelname)s %(name)s: %(message)s"
    )
    try:
        with json_stdout(bool(getattr(args, "json", False))):
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


def run() -> None:
    """The ``soundtrack`` command: :func:`main`, then exit without the final garbage collection.

    A process that has loaded torch spends about 0.5 s at exit collecting objects that the
    exit frees anyway; frozen, they are skipped (0.16 s). Tests call :func:`main` instead.
    """
    code = main()
    gc.freeze()
    sys.exit(code)


if __name__ == "__main__":
    run()
