"""``soundtrack serve``: the web page (Gradio), on 127.0.0.1 unless told to listen on the LAN.

Without ``--host``/``--port``, Gradio's own variables ``GRADIO_SERVER_NAME`` and
``GRADIO_SERVER_PORT`` are honoured (hosts set them); a non-loopback address from either
source gets the ``--share-lan`` defaults: visitors cannot add tracks unless ``--allow-uploads``.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

NAME = "serve"
HELP = "serve the web page: upload a clip, see its arc, hear and rate matching tracks, compose"
ORDER = 70
#: The largest `--max-upload-mb` taken: a terabyte (Gradio holds the limit in bytes as a 64-bit number).
MOST_UPLOAD_MB = 1_000_000.0

def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--library", metavar="DB", default=None,
                        help="an existing library database (SQLite path or URL); default: the built-in demo library")
    parser.add_argument("--host", default=None,
                        help="address to listen on (default $GRADIO_SERVER_NAME, else 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="port (default $GRADIO_SERVER_PORT, else 7860)")
    parser.add_argument("--share-lan", action="store_true", help="listen on 0.0.0.0 so other machines can connect")
    parser.add_argument("--work-dir", type=Path, default=None,
                        help="folder for uploads, outputs and examples (default $SOUNDTRACK_HOME/app)")
    parser.add_argument("--max-upload-mb", type=float, default=200.0, help="largest upload accepted (default 200)")
    parser.add_argument("--max-duration", type=float, default=600.0,
                        help="longest clip accepted, seconds (default 600)")
    parser.add_argument("--cleanup-hours", type=float, default=6.0,
                        help="remove session uploads and outputs older than this (default 6)")
    parser.add_argument("-k", type=int, default=8, help="ranked tracks to show (default 8)")
    parser.add_argument("--index-root", metavar="DIR", type=Path, action="append", default=[],
                        help="a folder visitors may have indexed into the library (repeatable; default: none, "
                             "and the page offers no folder indexing)")
    parser.add_argument("--visitors-per-address", type=int, default=1, metavar="N",
                        help="visitors one client address stands for (behind a proxy or NAT): the per-address "
                             "limits on queued requests and new ids are N visitors' worth (default 1)")
    parser.add_argument("--allow-uploads", action="store_true",
                        help="let visitors add uploaded tracks to the shared library even with --share-lan "
                             "(on by default only when listening on 127.0.0.1)")


def check_port_free(host: str, port: int) -> None:
    """A :class:`ParameterError` when ``host:port`` cannot be listened on: another server has the port, or
    ``host`` is no address of this machine (a name that does not resolve, another machine's address),
    which no other port would mend."""
    import errno
    import socket

    from analysis.errors import ParameterError

    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server binds: a closed one's port is free
        try:
            probe.bind((host, port))
        except OSError as err:
            if isinstance(err, socket.gaierror) or err.errno == errno.EADDRNOTAVAIL:
                raise ParameterError(f"host {host!r} is not an address of this machine ({err.strerror}): give "
                                     "--host one of its own, such as 127.0.0.1, or --share-lan") from None
            raise ParameterError(f"port {port} on {host} cannot be listened on ({err.strerror}): choose another "
                                 "with --port") from None


def run(args: argparse.Namespace) -> int:
    from analysis.errors import ParameterError
    from app import serve
    from soundtrack.security import LOOPBACK, address
    from soundtrack.session import AppConfig

    host, port = address(args.host, args.port, share_lan=args.share_lan)
    for flag, value in (("--max-upload-mb", args.max_upload_mb), ("--max-duration", args.max_duration),
                        ("--cleanup-hours", args.cleanup_hours)):
        if not value > 0:
            raise ParameterError(f"`{flag}` must be positive (received {value:g})")
    # Gradio takes both as whole numbers (bytes, seconds): "inf" stopped the server after its models had loaded
    if not args.max_upload_mb <= MOST_UPLOAD_MB:
        raise ParameterError(f"`--max-upload-mb` must be at most {MOST_UPLOAD_MB:g} (received {args.max_upload_mb:g})")
    if not math.isfinite(args.cleanup_hours):
        raise ParameterError(f"`--cleanup-hours` must be a number of hours (received {args.cleanup_hours:g})")
    if not 1 <= args.k <= 100:
        raise ParameterError(f"`-k` must be within 1 and 100 (received {args.k})")
    if args.visitors_per_address < 1:
        raise ParameterError(f"`--visitors-per-address` must be at least 1 (received {args.visitors_per_address})")
    if args.library is not None:
        from soundtrack.argtypes import check_library

        check_library(args.library)  # a mistyped path would be served as a new, empty library
    check_port_free(host, port)  # said now, not after a minute of loading models
    for root in args.index_root:
        if not root.is_dir():
            raise ParameterError(f"`--index-root` must be an existing folder (received {str(root)!r})")
    if args.work_dir is not None:  # a file or an unwritable place: said now, not as a bare OSError
        try:
            (args.work_dir / "sessions").mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ParameterError(f"`--work-dir` must be a folder this server can write (received "
                                 f"{str(args.work_dir)!r}: {err.strerror})") from None
    config = AppConfig(
        library=args.library,
        work_dir=args.work_dir,
        max_upload_mb=args.max_upload_mb,
        max_duration_s=args.max_duration,
        cleanup_age_s=args.cleanup_hours * 3600.0,
        k=args.k,
        index_roots=tuple(root.resolve() for root in args.index_root),
        allow_uploads=args.allow_uploads or host in LOOPBACK,
        visitors_per_address=args.visitors_per_address,
    )
    serve(config, host=host, port=port)
    return 0
