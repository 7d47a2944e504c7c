"""OpenTelemetry traces (``[telemetry]``): off unless the operator names an exporter, then
every call's trace goes over OTLP to their collector (``telemetry/``, docs/tracing.md).

    [telemetry]
    traces = "otlp-http"                        # "off" (default) | "otlp-http" | "otlp-grpc"
    endpoint = "http://collector:4318"          # /v1/traces is added to a bare OTLP/HTTP URL
    headers = { authorization = "Bearer …" }    # sent with every export (a collector's key)
    service_name = "voicedock"
    sample_ratio = 1.0                          # of the traces that start here
    record_content = false                      # true: transcripts and masked numbers too

Metrics stay Prometheus's (``[metrics]``).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal
from urllib.parse import urlsplit

import msgspec
from msgspec import Meta

from voicedock.config.table_types import Table, matching, within
from voicedock.errors import ConfigError

# Where an OTLP collector listens on this machine, by exporter (the SDK's own defaults).
DEFAULT_ENDPOINTS = {"otlp-http": "http://localhost:4318", "otlp-grpc": "http://localhost:4317"}
TRACES_PATH = "/v1/traces"  # OTLP/HTTP's path for traces
_HEADER_NAME = re.compile(r"[A-Za-z0-9!#$%&'*+.^_`|~-]{1,128}")
_HEADER_VALUE = re.compile(r"[\t\x20-\x7e\x80-\xff]{0,4096}")

Traces = Literal["off", "otlp-http", "otlp-grpc"]


class TelemetrySettings(Table):
    """[telemetry]: the node's OpenTelemetry traces (docs/tracing.md)."""

    # "off": no tracer is made and nothing is exported; "otlp-http" (protobuf over HTTP) or
    # "otlp-grpc": each call's trace to ``endpoint``.
    traces: Traces = "off"
    # The collector: http(s)://host:port (empty: this machine's, 4318 or 4317). OTLP/HTTP
    # posts to its path, or to /v1/traces when it has none.
    endpoint: str = ""
    # Sent with every export, e.g. a collector's key (from the environment:
    # VOICEDOCK_TELEMETRY__HEADERS__AUTHORIZATION). Never logged.
    headers: dict[str, str] = msgspec.field(default_factory=dict)
    # The resource's service.name; service.instance.id is the node id.
    service_name: Annotated[
        str, matching(r"[A-Za-z0-9_.\-]+", "1-64 letters, digits, '_', '.', '-'", max_length=64)
    ] = "voicedock"
    # The share of traces started here that are kept (a request's sampled traceparent is
    # followed as given).
    sample_ratio: Annotated[float, Meta(ge=0.0, le=1.0)] = 1.0
    # Seconds an export may take before it is given up (the spans are dropped, never retried
    # forever).
    timeout_seconds: Annotated[int, within(1, 60, "must be between 1 and 60 s")] = 10
    # false: no transcript, tool argument or phone number in any span's attribute. true: the
    # caller's and the assistant's words on their turn's span and the numbers, masked as the
    # logs mask them.
    record_content: bool = False

    @property
    def on(self) -> bool:
        return self.traces != "off"

    def url(self) -> str:
        """Where spans are exported: ``endpoint`` (or this machine's collector), with OTLP/HTTP's
        traces path when it names none."""
        endpoint = self.endpoint or DEFAULT_ENDPOINTS.get(self.traces, "")
        if self.traces == "otlp-http" and urlsplit(endpoint).path in ("", "/"):
            return endpoint.rstrip("/") + TRACES_PATH
        return endpoint

    def check(self) -> None:
        """The endpoint a URL of http(s) with a host, each header a valid one."""
        if self.endpoint:
            parts = urlsplit(self.endpoint)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ConfigError(
                    "telemetry.endpoint", "must be an http:// or https:// URL with a host"
                )
            if parts.username or parts.password:
                raise ConfigError(
                    "telemetry.endpoint", "must not hold credentials (use telemetry.headers)"
                )
            if self.traces == "otlp-grpc" and parts.path not in ("", "/"):
                raise ConfigError("telemetry.endpoint", "an OTLP/gRPC endpoint has no path")
        for name, value in self.headers.items():
            if not _HEADER_NAME.fullmatch(name):
                raise ConfigError(f"telemetry.headers.{name}", "not a valid HTTP header name")
            if not _HEADER_VALUE.fullmatch(value):
                raise ConfigError(
                    f"telemetry.headers.{name}", "must be printable, without line breaks"
                )
