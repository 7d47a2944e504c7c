"""An assistant's configuration: its strict shape and provider rules, the provider names,
the URLs and provider keys it names, the ``{{placeholders}}`` of its texts, which
configuration a call runs (``resolve.py``) and which assistant answers an inbound call."""
