"""Asterisk's Manager Interface (AMI): the client and its messages."""
