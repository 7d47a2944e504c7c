"""Placing an outbound call: the request, its placeholders, the assistant and caller
number it runs with, idempotency, and the dial limits every outbound call passes."""
