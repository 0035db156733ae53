"""The options and the loop every `… list` command shares: a server-side --search, --team, a page of
--page-size rows, --page-token to go on from the page before, or --all pages (the API's lists:
shared/services/listing.py). The human output ends with the token of the next page."""
from __future__ import annotations

ALL_LIMIT = 100_000  # rows --all reads before it stops and says so: a guard, not a page size


def add(parser, search_help: str = "words the items' names start with (server-side)", size: int = 20) -> None:
    parser.add_argument("--search", help=search_help)
    parser.add_argument("--team", help="only this team's (one you may view)")
    parser.add_argument("--page-size", type=int, default=size, help="rows a page (1 to 100)")
    pages = parser.add_mutually_exclusive_group()
    pages.add_argument("--page-token", help="the next page: the token the page before ended with")
    pages.add_argument("--all", action="store_true", help="every page, one after another")


def fetch(client, path: str, rows_key: str, args, **params) -> dict:
    """One page (the API's answer), or with --all every page's rows under rows_key."""
    params = {"search": args.search, "team": args.team, "page_size": args.page_size, **params}
    if not args.all:
        return client.get(path, page_token=args.page_token, **params)
    rows, token = [], None
    while True:
        page = client.get(path, page_token=token, **params)
        rows += page[rows_key]
        token = page.get("next_page_token")
        if not token or len(rows) >= ALL_LIMIT:
            return {**page, rows_key: rows, "next_page_token": token}


def next_hint(ui, data: dict) -> None:
    """After a page for a person: how to read the next one (the same command, its token)."""
    token = data.get("next_page_token")
    if token:
        ui.line(f"more: --page-token {token}  (or --all)")
