"""`--team` on the commands that create something (runs, schedules, catalog items): the team it
belongs to. Left out, the API picks the caller's only team where they may create it (docs/security.md)."""
from __future__ import annotations

HELP = "the team it belongs to (default: your only team where you are trainer or above)"


def add(parser) -> None:
    parser.add_argument("--team", help=HELP)


def apply(body: dict, args) -> dict:
    if getattr(args, "team", None):
        body["team"] = args.team
    return body
