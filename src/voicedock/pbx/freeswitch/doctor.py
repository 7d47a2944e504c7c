"""``voicedock doctor`` with ``pbx.kind = "freeswitch"``: the live FreeSWITCH, over its ESL.

What a telephony engineer would check before the first call, each from FreeSWITCH itself:

* the Event Socket answers and accepts ``pbx.freeswitch.esl_password``;
* the modules voicedock needs are loaded (``module_exists``; mod_hash: with several nodes,
  one node claims each parked inbound call through it);
* every trunk's sofia gateway exists and is usable (``sofia status gateway <name>``: ``Status``
  UP, ``State`` REGED, or NOREG for an IP trunk without registration);
* the inbound context of those gateways (their ``Context``) parks each of our DIDs for voicedock
  (``xml_locate dialplan context name <context>``: the first extension whose
  ``destination_number`` matches the DID must ``park``), and the transfer context exists;
* the media websocket URL that FreeSWITCH is told to connect to can be reached from where
  FreeSWITCH runs (no loopback or wildcard address for a FreeSWITCH on another host).

Each problem is one line naming the setting or the FreeSWITCH object to fix.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from urllib.parse import urlsplit
from xml.etree import ElementTree

from voicedock.config import Settings
from voicedock.errors import ConfigError
from voicedock.pbx.freeswitch.commands import UnsafeCommandValue, require_token
from voicedock.pbx.freeswitch.esl.client import EslClient
from voicedock.pbx.freeswitch.esl.errors import EslAuthError, EslCommandError, EslNotConnected
from voicedock.pbx.freeswitch.esl.settings import EslSettings
from voicedock.pbx.freeswitch.esl.wire import EslProtocolError
from voicedock.pbx.freeswitch.media.stream_server import AudioStreamServer
from voicedock.validation import mask_number

# mod_hash: several nodes claim each parked inbound call with it (``freeswitch.inbound_claim``).
NEEDED_MODULES = ("mod_sofia", "mod_event_socket", "mod_audio_stream", "mod_hash")
INBOUND_CONTEXT = "voicedock_inbound"  # dialplan/freeswitch/voicedock.xml
_USABLE_STATES = {"REGED", "NOREG"}  # registered, or an IP trunk that does not register
_TIMEOUT = 5.0


async def check(settings: Settings) -> list[str]:
    """Problems with the FreeSWITCH of ``settings.pbx.freeswitch``; empty when all is well."""
    fs = settings.pbx.freeswitch
    where = f"{fs.esl_host}:{fs.esl_port}"
    try:
        esl_settings = EslSettings(
            fs.esl_host,
            fs.esl_port,
            fs.esl_password,
            events=(),
            allow_default_password=fs.allow_default_password,
            connect_timeout=_TIMEOUT,
            command_timeout=_TIMEOUT,
        )
    except ConfigError as exc:
        return [f"pbx.freeswitch: {exc}"]
    esl = EslClient(esl_settings)
    try:
        await esl.start()
    except EslAuthError:
        await esl.aclose()
        return [
            f"freeswitch: the Event Socket at {where} refused the password "
            "(pbx.freeswitch.esl_password, event_socket.conf.xml) or this client's address"
        ]
    except (EslNotConnected, EslProtocolError) as exc:
        await esl.aclose()
        return [f"freeswitch: cannot reach the Event Socket at {where}: {exc}"]
    try:
        problems = await _modules(esl)
        contexts, gateway_problems = await _gateways(esl, settings)
        problems += gateway_problems
        problems += await _dialplan(esl, settings, contexts or {INBOUND_CONTEXT})
    finally:
        await esl.aclose()
    return problems + media_url_problems(settings)


async def _modules(esl: EslClient) -> list[str]:
    missing = [m for m in NEEDED_MODULES if (await esl.api(f"module_exists {m}")).strip() != "true"]
    return [f"freeswitch: module {m} is not loaded (modules.conf.xml)" for m in missing]


async def _gateways(esl: EslClient, settings: Settings) -> tuple[set[str], list[str]]:
    """The gateways' inbound contexts, and the problems of each trunk's gateway."""
    contexts: set[str] = set()
    problems: list[str] = []
    for i, trunk in enumerate(settings.trunks):
        name = trunk.endpoint or trunk.name
        label = f"trunks[{i}] ({trunk.name})"
        try:
            status = await esl.api(f"sofia status gateway {require_token(name, 'gateway')}")
        except UnsafeCommandValue:
            problems.append(f"{label}: {name!r} is not a gateway name FreeSWITCH accepts")
            continue
        except EslCommandError as exc:
            status = exc.reply
        fields = _fields(status)
        if "Name" not in fields:
            problems.append(
                f"{label}: FreeSWITCH has no sofia gateway {name!r} "
                "(sip_configs/freeswitch/gateway_*.xml, then `sofia profile <profile> rescan`)"
            )
            continue
        state, up = fields.get("State", "?"), fields.get("Status", "?")
        if state not in _USABLE_STATES or up != "UP":
            problems.append(
                f"{label}: sofia gateway {name!r} is not usable: State {state}, Status {up} "
                "(registration failing, or the carrier does not answer OPTIONS pings)"
            )
        if fields.get("Context"):
            contexts.add(fields["Context"])
    return contexts, problems


def _fields(status: str) -> dict[str, str]:
    """``sofia status gateway``'s ``Name\\tvalue`` lines."""
    pairs = (line.split("\t", 1) for line in status.splitlines() if "\t" in line)
    return {key.strip(): value.strip() for key, value in pairs}


async def _dialplan(esl: EslClient, settings: Settings, contexts: Iterable[str]) -> list[str]:
    fs = settings.pbx.freeswitch
    dids = sorted(set(fs.dids) | {n.number for n in settings.numbers})
    problems: list[str] = []
    for context in sorted(contexts):
        extensions = await _context(esl, context)
        if extensions is None:
            problems.append(
                f"freeswitch: the inbound dialplan context {context!r} does not exist "
                "(dialplan/freeswitch/voicedock.xml, then `reloadxml`)"
            )
            continue
        for did in dids:
            first = _first_match(extensions, did)
            if first is None or not _parks(first):
                what = "no extension" if first is None else f"extension {first.get('name')!r}"
                problems.append(
                    f"freeswitch: number {mask_number(did)} reaches {what} in context "
                    f"{context!r}, which does not park it for voicedock (${{DID_REGEX}} in "
                    "dialplan/freeswitch/voicedock.xml)"
                )
    if await _context(esl, fs.transfer_context) is None:
        problems.append(
            f"pbx.freeswitch.transfer_context: FreeSWITCH has no dialplan context "
            f"{fs.transfer_context!r} (dialplan/freeswitch/voicedock.xml)"
        )
    return problems


async def _context(esl: EslClient, name: str) -> list[ElementTree.Element] | None:
    """The context's extensions as FreeSWITCH holds them, or ``None`` if it has none such."""
    try:
        command = f"xml_locate dialplan context name {require_token(name, 'context')}"
        text = await esl.api(command)
    except (EslCommandError, UnsafeCommandValue):
        return None
    try:
        # FreeSWITCH's own rendering of its configuration, read from the authenticated socket.
        root = ElementTree.fromstring(text.strip())  # noqa: S314
    except ElementTree.ParseError:
        return None  # "can't find anything"
    return root.findall("extension") if root.tag == "context" else None


def _first_match(extensions: list[ElementTree.Element], did: str) -> ElementTree.Element | None:
    """The first extension whose ``destination_number`` conditions all match ``did`` (as the
    carrier may send it: with or without the ``+``) and does not continue."""
    for extension in extensions:
        conditions = [
            c for c in extension.findall("condition") if c.get("field") == "destination_number"
        ]
        if not conditions:
            continue
        for number in (did, did.removeprefix("+")):
            if all(_matches(c.get("expression", ""), number) for c in conditions):
                if extension.get("continue") == "true" and not _parks(extension):
                    break
                return extension
    return None


def _matches(expression: str, number: str) -> bool:
    try:
        return re.search(expression, number) is not None
    except re.error:
        return False  # PCRE Python cannot read: counted as no match


def _parks(extension: ElementTree.Element) -> bool:
    return any(a.get("application") == "park" for a in extension.iter("action"))


def media_url_problems(settings: Settings) -> list[str]:
    """The websocket URL FreeSWITCH's mod_audio_stream is told to connect to must be reachable
    from the FreeSWITCH host."""
    fs = settings.pbx.freeswitch
    url = AudioStreamServer(fs.media_host, fs.media_port, fs.media_public_url).public_url
    host = urlsplit(url).hostname or ""
    key = "pbx.freeswitch.media_public_url"
    if _is_wildcard(host):
        return [f"{key}: FreeSWITCH cannot connect to {url}: set the address it reaches us at"]
    if _is_loopback(host) and not _is_loopback(fs.esl_host):
        return [
            f"{key}: FreeSWITCH at {fs.esl_host} cannot reach {url} (a loopback address of "
            "this host): set the address it reaches us at"
        ]
    return []


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _is_wildcard(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.strip("[]")).is_unspecified
    except ValueError:
        return False
