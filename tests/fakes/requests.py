"""Request bodies as the API reads them (their models, ``api/models/``): what a client's JSON
becomes before it reaches the engine or the campaigns."""

from __future__ import annotations

from typing import Any

from voicedock.api.models.base import parse
from voicedock.api.models.calls import OutboundCallRequest
from voicedock.api.models.campaigns import CampaignCreate
from voicedock.calls.campaigns.request import CampaignRequest
from voicedock.calls.outbound.request import OutboundRequest


def outbound_request(body: dict[str, Any]) -> OutboundRequest:
    """A ``POST /calls/outbound`` body."""
    return parse(body, OutboundCallRequest).request()


def campaign_request(body: dict[str, Any]) -> CampaignRequest:
    """A ``POST /campaigns`` body."""
    return parse(body, CampaignCreate).request()
