"""FreeSWITCH's Event Socket (ESL): the wire codec, the client, its errors, handles and
settings."""
