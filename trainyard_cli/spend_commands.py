"""`trainyard spend TEAM`: the team's budget and what is spent or reserved this month (GET /api/teams/{team}/spend;
docs/security.md "Spend guard")."""
from __future__ import annotations

from trainyard_cli.output import Output


def register(groups, common) -> None:
    spend = common(groups.add_parser("spend", help="a team's monthly budget and what is spent or reserved"))
    spend.add_argument("team")
    spend.set_defaults(handler=show_spend)


def _cap(value, unit: str) -> str:
    return "no cap" if value is None else f"{value:,.1f} {unit}" if unit == "GPU-hours" else f"{value:,.2f} {unit}"


def show_spend(args, client, ui: Output) -> int:
    data = client.get(f"/api/teams/{args.team}/spend")

    def human(d: dict) -> None:
        budget, spent = d.get("budget") or {}, d["spent"]
        ui.line(f"team {d['team']}, {d['month']} (UTC)")
        ui.line(f"spent or reserved: {spent['gpu_hours']:,.1f} GPU-hours of "
                f"{_cap(budget.get('gpu_hours_per_month'), 'GPU-hours')}; {spent['usd']:,.2f} USD of "
                f"{_cap(budget.get('usd_per_month'), 'USD')}")
        ui.line(f"per run without approval: {budget.get('max_gpus_per_run') or 'any number of'} GPUs, "
                f"{_cap(budget.get('max_usd_per_run'), 'USD')}")
        for key, entry in sorted(d.get("entries", {}).items()):
            ui.line(f"  {key}  {ui.state(entry['state'])}  {entry['gpu_hours']:,.2f} GPU-hours  {entry['usd']:,.2f} USD")

    ui.result(data, human)
    return 0
