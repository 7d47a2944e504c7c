"""Placing an outbound call: the request, the caller number it runs with (its assistant is
resolved by ``calls.assistants.resolve``), idempotency, and the dial limits every outbound
call passes."""
