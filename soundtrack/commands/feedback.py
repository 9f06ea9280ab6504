"""``soundtrack feedback``: the learned ranking weights, and one user's data (export, delete)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

NAME = "feedback"
HELP = "show the weights learned from listener feedback; export or delete one user's data"
ORDER = 80


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    stats = sub.add_parser("stats", help="learned blend and DTW-transition weights per content type, with evidence")
    export = sub.add_parser("export", help="print (or write) everything stored about one user as JSON")
    delete = sub.add_parser("delete", help="delete everything stored about one user")
    for p in (stats, export, delete):
        p.add_argument(
            "--library", metavar="DB", default=None,
            help="library database (SQLite path or URL) holding the feedback; default: the demo library's",
        )
    stats.add_argument("--user", metavar="ID", default=None, help="also show this user's personal weights")
    stats.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    export.add_argument("--user", metavar="ID", required=True, help="the anonymous user id (shown in the app)")
    export.add_argument("-o", "--output", metavar="FILE", type=Path, default=None,
                        help="write the JSON here (an existing file is refused unless --force)")
    export.add_argument("--force", action="store_true", help="overwrite an existing --output file")
    delete.add_argument("--user", metavar="ID", required=True, help="the anonymous user id (shown in the app)")
    delete.add_argument("--json", action="store_true", help="print the deleted row counts as JSON on stdout")


def default_database() -> str:
    """The demo library's database, where the app logs feedback when started without ``--library``."""
    from matching.library.demo import demo_home

    return str(demo_home() / "library.db")


def run(args: argparse.Namespace) -> int:
    from analysis.errors import ParameterError
    from matching.feedback.learner import WeightLearner, delete_user
    from matching.feedback.log import FeedbackLog, check_user
    from soundtrack.jsonout import print_json

    if args.action == "export" and args.output is not None and args.output.is_dir():
        raise ParameterError(f"`--output` names a folder (received {str(args.output)!r}): name the JSON file to write")
    if args.action == "export" and args.output is not None and args.output.exists() and not args.force:
        raise ParameterError(f"`--output` names a file that exists (received {str(args.output)!r}): "
                             "pass --force to overwrite it, or name another")
    db = args.library or default_database()
    if "://" not in db and not Path(db).expanduser().is_file():
        if args.library is None:  # the user named nothing: say which file was looked for, and why it is not there
            raise ParameterError(f"no feedback yet: the demo library's database {db} does not exist (start "
                                 "`soundtrack serve` first, or name a library with --library)")
        raise ParameterError(f"`--library` names no database file (received {db!r}); serve or index first")
    from matching.db import make_engine
    from soundtrack.cli import CLI_BUSY_TIMEOUT

    log = FeedbackLog(make_engine(db, busy_timeout=CLI_BUSY_TIMEOUT))
    if args.action == "export":
        text = log.export_user_json(args.user)
        if not log.holds_user(args.user):  # an empty export is a true answer, but a mistyped id gives one too
            print(f"note: nothing is stored about user {args.user} (check the id)", file=sys.stderr)
        if args.output:
            args.output.write_text(text + "\n")
            print(f"wrote {args.output}")
        else:
            print(text)
        return 0
    if args.action == "delete":
        removed = delete_user(log, args.user)  # also drops this database's cached learner
        if args.json:
            print_json({"user_id": args.user, "deleted": removed})
        elif not any(removed.values()):
            print(f"nothing is stored about user {args.user}: nothing deleted (check the id)")
        else:
            print(
                f"deleted user {args.user}: {removed['recommendations']} recommendations, "
                f"{removed['candidates']} candidates, {removed['events']} events; the learned weights no longer "
                "count them (a running app notices on its next request)"
            )
        return 0

    learner = WeightLearner(log)
    n = learner.refresh()
    rows = learner.stats()
    if args.user is not None:
        check_user(args.user)  # as export and delete check it
        rows += [learner.estimate(r.content_type, args.user) for r in learner.stats()]
        if not log.holds_user(args.user):  # their rows are everyone's weights: say so, a typo looks the same
            print(f"note: nothing is stored about user {args.user} (check the id): their weights are everyone's",
                  file=sys.stderr)
    if args.json:
        print_json({"events_read": n, "counts": log.counts(), "weights": [r.to_dict() for r in rows]})
        return 0
    print(f"{n} events in the feedback log ({json.dumps(log.counts())})")
    width = max(14, *(len(r.user or "") + 2 for r in rows))  # the page's ids are 16 characters, a caller's up to 64
    print(f"{'content type':<14}{'user':<{width}}{'w_dtw':>7}{'w_emb':>7}{'transition':>11}{'events':>8}"
          f"{'ratings':>8}{'users':>6}{'sd(w)':>7}")
    for r in rows:
        print(
            f"{r.content_type:<14}{(r.user or '-'):<{width}}{r.w_dtw:>7.3f}{r.w_emb:>7.3f}{r.transition:>11.2f}"
            f"{r.n_events:>8}{r.n_ratings:>8}{r.n_users:>6}{r.w_dtw_sd:>7.3f}"
        )
    return 0
