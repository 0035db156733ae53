"""The pure domain: runs, schedules, the catalog's schemas, a run's configuration, cost and notifications. Plain functions over plain dicts and pydantic models; no I/O."""
