"""Campaigns: contacts dialed as ordinary outbound calls within the dial limits, in calling
windows, with retries (docs/campaigns.md)."""
