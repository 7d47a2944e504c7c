"""Render the lab instance's Asterisk config from the project's templates (pure functions).

Templates use ``${NAME}`` placeholders. Only names present in the values mapping are replaced;
every other ``${...}`` (dialplan variables such as ``${EXTEN}``) is left for Asterisk.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from pathlib import Path

from voicedock_lab.errors import LabError
from voicedock_lab.settings import LabSettings

_PLACEHOLDER = re.compile(r"\$\{([A-Z][A-Z0-9_]*)\}")

# Output file in the instance's etc dir -> template path relative to the project root.
TEMPLATE_FILES: dict[str, str] = {
    "pjsip.conf": "sip_configs/lab/pjsip.conf",
    "ari.conf": "sip_configs/asterisk/ari.conf",
    "manager.conf": "sip_configs/asterisk/manager.conf",
    "http.conf": "sip_configs/asterisk/http.conf",
    "rtp.conf": "sip_configs/asterisk/rtp.conf",
    "websocket_client.conf": "sip_configs/asterisk/websocket_client.conf",
    "extensions.conf": "dialplan/lab/extensions.conf",
    "extensions_voicedock.conf": "dialplan/asterisk/extensions_voicedock.conf",
}

# autoload=no: only these load. Grouped by what needs them. Modules that bind wildcard
# addresses or need hardware/external services (chan_iax2, pbx_dundi, chan_unistim,
# res_pjsip_transport_websocket, chan_console, res_xmpp, res_snmp, databases, ...) stay out.
REQUIRED_MODULES: tuple[str, ...] = (
    # timing + sorcery + PJSIP signalling
    "res_timing_timerfd",
    "res_sorcery_config",
    "res_sorcery_memory",
    "res_sorcery_astdb",
    "res_pjproject",
    "res_pjsip",
    "res_pjsip_session",
    "res_pjsip_pubsub",
    "chan_pjsip",
    "res_pjsip_sdp_rtp",
    "res_pjsip_endpoint_identifier_ip",
    "res_pjsip_endpoint_identifier_user",
    "res_pjsip_caller_id",
    "res_pjsip_rfc3326",
    "res_pjsip_refer",
    "res_pjsip_header_funcs",
    "res_pjsip_nat",
    "res_pjsip_dtmf_info",
    "res_pjsip_diversion",
    "res_pjsip_authenticator_digest",
    "res_pjsip_outbound_authenticator_digest",
    "res_pjsip_outbound_registration",
    "res_pjsip_logger",
    "res_rtp_asterisk",
    # HTTP, websockets, ARI/Stasis (res_ari_* and res_stasis_* are added from the module dir)
    "res_http_websocket",
    "res_ari",
    "res_ari_model",
    "res_stasis",
    "app_stasis",
    "chan_websocket",
    # external media over AudioSocket / RTP
    "res_audiosocket",
    "app_audiosocket",
    "chan_audiosocket",
    "res_rtp_multicast",
    "chan_rtp",
    # bridges
    "bridge_simple",
    "bridge_softmix",
    "bridge_native_rtp",
    "bridge_holding",
    "bridge_builtin_features",
    "chan_bridge_media",
    # codecs and file formats
    "codec_ulaw",
    "codec_alaw",
    "codec_a_mu",
    "codec_gsm",
    "codec_resample",
    "format_wav",
    "format_wav_gsm",
    "format_gsm",
    "format_pcm",
    "format_sln",
    # dialplan and the applications/functions the lab dialplan uses
    "pbx_config",
    "res_clioriginate",
    "res_musiconhold",
    "app_dial",
    "app_playback",
    "app_echo",
    "app_senddtmf",
    "app_mixmonitor",
    "app_record",
    "app_exec",
    "app_stack",
    "app_verbose",
    "app_transfer",
    "app_waitforsilence",  # WaitForNoise/WaitForSilence: the demo party listens first
    "app_read",  # the DTMF party collects digits...
    "app_playtones",  # the card party's in-band tones...
    "app_while",  # ... one per key of its card number
    "func_env",  # ... and writes them to a file (FILE())
    "func_channel",
    "func_callerid",
    "func_strings",
    "func_logic",
    "func_cut",
    "func_global",
    "func_rand",  # voicedock-node: the first node tried is a random one
    "func_talkdetect",
    "func_timeout",  # the echo-then-talk party: TIMEOUT(absolute) ends its Echo()
)
# Loaded only when this Asterisk build ships them.
OPTIONAL_MODULES: tuple[str, ...] = ("res_websocket_client",)
FAMILY_PREFIXES: tuple[str, ...] = ("res_ari_", "res_stasis_")
# Members of the families above that need something the lab does not run.
FAMILY_EXCLUDED: frozenset[str] = frozenset({"res_stasis_test"})


@dataclass(frozen=True)
class ModuleSelection:
    load: tuple[str, ...]
    missing: tuple[str, ...]


def render_template(text: str, values: Mapping[str, str]) -> str:
    """Replace ``${NAME}`` for every NAME in ``values``; leave all other text alone."""

    def substitute(match: re.Match[str]) -> str:
        name = match.group(1)
        return values[name] if name in values else match.group(0)

    return _PLACEHOLDER.sub(substitute, text)


def placeholders(text: str) -> set[str]:
    return set(_PLACEHOLDER.findall(text))


def template_values(settings: LabSettings) -> dict[str, str]:
    """Values of the lab for the production and lab templates."""
    return {
        "APP_NAME": settings.app_name,
        "TRUNK_NAME": settings.trunk_name,
        "INTERNAL_TRUNK": settings.trunk_name,
        "SIP_BIND": settings.bind_address,
        "SIP_PORT": str(settings.sip_port),
        "CARRIER_SIP_PORT": str(settings.carrier_sip_port),
        "DEADTRUNK_PORT": str(settings.deadtrunk_port),
        "HTTP_BIND": settings.bind_address,
        "HTTP_PORT": str(settings.http_port),
        "AMI_BIND": settings.bind_address,
        "AMI_PORT": str(settings.ami_port),
        "AMI_PERMIT": f"{settings.bind_address}/255.255.255.255",
        "AMI_USER": settings.ami_user,
        "AMI_SECRET": settings.ami_secret,
        "ARI_USER": settings.ari_user,
        "ARI_PASSWORD": settings.ari_password,
        "MEDIA_WS_HOST": settings.bind_address,
        "MEDIA_WS_PORT": str(settings.media_ws_port),
        "RTP_START": str(settings.rtp_start),
        "RTP_END": str(settings.rtp_end),
        "RECORDINGS_DIR": settings.recordings_path,
        "SOUNDS_DIR": settings.sounds_path,
    }


def select_modules(
    available: Collection[str], absent: Collection[str] = frozenset()
) -> ModuleSelection:
    """Choose the modules to load from the names (without ``.so``) this build ships.

    ``absent``: required modules this Asterisk version does not have (``AsteriskBuild.
    absent_modules``); they load where present and are not missed where not.
    """
    present = set(available)
    required = [name for name in REQUIRED_MODULES if name not in absent]
    load = [name for name in required if name in present]
    missing = tuple(name for name in required if name not in present)
    optional = (*OPTIONAL_MODULES, *(name for name in REQUIRED_MODULES if name in absent))
    load += [name for name in optional if name in present and name not in load]
    family = sorted(
        name
        for name in present
        if name.startswith(FAMILY_PREFIXES) and name not in FAMILY_EXCLUDED and name not in load
    )
    return ModuleSelection(load=tuple(load + family), missing=missing)


def render_modules_conf(modules: Collection[str]) -> str:
    lines = [
        "; Generated by voicedock_lab: autoload=no, only what the lab needs.",
        "[modules]",
        "autoload = no",
        *(f"load = {name}.so" for name in modules),
    ]
    return "\n".join(lines) + "\n"


def render_asterisk_conf(settings: LabSettings, moddir: str) -> str:
    """asterisk.conf pointing every writable directory into the instance directory."""
    inst = settings.instance_path
    return (
        "; Generated by voicedock_lab for instance "
        f"{settings.instance}\n"
        "[directories]\n"
        f"astetcdir => {inst}/etc\n"
        f"astmoddir => {moddir}\n"
        f"astvarlibdir => {inst}/lib\n"
        f"astdbdir => {inst}/lib\n"
        f"astkeydir => {inst}/lib\n"
        "astdatadir => /usr/share/asterisk\n"
        "astagidir => /usr/share/asterisk/agi-bin\n"
        f"astspooldir => {inst}/spool\n"
        f"astrundir => {inst}/run\n"
        f"astlogdir => {inst}/log\n"
        f"astcachedir => {inst}/cache\n"
        "astsbindir => /usr/sbin\n"
        "\n[options]\n"
        "verbose = 3\n"
        f"systemname = voicedock-lab-{settings.instance}\n"
        "documentation_language = en_US\n"
        f"transmit_silence = {'yes' if settings.transmit_silence else 'no'}\n"
    )


LOGGER_CONF = (
    "; Generated by voicedock_lab\n"
    "[general]\n"
    "dateformat = %F %T.%3q\n"
    "[logfiles]\n"
    "console => notice,warning,error,verbose\n"
    "messages.log => notice,warning,error,verbose\n"
)


# Configs the lab does not use but Asterisk looks for: present and minimal, so the log shows
# real problems instead of "Unable to load config file" noise.
QUIET_STUBS: dict[str, str] = {
    "cdr.conf": "[general]\nenable = no\n",
    "cel.conf": "[general]\nenable = no\n",
    "ccss.conf": "[general]\n",
    "features.conf": "[general]\n",
    "acl.conf": "",
    "udptl.conf": "[general]\n",
    "pjproject.conf": "",
    "stasis.conf": "",
    "chan_websocket.conf": "",
    "musiconhold.conf": "[general]\n",
}


def find_project_root(start: Path | None = None) -> Path:
    """The directory holding sip_configs/ and dialplan/ ($VOICEDOCK_PROJECT_DIR wins)."""
    override = os.environ.get("VOICEDOCK_PROJECT_DIR")
    if override:
        return Path(override)
    here = (start or Path(__file__)).resolve()
    for candidate in (here, *here.parents):
        if (candidate / "sip_configs").is_dir() and (candidate / "dialplan").is_dir():
            return candidate
    raise LabError(
        "cannot find the project's sip_configs/ and dialplan/; set VOICEDOCK_PROJECT_DIR"
    )


def render_files(
    settings: LabSettings, project_root: Path, available_modules: Collection[str], moddir: str
) -> dict[str, str]:
    """Every file of the instance's etc dir, by name. Raises if a required module is missing."""
    selection = select_modules(available_modules, settings.build.absent_modules)
    if selection.missing:
        raise LabError(f"this Asterisk lacks required modules: {', '.join(selection.missing)}")
    values = template_values(settings)
    files: dict[str, str] = {}
    for name, relative in TEMPLATE_FILES.items():
        text = (project_root / relative).read_text()
        files[name] = render_template(text, values)
    files["modules.conf"] = render_modules_conf(selection.load)
    files["asterisk.conf"] = render_asterisk_conf(settings, moddir)
    files["logger.conf"] = LOGGER_CONF
    for name, text in QUIET_STUBS.items():
        files.setdefault(name, text)
    return files
