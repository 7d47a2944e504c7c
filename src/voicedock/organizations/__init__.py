"""An organization's business, as the operator sets it up and the organization runs it; the
calls it places and answers are ``calls/``'s, which reads what is kept here.

* ``config_mirror.py``: the configuration's organizations, trunks, numbers, assistants and
  webhook endpoints mirrored into the store at start-up (stable ids), and an organization
  created on first use;
* ``settings.py``: an organization's settings (``GET/PATCH /organization``), its limits and
  the operator's overrides of them;
* ``numbers.py``: phone numbers as the operator assigns them (``voicedock numbers``);
  ``trunk_access.py``: which trunks an organization may use;
* ``domains.py``: its domains and branding; ``domain_verification.py``: a proposed domain's
  TXT record checked;
* ``billing.py``: rate cards, a call's cost, the monthly spending limit; ``statements.py``: a
  month's statement; ``usage.py``: ``GET /usage``;
* ``retention.py``: how long call records and transcripts are kept (``[retention]``).

The voices an organization's assistants may speak with stay with the calls
(``calls/organization_voices.py``): a voice's preview speaks through a live call's providers.
"""
