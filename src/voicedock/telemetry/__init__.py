"""OpenTelemetry traces of the node (``[telemetry]``, docs/tracing.md).

``tracing.py`` owns the node's tracer provider and its OTLP exporter (HTTP or gRPC): made
when the service is, flushed and shut down when it closes, absent while ``traces = "off"``
(no tracer, nothing exported, nothing on the media path). It also says what an attribute may
hold: no transcript and no phone number unless the operator opts in (``record_content``),
and then numbers masked as the logs mask them. ``trace_context.py`` reads and writes W3C
``traceparent`` headers: the REST request that placed a call is its trace's parent, and the
webhooks about a call carry the call's.

What is traced is said where it happens: a call and its turns in ``calls/call_traces.py``
and ``calls/turn_spans.py``, a placing request in ``api/request_traces.py``. Metrics stay
Prometheus's (``metrics.py``).
"""
