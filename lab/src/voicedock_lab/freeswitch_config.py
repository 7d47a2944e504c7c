"""The lab FreeSWITCH's settings and its one generated ``freeswitch.xml`` (pure functions).

The file is assembled from the project's own templates: the Event Socket config and the ACL
lists of ``sip_configs/freeswitch/``, the IP-auth trunk gateway (``gateway_ip.xml``) and the
profile params (``sofia_profile_params.xml``) on the "voicedock" sofia profile, the production
dialplan ``dialplan/freeswitch/voicedock.xml``, and the lab's own parts: the two sofia profiles
(``sip_configs/lab/freeswitch_sofia.xml``) and the emulated carrier's parties
(``dialplan/lab/freeswitch.xml``). ``${NAME}`` placeholders in upper case are ours; every other
``${...}`` is a FreeSWITCH variable and is left alone.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from xml.sax.saxutils import escape

from voicedock_lab.config import render_template
from voicedock_lab.errors import LabError
from voicedock_lab.settings import BIND_ADDRESS, free_port_range, free_ports

_INSTANCE_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")
# Modules loaded, in order (all built by freeswitch_build, plus mod_audio_stream).
LOAD_MODULES = (
    "mod_console",
    "mod_logfile",
    "mod_event_socket",
    "mod_commands",
    "mod_dptools",
    "mod_expr",
    "mod_hash",
    "mod_dialplan_xml",
    "mod_sofia",
    "mod_loopback",
    "mod_native_file",
    "mod_sndfile",
    "mod_tone_stream",
    "mod_say_en",
    "mod_audio_stream",
)

# The lab's parties (dialplan/lab/freeswitch.xml), the same numbers as the Asterisk lab's.
ANSWERS = "+31612345678"
ECHO = "+31612345670"
HANGS_UP = "+31612345671"
DTMF = "+31612345672"
UTTERANCE = "+31612345673"
TALK_OVER = "+31612345674"
SILENT = "+31612345675"
DEMO = "+31612345676"  # listens to the greeting, then asks for an appointment (scripts/run.sh)
RECORDS_AND_ECHOES = "+31612345677"
VOICEMAIL = "+31612345690"  # a recorded greeting, a beep, then records the message
PERSON = "+31612345691"  # "Hello?", then silence
KEYPAD = "+31612345695"  # presses 1234# 3 s after answering (a short greeting's end)
CARD = "+31612345697"  # an in-band 9 at 1 s; from 6 s keys a card number and # (event + tone)
SCREENED = "+31612345698"  # a screening assistant's prompt, then "Hello, who is this?"
SCREENER_DECLINES = "+31612345699"  # a screening assistant's prompt, then it declines
LATE_ANSWER = "+31612345681"  # rings 2 s, then answers (FreeSWITCH lab only)
BUSY = "+31610000486"
NO_ANSWER = "+31610000480"
CONGESTION = "+31610000503"
REJECTED = "+31610000403"
UNKNOWN = "+31610000404"


@dataclass(frozen=True)
class FreeswitchLabSettings:
    """One lab FreeSWITCH instance: its name, ports and ESL password (saved while it runs)."""

    instance: str = "default"
    esl_port: int = 8021
    esl_password: str = field(default_factory=lambda: secrets.token_hex(12))
    sip_port: int = 5080  # the "voicedock" profile, where voicedock's trunk lives
    carrier_sip_port: int = 5090  # the emulated carrier's profile
    rtp_start: int = 16384
    rtp_end: int = 16582
    trunk_name: str = "carrier"
    service_dids: tuple[str, ...] = ("+31850835037", "+31850835038")
    transmit_silence: bool = False
    """The far parties send silence while they say nothing (``send_silence_when_idle``). Off,
    as a trunk or phone with silence suppression: no RTP between their words (at most a
    comfort noise packet after each 1.2 s of idleness, where comfort noise was negotiated)."""

    def __post_init__(self) -> None:
        if not _INSTANCE_NAME.fullmatch(self.instance):
            raise ValueError(f"lab instance: invalid name {self.instance!r}")
        if self.esl_password == "ClueCon":  # noqa: S105 - the one value refused
            raise ValueError("lab ESL password: not FreeSWITCH's stock ClueCon")
        if not re.fullmatch(r"[A-Za-z0-9]{8,64}", self.esl_password):
            raise ValueError("lab ESL password: 8-64 letters and digits")
        if not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", self.trunk_name):
            raise ValueError(f"lab trunk name: invalid {self.trunk_name!r}")
        for did in self.service_dids:
            if not re.fullmatch(r"\+[1-9][0-9]{6,14}", did):
                raise ValueError(f"lab DID: not E.164 {did!r}")

    @property
    def instance_path(self) -> str:
        """The instance directory as FreeSWITCH sees it (inside the chroot)."""
        return f"/var/lib/voicedock-lab/{self.instance}"

    @property
    def recordings_path(self) -> str:
        return f"{self.instance_path}/recordings"

    @property
    def sounds_path(self) -> str:
        return f"{self.instance_path}/sounds"

    def with_free_ports(self) -> FreeswitchLabSettings:
        """A copy whose TCP/UDP ports are free right now (for parallel test runs)."""
        ports = free_ports(3)
        rtp_base = free_port_range(200, half=1)  # the lab Asterisk uses half 0
        return replace(
            self,
            esl_port=ports[0],
            sip_port=ports[1],
            carrier_sip_port=ports[2],
            rtp_start=rtp_base,
            rtp_end=rtp_base + 198,  # FreeSWITCH rounds an odd end port down
        )

    def to_json(self) -> str:
        data = asdict(self)
        data["service_dids"] = list(self.service_dids)
        return json.dumps(data, indent=2) + "\n"

    @classmethod
    def from_json(cls, text: str) -> FreeswitchLabSettings:
        raw = json.loads(text)
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in raw.items() if k in known}
        if "service_dids" in values:
            values["service_dids"] = tuple(values["service_dids"])
        return cls(**values)


# The project's templates and what each becomes.
ESL_TEMPLATE = "sip_configs/freeswitch/event_socket.conf.xml"
ACL_TEMPLATE = "sip_configs/freeswitch/acl_voicedock.xml"
GATEWAY_TEMPLATE = "sip_configs/freeswitch/gateway_ip.xml"
PROFILE_PARAMS_TEMPLATE = "sip_configs/freeswitch/sofia_profile_params.xml"
DIALPLAN_TEMPLATE = "dialplan/freeswitch/voicedock.xml"
SOFIA_TEMPLATE = "sip_configs/lab/freeswitch_sofia.xml"
PARTIES_TEMPLATE = "dialplan/lab/freeswitch.xml"
TRANSFERS_TEMPLATE = "dialplan/lab/freeswitch_transfers.xml"


def template_values(settings: FreeswitchLabSettings) -> dict[str, str]:
    dids = "|".join(re.escape(d.removeprefix("+")) for d in settings.service_dids)
    return {
        "ESL_PORT": str(settings.esl_port),
        "ESL_PASSWORD": settings.esl_password,
        "VOICEDOCK_CIDR": f"{BIND_ADDRESS}/32",
        "CARRIER_CIDR": f"{BIND_ADDRESS}/32",
        "TRUNK_NAME": settings.trunk_name,
        "SIP_PROXY": f"{BIND_ADDRESS}:{settings.carrier_sip_port}",
        "SIP_PORT": str(settings.sip_port),
        "CARRIER_SIP_PORT": str(settings.carrier_sip_port),
        "DID_REGEX": dids,
        "TRANSFER_GATEWAY": settings.trunk_name,
        "RECORDINGS": settings.recordings_path,
        "SOUNDS": settings.sounds_path,
        "SEND_SILENCE_WHEN_IDLE": "-1" if settings.transmit_silence else "0",
    }


def _body(text: str) -> str:
    """A template's content without its ``<include>`` wrapper."""
    return re.sub(r"</?include>", "", text).strip()


def _with_lab_targets(dialplan: str, extensions: str) -> str:
    """The production dialplan with the lab's internal targets at the end of its transfer
    context (FreeSWITCH reads only the first context of a name, so they go inside it)."""
    start = dialplan.find('<context name="voicedock_transfer">')
    end = dialplan.find("</context>", start)
    if start < 0 or end < 0:
        raise LabError("dialplan/freeswitch/voicedock.xml has no voicedock_transfer context")
    return f"{dialplan[:end]}{extensions}\n  {dialplan[end:]}"


def render_freeswitch_xml(settings: FreeswitchLabSettings, project_root: Path) -> str:
    """The instance's whole ``freeswitch.xml``."""
    values = template_values(settings)

    def load(relative: str) -> str:
        path = project_root / relative
        try:
            return render_template(path.read_text(), values)
        except OSError as exc:
            raise LabError(f"cannot read template {path}: {exc}") from exc

    sofia_values = {
        "TRUNK_GATEWAY": _body(load(GATEWAY_TEMPLATE)),
        "PROFILE_PARAMS": _body(load(PROFILE_PARAMS_TEMPLATE)),
    }
    sofia = render_template(load(SOFIA_TEMPLATE), sofia_values)
    dialplan = _with_lab_targets(_body(load(DIALPLAN_TEMPLATE)), _body(load(TRANSFERS_TEMPLATE)))
    modules = "\n".join(f'        <load module="{m}"/>' for m in LOAD_MODULES)
    name = escape(settings.instance)
    return f"""<?xml version="1.0"?>
<!-- Generated by voicedock_lab.freeswitch_config for lab instance {name}. -->
<document type="freeswitch/xml">
  <section name="configuration" description="Various Configuration">
    <configuration name="switch.conf" description="Core Configuration">
      <settings>
        <param name="colorize-console" value="false"/>
        <param name="max-sessions" value="200"/>
        <param name="sessions-per-second" value="100"/>
        <param name="loglevel" value="debug"/>
        <param name="rtp-start-port" value="{settings.rtp_start}"/>
        <param name="rtp-end-port" value="{settings.rtp_end}"/>
        <param name="switchname" value="voicedock-lab-{name}"/>
      </settings>
    </configuration>
    <configuration name="modules.conf" description="Modules">
      <modules>
{modules}
      </modules>
    </configuration>
    <configuration name="console.conf" description="Console Logger">
      <mappings>
        <map name="all" value="console,debug,info,notice,warning,err,crit,alert"/>
      </mappings>
      <settings>
        <param name="colorize" value="false"/>
        <param name="loglevel" value="info"/>
      </settings>
    </configuration>
    <configuration name="logfile.conf" description="File Logging">
      <settings>
        <param name="rotate-on-hup" value="true"/>
      </settings>
      <profiles>
        <profile name="default">
          <settings>
            <param name="rollover" value="0"/>
          </settings>
          <mappings>
            <map name="all" value="debug,info,notice,warning,err,crit,alert"/>
          </mappings>
        </profile>
      </profiles>
    </configuration>
    <configuration name="acl.conf" description="Network Lists">
      <network-lists>
{_body(load(ACL_TEMPLATE))}
      </network-lists>
    </configuration>
{_body(load(ESL_TEMPLATE))}
{sofia}
  </section>
  <section name="dialplan" description="Regex/XML Dialplan">
{dialplan}
{_body(load(PARTIES_TEMPLATE))}
  </section>
</document>
"""
