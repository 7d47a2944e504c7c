"""Requests to the organization's server that a call waits for: ``tool-calls`` (the model
called a webhook tool) and ``assistant-request`` (which assistant answers an inbound call).

    requests = ServerRequests(store, egress)
    answer = await requests.ask(org_id, assistant_id, payload, timeout_s=10)   # JSON object
    await requests.aclose()

Unlike the events of the outbox these are synchronous: one signed POST (Standard Webhooks,
the endpoint's secret, a fresh ``webhook-id``), its JSON answer awaited within the deadline,
never retried (the call cannot wait for a retry; what a caller does next is the caller's
business). The endpoint is the organization's enabled one that wants the request's type (one
bound to the call's assistant first; ``assistant-request`` only to endpoints that list it);
a tool may name its own URL, signed with that endpoint's secret. Every URL passes the same
SSRF guard as event deliveries, at check time and at connect time; redirects are not
followed.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from datetime import UTC, datetime

import aiohttp

from voicedock.domain.json import JsonObject, json_object
from voicedock.domain.webhooks import (
    EventType,
    InboundAssistantRequest,
    ToolCallRequest,
    WebhookEndpoint,
    redact,
)
from voicedock.egress import Egress
from voicedock.egress.caps import read_at_most
from voicedock.egress.lazy_session import LazySession
from voicedock.errors import InvalidSecret, ServerRequestFailed, UnsafeUrl
from voicedock.store.base import Store
from voicedock.webhooks import events
from voicedock.webhooks.events import CallEventPayload, encode_payload
from voicedock.webhooks.signing import new_message_id, sign
from voicedock.webhooks.worker import USER_AGENT

log = logging.getLogger("voicedock.webhooks")


class ServerRequests:
    def __init__(self, store: Store, egress: Egress) -> None:
        self._store = store
        self._egress = egress
        self._session = LazySession(
            lambda: egress.session(headers={"User-Agent": USER_AGENT}),
            lambda: ServerRequestFailed("voicedock is stopping"),
        )

    async def ask(
        self,
        organization_id: str,
        assistant_id: str | None,
        payload: CallEventPayload,
        *,
        timeout_s: float,
        url: str | None = None,
    ) -> JsonObject:
        """POST ``payload`` (its ``type`` chooses the endpoint) and return the JSON object
        answered; ``ServerRequestFailed`` otherwise."""
        event_type = str(payload["type"])
        endpoint = await self._endpoint(organization_id, assistant_id, event_type)
        target = url or endpoint.url
        body = encode_payload(payload)
        try:
            async with asyncio.timeout(timeout_s):
                return await self._post(target, endpoint.secret, body)
        except TimeoutError:
            raise ServerRequestFailed("the server did not answer in time") from None

    async def tool_call(self, request: ToolCallRequest) -> JsonObject:
        """The ``tool-calls`` request of one webhook tool call; the server's answer."""
        org_id, assistant_id = request.organization_id, request.assistant_id
        payload = events.tool_calls(
            request.call_id,
            at=datetime.now(UTC),
            assistant_id=assistant_id,
            tool_call_id=request.tool_call_id,
            name=request.name,
            arguments=request.arguments,
        )
        call = await self._store.get_call(org_id, request.call_id)
        payload = events.with_metadata(payload, None if call is None else call.metadata)
        return await self.ask(
            org_id, assistant_id, payload, timeout_s=request.timeout_s, url=request.url
        )

    async def assistant_request(self, request: InboundAssistantRequest) -> JsonObject:
        """The ``assistant-request`` of an inbound call; the server's answer."""
        payload = events.assistant_request(
            request.call_id,
            at=datetime.now(UTC),
            caller=request.caller,
            called=request.called,
            number_id=request.number_id,
            attestation=request.attestation,
        )
        return await self.ask(request.organization_id, None, payload, timeout_s=request.timeout_s)

    async def _endpoint(
        self, organization_id: str, assistant_id: str | None, event_type: str
    ) -> WebhookEndpoint:
        endpoints = await self._store.list_webhook_endpoints(
            organization_id, assistant_id, event_type
        )
        if event_type == EventType.ASSISTANT_REQUEST:
            # Opt-in, like transcripts: a catch-all endpoint is not asked to route calls.
            endpoints = [e for e in endpoints if event_type in e.event_types]
        own = [e for e in endpoints if e.assistant_id is not None]
        chosen = own or endpoints
        if not chosen:
            raise ServerRequestFailed(f"no webhook endpoint receives {event_type}")
        return chosen[0]

    async def _post(self, url: str, secret: str, body: bytes) -> JsonObject:
        try:
            await self._egress.check(url)
            headers = sign(secret, new_message_id(), int(time.time()), body)
        except UnsafeUrl as exc:
            raise ServerRequestFailed(f"server URL refused: {exc.reason}") from None
        except (InvalidSecret, ValueError):
            raise ServerRequestFailed("the endpoint's secret cannot sign") from None
        headers["Content-Type"] = "application/json"
        cap = self._egress.caps.server_answer_bytes
        try:
            async with self._session.get().post(
                url, data=body, headers=headers, allow_redirects=False
            ) as response:
                status = response.status
                raw = await read_at_most(response.content, cap)
        except UnsafeUrl as exc:  # the guarded resolver, at connect time
            raise ServerRequestFailed(f"server URL refused: {exc.reason}") from None
        except (aiohttp.ClientError, OSError) as exc:
            log.info("server request to %s failed: %s", redact(url), type(exc).__name__)
            raise ServerRequestFailed("the server could not be reached") from None
        if not 200 <= status < 300:
            raise ServerRequestFailed(f"the server answered HTTP {status}")
        if len(raw) > cap:
            log.info("server request to %s: answer over %d bytes", redact(url), cap)
            raise ServerRequestFailed("the server's answer is too large")
        try:
            answer = json.loads(raw) if raw.strip() else {}
        except ValueError:
            raise ServerRequestFailed("the server's answer is not JSON") from None
        answered = json_object(answer)
        if answered is None:
            raise ServerRequestFailed("the server's answer is not a JSON object")
        return answered

    async def aclose(self) -> None:
        """Close the HTTP session (idempotent); later requests fail."""
        await self._session.aclose()
