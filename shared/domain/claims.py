"""One idempotency record for the three ledgers a run keeps, as pure functions over one entry (a dict):

- claim: this holder takes the entry, unless it is done or another holder's claim is still live — a
  claim younger than its `lease`, or, without a lease, any claim (at most once: a holder that crashed
  mid-way loses its one message rather than sending it twice);
- release: the holder gives its own claim back after a failure it expects to heal, so the next delivery
  takes it at once (a takeover since is left alone);
- done: the work is recorded as done, once.

The ledgers, with the field names documents in Firestore already have:

- the submit lease: a run's attempt entry, `claimed_at` (lease: settings.submit_lease_s; done when the
  job is created — the run leaves `submitting`);
- the notification ledger: `notifications_sent[attempt:event:target]`, `status` sending/sent/failed
  (no lease);
- the automatic deploy's command: `deployment.queued_at`, done once the command went out.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Optional

CLAIMED_AT, DONE_AT = "claimed_at", "done_at"


def live(entry: dict, at: datetime, lease: Optional[timedelta], since: str = CLAIMED_AT) -> bool:
    """Whether another holder's claim still holds the entry at `at`."""
    claimed_at = entry.get(since)
    return bool(claimed_at) and (lease is None or at - claimed_at <= lease)


def claim(entry: Optional[dict], at: datetime, lease: Optional[timedelta] = None, since: str = CLAIMED_AT,
          done_at: str = DONE_AT) -> Optional[dict]:
    """The entry claimed by this holder at `at`; None when it is done or another claim is live."""
    entry = entry or {}
    if entry.get(done_at) or live(entry, at, lease, since):
        return None
    return {**entry, since: at}


def release(entry: dict, claimed_at: datetime, since: str = CLAIMED_AT) -> Optional[dict]:
    """The entry with this holder's claim given back; None when the claim is not this holder's (any more)."""
    if not entry.get(since) or entry.get(since) != claimed_at:
        return None
    return {**entry, since: None}


def done(entry: Optional[dict], at: datetime, done_at: str = DONE_AT) -> Optional[dict]:
    """The entry marked done at `at`; None when it was done already."""
    entry = entry or {}
    if entry.get(done_at):
        return None
    return {**entry, done_at: at}
