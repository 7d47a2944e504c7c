"""An assistant's configuration: its strict shape and provider rules, the provider names,
the URLs and provider keys it names, and which assistant answers an inbound call."""
