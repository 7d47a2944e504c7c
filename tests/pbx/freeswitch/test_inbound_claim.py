"""The claim that lets one node of several answer a parked inbound call on FreeSWITCH
(``pbx/freeswitch/inbound_claim.py``): mod_hash's ``insert_ifempty`` answers ``+OK`` once."""

from __future__ import annotations

from typing import cast

import pytest

from voicedock.pbx.freeswitch import inbound_claim
from voicedock.pbx.freeswitch.commands import UnsafeCommandValue
from voicedock.pbx.freeswitch.esl.client import EslClient
from voicedock.pbx.freeswitch.esl.errors import EslCommandError, EslNotConnected

pytestmark = pytest.mark.unit

UUID = "0f6a1c2e-3b4d-4e5f-8a9b-0c1d2e3f4a5b"


class HashEsl:
    """mod_hash as FreeSWITCH runs it: ``insert_ifempty`` keeps the first value."""

    def __init__(self, *, loaded: bool = True) -> None:
        self.loaded = loaded
        self.table: dict[str, str] = {}
        self.commands: list[str] = []

    async def api(self, command: str) -> str:
        self.commands.append(command)
        if not self.loaded:
            raise EslCommandError("hash", "-ERR hash Command not found!")
        op, realm, key, *value = command.removeprefix("hash ").split("/")
        name = f"{realm}/{key}"
        if op == "insert_ifempty":
            if name in self.table:
                raise EslCommandError("hash", "-ERR key already exists")
            self.table[name] = value[0]
        elif op == "delete":
            self.table.pop(name, None)
        return "+OK"


async def test_one_node_claims_a_parked_call_and_the_release_frees_it() -> None:
    esl = HashEsl()
    claims = [await inbound_claim.claim(cast(EslClient, esl), UUID, n) for n in ("a", "b", "c")]
    assert claims == [True, False, False]
    assert esl.commands[0] == f"hash insert_ifempty/voicedock_inbound/{UUID}/a"
    await inbound_claim.release(cast(EslClient, esl), UUID)
    assert esl.table == {}
    assert await inbound_claim.claim(cast(EslClient, esl), UUID, "b")


async def test_without_mod_hash_the_node_answers_as_a_single_node_does() -> None:
    esl = HashEsl(loaded=False)
    assert await inbound_claim.claim(cast(EslClient, esl), UUID, "a")
    await inbound_claim.release(cast(EslClient, esl), UUID)  # logged, not raised


async def test_a_lost_connection_is_not_a_claim() -> None:
    class Down:
        async def api(self, command: str) -> str:
            raise EslNotConnected("down")

    with pytest.raises(EslNotConnected):
        await inbound_claim.claim(cast(EslClient, Down()), UUID, "a")


def test_only_a_uuid_and_a_plain_node_id_reach_the_command() -> None:
    with pytest.raises(UnsafeCommandValue):
        inbound_claim.build_claim("not-a-uuid/x", "a")
    with pytest.raises(UnsafeCommandValue):
        inbound_claim.build_claim(UUID, "a/b")
    assert inbound_claim.build_release(UUID) == f"hash delete/voicedock_inbound/{UUID}"
