"""Asterisk's REST Interface (ARI): the client and its events."""
