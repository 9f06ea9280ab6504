"""One module per subcommand, found by :func:`soundtrack.cli.build_parser`.

Each module defines ``NAME`` (the subcommand), ``HELP`` (one line),
``add_arguments(parser)`` and ``run(args) -> int``. Modules import the library only
inside ``run``, so ``soundtrack --help`` stays fast.
"""
