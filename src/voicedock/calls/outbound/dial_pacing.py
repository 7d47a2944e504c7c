"""Dial pacing: whether a new outbound call may be dialled now, or how long to wait.

Every outbound call passes here (``POST /calls/outbound`` and the campaign dialer alike), in the
transaction that then stores it (``Placement.place``). A call is admitted while its
trunk is under its calls per second and its channels, its organization under its calls at once
(``limits.max_calls_per_organization``) and its campaign under its own (0: no limit). The
counts are the store's, taken under a lock on the trunk's row (and the organization's) that
holds until the transaction commits the call, so nodes sharing the database never exceed a
limit together (``store/sql/dials.py``).

Calls per second: a dial counts from its admission until a second after the PBX had its
channel (``dial_done``), so however late an originate reaches the PBX, no more than ``max_cps``
channels are created there in any second; one still on its way counts in full.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta

from voicedock.config import LimitsSettings
from voicedock.organizations.config_mirror import stable_id
from voicedock.store.base import Transaction

# How long after the PBX created its channel a dial counts against the trunk's calls per
# second: one second, and a little more for the clocks of the database and the PBX.
CPS_WINDOW = timedelta(seconds=1.05)
# A dial whose originate never reported back (its node died) stops counting after this long.
ORIGINATE_LOST = timedelta(seconds=10)
# How long the trunk's dial log keeps a dial.
DIALS_KEPT = timedelta(seconds=20)
# How long a dial refused for a channel or a concurrent-call limit waits before it tries again.
BUSY_RETRY = timedelta(milliseconds=200)
# How long a dial waits while the trunk's second is full of originates still on their way.
ON_ITS_WAY = timedelta(milliseconds=20)


class OrganizationLimits:
    """Each organization's calls at once: the operator's override (``voicedock organizations
    set-limits``), else the file's ``[[limits.organizations]]`` (0: no limit)."""

    def __init__(self, limits: LimitsSettings) -> None:
        self._limits = limits
        self._configured: dict[str, int] | None = None

    async def max_calls(self, tx: Transaction, organization_id: str) -> int:
        """Read in ``tx``: a read on another connection while it holds the numbers' locks
        waits for a free one, and placements waiting for those locks may hold them all."""
        org = await tx.get_organization(organization_id)
        if org is not None and org.max_concurrent_calls is not None:
            return org.max_concurrent_calls
        if self._configured is None:
            self._configured = {
                stable_id("organization", o.organization): o.max_concurrent_calls
                for o in self._limits.organizations
            }
        return self._configured.get(organization_id, 0)


async def admit_dial(
    tx: Transaction,
    trunk: str,
    organization_id: str,
    organization_max: int,
    campaign_id: str | None,
    campaign_max: int,
    now: datetime,
) -> int | timedelta:
    """Count a new call on ``trunk`` at ``now`` if it is under every limit: the dial's id
    (``tx.dial_done`` once the PBX answered its originate). Otherwise nothing is counted, and
    the answer is how long to wait before trying again. ``tx`` must then insert the call."""
    limits = await tx.trunk_for_update(trunk)
    max_cps = 0 if limits is None else limits.max_cps
    max_channels = 0 if limits is None else limits.max_channels
    if max_channels and await tx.count_active_calls("trunk", trunk) >= max_channels:
        return BUSY_RETRY
    if organization_max:
        await tx.lock_organization(organization_id)
        if await tx.count_active_calls("organization_id", organization_id) >= organization_max:
            return BUSY_RETRY
    if (
        campaign_id is not None
        and campaign_max
        and await tx.count_active_calls("campaign_id", campaign_id) >= campaign_max
    ):
        return BUSY_RETRY
    if max_cps:
        dials = await tx.trunk_dials(trunk, now - ORIGINATE_LOST, now - CPS_WINDOW)
        wait = cps_wait(dials, max_cps, now)
        if wait is not None:
            return wait
    return await tx.record_trunk_dial(trunk, now, now - DIALS_KEPT)


def cps_wait(dials: Sequence[datetime | None], max_cps: int, now: datetime) -> timedelta | None:
    """How long until the trunk's second has room for one more dial (``None``: now), given
    when the PBX had the channel of each dial that still counts (``None``: on its way)."""
    if len(dials) < max_cps:
        return None
    done = sorted(d for d in dials if d is not None)
    if len(dials) - len(done) >= max_cps or not done:
        return ON_ITS_WAY  # wait for originates on their way
    # The window frees up when enough of the completed dials have aged out of it.
    oldest = done[len(dials) - max_cps]
    return max(oldest + CPS_WINDOW - now, timedelta(milliseconds=1))
