"""Keys a file may still give under an older name: read at their new place (a value given
both ways is refused), or, where the meaning changed, refused naming what replaced them."""

from __future__ import annotations

from voicedock.errors import ConfigError

# Keys of [policy] that meant something else before: refused, naming what replaced them, so that
# a copied configuration is not read with a weaker meaning than its writer intended.
_RETIRED_POLICY_KEYS = {
    "allowed_prefixes": 'replaced by allowed_countries (ISO country codes, e.g. ["NL"])',
    "blocked_prefixes": (
        "replaced by extra_blocked_prefixes, which adds to the built-in ranges (they can no "
        "longer be removed)"
    ),
}
# The [pbx.freeswitch] keys of the transfer settings before they had their own table.
_FREESWITCH_TRANSFER_KEYS = {
    "warm_transfer_timeout": "timeout_seconds",
    "voice_decision": "voice_decision",
}
# [webhooks] keys that became [egress]'s, where they now govern every URL a tenant names
# (providers and tools too).
_EGRESS_KEYS_OF_WEBHOOKS = (
    "allow_loopback",
    "allow_private",
    "allowed_networks",
    "blocked_networks",
)


def read_old_names(raw: dict[str, object]) -> dict[str, str]:
    """``raw`` (the whole file, before it is decoded) with each renamed key moved to its new
    place. Returns the old name of each key the file gave that way, by its new name: a bad
    value is named as written."""
    policy = raw.get("policy")
    if isinstance(policy, dict):
        for key, replacement in _RETIRED_POLICY_KEYS.items():
            if key in policy:
                raise ConfigError(f"policy.{key}", replacement)
    written: dict[str, str] = {}
    pbx = raw.get("pbx")
    freeswitch = pbx.get("freeswitch") if isinstance(pbx, dict) else None
    if isinstance(freeswitch, dict):
        for old, new in _FREESWITCH_TRANSFER_KEYS.items():
            old_key, new_key = f"pbx.freeswitch.{old}", f"pbx.freeswitch.transfer.{new}"
            if _move(freeswitch, old, (freeswitch, "transfer", new), old_key, new_key):
                written[new_key] = old_key
    webhooks = raw.get("webhooks")
    if isinstance(webhooks, dict):
        for name in _EGRESS_KEYS_OF_WEBHOOKS:
            _move(webhooks, name, (raw, "egress", name), f"webhooks.{name}", f"egress.{name}")
    return written


def _move(
    source: dict[str, object],
    old: str,
    to: tuple[dict[str, object], str, str],
    old_key: str,
    new_key: str,
) -> bool:
    """``source[old]`` moved to ``to``: (the table holding the new table, its name, the new
    name in it). False: the file does not give it."""
    if old not in source:
        return False
    parent, table_name, new = to
    table = parent.setdefault(table_name, {})
    if not isinstance(table, dict):
        raise ConfigError(new_key.rpartition(".")[0], "expected a table")
    if new in table:
        raise ConfigError(old_key, f"given with its new name {new_key}: keep one")
    table[new] = source.pop(old)
    return True
