"""A tiny blocking AMI client for the lab: log in, send one action, read its response.

voicedock's real AMI adapter lives in ``voicedock.pbx``; this exists so the lab tooling can
originate calls from the emulated carrier without an event loop. The parser is pure.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping, Sequence

from voicedock_lab.errors import LabError

Message = dict[str, str]


def encode_action(fields: Sequence[tuple[str, str]]) -> bytes:
    """``Key: Value`` lines ending with an empty line. Repeated keys (Variable) are allowed."""
    lines = []
    for key, value in fields:
        if "\r" in value or "\n" in value or "\r" in key or "\n" in key:
            raise ValueError(f"AMI field {key!r} contains a line break")
        lines.append(f"{key}: {value}\r\n")
    return ("".join(lines) + "\r\n").encode()


def split_messages(buffer: bytes) -> tuple[list[Message], bytes]:
    """Complete messages in ``buffer`` and the unparsed rest. Later duplicate keys win."""
    messages: list[Message] = []
    while True:
        end = buffer.find(b"\r\n\r\n")
        if end < 0:
            return messages, buffer
        block, buffer = buffer[:end], buffer[end + 4 :]
        message: Message = {}
        for line in block.decode("utf-8", "replace").split("\r\n"):
            key, sep, value = line.partition(":")
            if sep:
                message[key.strip()] = value.strip()
        if message:
            messages.append(message)


class AmiProbe:
    """One blocking AMI session; use as a context manager."""

    def __init__(self, host: str, port: int, *, timeout: float = 5.0) -> None:
        self._sock = socket.create_connection((host, port), timeout=timeout)
        self._buffer = b""
        self._next_id = 0
        self.banner = self._read_line()

    def __enter__(self) -> AmiProbe:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        self._sock.close()

    def _read_line(self) -> str:
        while b"\r\n" not in self._buffer:
            self._fill()
        line, _, self._buffer = self._buffer.partition(b"\r\n")
        return line.decode("utf-8", "replace")

    def _fill(self) -> None:
        chunk = self._sock.recv(65536)
        if not chunk:
            raise LabError("AMI connection closed by Asterisk")
        self._buffer += chunk

    def action(self, name: str, fields: Mapping[str, str] | Sequence[tuple[str, str]]) -> Message:
        """Send an action and return the message answering it (matched by ActionID)."""
        self._next_id += 1
        action_id = f"lab-{self._next_id}"
        items = list(fields.items()) if isinstance(fields, Mapping) else list(fields)
        self._sock.sendall(encode_action([("Action", name), ("ActionID", action_id), *items]))
        while True:
            messages, self._buffer = split_messages(self._buffer)
            for message in messages:
                if message.get("ActionID") == action_id and "Response" in message:
                    return message
            self._fill()

    def login(self, username: str, secret: str) -> None:
        reply = self.action("Login", {"Username": username, "Secret": secret, "Events": "off"})
        if reply.get("Response") != "Success":
            raise LabError(f"AMI login refused: {reply.get('Message', reply)}")
