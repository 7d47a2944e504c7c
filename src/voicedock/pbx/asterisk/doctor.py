"""``voicedock doctor --asterisk-config DIR``: check an Asterisk config directory for voicedock.

Files are read with pyst2's parser (``asterisk.config``) where it can: it handles ``[section]``,
``key = value`` and ``key => value`` (``exten =>``, ``same =>``). It raises ``ParseError`` on two
things pjsip.conf and extensions.conf routinely contain: template headers (``[name](!)``,
``[name](tpl1,tpl2)``) and ``#include`` / ``#tryinclude`` lines. For those lines
``_parse_file`` handles the header or include itself and hands only the remaining plain lines to
pyst2's ``Line``/``Item`` classes, so one code path serves every file. Includes are resolved
relative to the config directory, like Asterisk's ``astetcdir``; template options are copied
into the sections that inherit them.
"""

from __future__ import annotations

import importlib.util
import re
from dataclasses import dataclass, field
from importlib.metadata import distribution
from pathlib import Path
from types import ModuleType
from typing import Literal

from voicedock.config import Settings
from voicedock.errors import ConfigError
from voicedock.pbx.asterisk.ari.rest import ARI_CONNECTIONS
from voicedock.pbx.asterisk.node_apps import APP_VARIABLE, APPS_VARIABLE, NodeApps


def _load_pyst2_config() -> ModuleType:
    # Loaded from pyst2's own files: its top-level package name "asterisk" is easily shadowed
    # (e.g. by a tests/asterisk package on sys.path under pytest).
    path = Path(str(distribution("pyst2").locate_file("asterisk/config.py")))
    spec = importlib.util.spec_from_file_location("voicedock.pbx._pyst2_config", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"pyst2's asterisk.config not found at {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


_pyst2 = _load_pyst2_config()
Item, Line, ParseError = _pyst2.Item, _pyst2.Line, _pyst2.ParseError

Severity = Literal["error", "warning"]
_HEADER = re.compile(r"^\[([^\]]+)\]\s*(?:\(([^)]*)\))?$")
_INCLUDE = re.compile(r"^#(try)?include\s+[\"<]?([^\">]+)[\">]?$")
_WILDCARD_ADDRESSES = {"0.0.0.0", "::", "[::]"}
_DEFAULT_PASSWORDS = {"", "asterisk", "password", "secret", "changeme", "admin", "1234"}
# Modules voicedock needs at run time (ARI, Stasis, PJSIP trunks, dialplan); the media's are
# the transport's (MEDIA_MODULES).
NEEDED_MODULES: tuple[str, ...] = (
    *("res_http_websocket", "res_ari", "res_ari_channels", "res_ari_bridges", "res_ari_events"),
    *("res_stasis", "app_stasis", "res_pjsip", "res_pjsip_session", "chan_pjsip"),
    *("pbx_config", "app_dial"),
    # The inbound dialplan's voicedock-node context: Gosub, the live nodes' list, a random start;
    # voicedock-sip-domain: the host of a call's Request-URI (CHANNEL(pjsip,request_uri)).
    *("app_stack", "func_global", "func_cut", "func_rand", "func_logic", "func_channel"),
)
# A media transport's modules (media/choice): what carries the calls' audio.
MEDIA_MODULES: dict[str, tuple[str, ...]] = {
    "websocket": ("chan_websocket",),
    "rtp": ("chan_rtp", "res_rtp_asterisk"),
    "audiosocket": ("chan_audiosocket", "res_audiosocket"),
}
_PLACEHOLDER = re.compile(r"\$\{[A-Z][A-Z0-9_]*\}")
# Dialplan values legitimately hold ${EXTEN} and friends; these files must not hold any.
_NO_PLACEHOLDER_FILES = ("http.conf", "ari.conf", "manager.conf", "pjsip.conf", "modules.conf")


@dataclass(frozen=True)
class Finding:
    severity: Severity
    file: str
    section: str
    key: str
    message: str

    def __str__(self) -> str:
        where = self.file + (f" [{self.section}]" if self.section else "")
        where += f" {self.key}" if self.key else ""
        return f"{self.severity}: {where}: {self.message}"


@dataclass
class Section:
    name: str
    file: str
    is_template: bool = False
    options: list[tuple[str, str]] = field(default_factory=list)

    def get(self, key: str) -> str | None:
        """The last value of ``key`` (later lines override earlier ones, as in Asterisk)."""
        values = self.get_all(key)
        return values[-1] if values else None

    def get_all(self, key: str) -> list[str]:
        return [v for k, v in self.options if k.lower() == key.lower()]


def load_conf(directory: Path, name: str) -> list[Section] | None:
    """Sections of ``name`` and everything it includes, or None if the file does not exist."""
    path = directory / name
    if not path.is_file():
        return None
    sections: list[Section] = []
    _parse_file(directory, path, sections, depth=0)
    return [s for s in sections if not s.is_template]


def _parse_file(directory: Path, path: Path, sections: list[Section], depth: int) -> None:
    if depth > 10:
        raise ParseError(0, f"{path.name}: #include nested too deeply")
    file, current = path.name, None
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = Line(raw, number).line  # pyst2: strips the ';' comment and whitespace
        if not line:
            continue
        include = _INCLUDE.match(line)
        if include:
            for target in sorted(directory.glob(include.group(2).strip())):
                _parse_file(directory, target, sections, depth + 1)
            if not include.group(1) and not any(directory.glob(include.group(2).strip())):
                raise ParseError(number, f"{file}: #include {include.group(2)} not found")
            current = sections[-1] if sections else current  # Asterisk continues there
            continue
        header = _HEADER.match(line)
        if header:
            current = _new_section(file, header.group(1).strip(), header.group(2), sections)
            continue
        item = Item(line, number)
        if current is not None:
            current.options.append((item.name.strip(), item.value.strip()))


def _new_section(file: str, name: str, modifiers: str | None, sections: list[Section]) -> Section:
    if (modifiers or "").strip() == "+":  # [name](+): more options for an existing section
        existing = next((s for s in reversed(sections) if s.name == name), None)
        if existing is not None:
            return existing
    section = Section(name=name, file=file)
    for modifier in (m.strip() for m in (modifiers or "").split(",") if m.strip()):
        if modifier == "!":
            section.is_template = True
        elif modifier != "+":
            template = next((s for s in reversed(sections) if s.name == modifier), None)
            if template is not None:
                section.options.extend(template.options)
    sections.append(section)
    return section


def check(directory: Path, settings: Settings) -> list[str]:
    """Every problem as one line (``error: ...`` / ``warning: ...``); empty when all is well."""
    return [str(f) for f in find_problems(directory, settings)]


def find_problems(directory: Path, settings: Settings) -> list[Finding]:
    findings: list[Finding] = []
    checks = (_check_http, _check_ari, _check_manager, _check_pjsip, _check_dialplan)
    for run in (_check_placeholders, *checks, _check_modules):
        try:
            findings.extend(run(directory, settings))
        except _FileMissing as missing:
            findings.append(missing.finding)
        except (OSError, UnicodeDecodeError, ParseError) as exc:
            findings.append(Finding("error", run.__name__[7:], "", "", f"cannot read: {exc}"))
    return findings


def _first(sections: list[Section], name: str, *, type_: str | None = None) -> Section | None:
    for s in sections:
        if s.name == name and (type_ is None or (s.get("type") or "").lower() == type_):
            return s
    return None


def _yes(value: str | None) -> bool:
    return (value or "").strip().lower() in ("yes", "true", "y", "t", "1", "on")


def _host(address: str) -> str:
    return address.rsplit(":", 1)[0] if address.count(":") == 1 else address


class _FileMissing(Exception):
    """A file a check reads is not there: the check's one finding."""

    def __init__(self, file: str, severity: Severity) -> None:
        super().__init__(file)
        self.finding = Finding(severity, file, "", "", "file not found")


def _required(directory: Path, name: str, severity: Severity = "error") -> list[Section]:
    """The sections of the file ``name``; ``_FileMissing`` when there is none."""
    sections = load_conf(directory, name)
    if sections is None:
        raise _FileMissing(name, severity)
    return sections


def _check_placeholders(directory: Path, settings: Settings) -> list[Finding]:
    out: list[Finding] = []
    for name in _NO_PLACEHOLDER_FILES:
        for s in load_conf(directory, name) or []:
            for key, value in [("", s.name), *s.options]:
                for placeholder in _PLACEHOLDER.findall(value):
                    msg = f"template placeholder {placeholder} was never filled in"
                    out.append(Finding("error", s.file, s.name, key, msg))
    return out


def _check_http(directory: Path, settings: Settings) -> list[Finding]:
    sections = _required(directory, "http.conf")
    general = _first(sections, "general") or Section("general", "http.conf")
    out: list[Finding] = []
    if not _yes(general.get("enabled")):
        out.append(Finding("error", general.file, "general", "enabled", "must be yes (ARI)"))
    bind = general.get("bindaddr")
    if not bind:
        out.append(Finding("error", general.file, "general", "bindaddr", "not set"))
    elif _host(bind) in _WILDCARD_ADDRESSES and not _yes(general.get("tlsenable")):
        msg = f"{bind} without TLS exposes ARI and the unauthenticated /media to every network"
        out.append(Finding("warning", general.file, "general", "bindaddr", msg))
    if general.get("prefix"):
        msg = "voicedock expects no prefix (/ari and /media would move)"
        out.append(Finding("error", general.file, "general", "prefix", msg))
    return out + _check_sessions(general, settings)


# Asterisk's HTTP sessions when http.conf sets no sessionlimit.
DEFAULT_SESSION_LIMIT = 100
# What one node holds of them besides its calls' media: ARI's requests and its events websocket.
NODE_SESSIONS = ARI_CONNECTIONS + 1


def _check_sessions(general: Section, settings: Settings) -> list[Finding]:
    """``sessionlimit`` against what voicedock holds of Asterisk's HTTP sessions: each node's
    ARI (``NODE_SESSIONS``) and, with chan_websocket in server mode, one for each call's media
    (a session refused closes that call's media websocket during the upgrade)."""
    raw = general.get("sessionlimit")
    try:
        limit = int(raw) if raw else DEFAULT_SESSION_LIMIT
    except ValueError:
        return [Finding("error", general.file, "general", "sessionlimit", "must be a number")]
    asterisk = settings.pbx.asterisk
    websocket_media = asterisk.media_connection == "server" and asterisk.media_transport in (
        "auto",
        "websocket",
    )
    room = limit - NODE_SESSIONS
    said = f"{limit} HTTP sessions" + ("" if raw else " (not set: Asterisk's default)")
    if not websocket_media:
        if room >= 0:
            return []
        msg = f"{said}: a voicedock node's ARI alone may hold {NODE_SESSIONS}"
        return [Finding("warning", general.file, "general", "sessionlimit", msg)]
    trunks = [t for t in settings.trunks if t.pbx in ("", asterisk.name)]
    calls = sum(t.max_channels for t in trunks)
    if trunks and all(t.max_channels > 0 for t in trunks):
        if room >= calls:
            return []
        msg = (
            f"{said} leave room for {max(room, 0)} calls with media beside a node's ARI "
            f"({NODE_SESSIONS}), and the trunks allow {calls} at once: set at least "
            f"{calls + NODE_SESSIONS} ({NODE_SESSIONS} more for each other node)"
        )
        return [Finding("warning", general.file, "general", "sessionlimit", msg)]
    if raw:
        return []  # the operator sized it; the trunks say no number to check it against
    msg = (
        f"{said} leave room for {max(room, 0)} calls with chan_websocket media beside a node's "
        f"ARI ({NODE_SESSIONS}): set it to the calls expected at once plus {NODE_SESSIONS} for "
        "each node"
    )
    return [Finding("warning", general.file, "general", "sessionlimit", msg)]


def _check_ari(directory: Path, settings: Settings) -> list[Finding]:
    sections = _required(directory, "ari.conf")
    out: list[Finding] = []
    general = _first(sections, "general")
    if general is not None and general.get("enabled") and not _yes(general.get("enabled")):
        out.append(Finding("error", general.file, "general", "enabled", "must be yes"))
    wanted = settings.pbx.asterisk.ari_user
    user = _first(sections, wanted, type_="user")
    if user is None:
        msg = f"no [{wanted}] with type = user (pbx.asterisk.ari_user)"
        return [*out, Finding("error", "ari.conf", wanted, "", msg)]
    password = user.get("password") or ""
    plain = (user.get("password_format") or "plain").lower() == "plain"
    if not password:
        out.append(Finding("error", user.file, wanted, "password", "empty"))
    elif plain and password.lower() in _DEFAULT_PASSWORDS | {wanted.lower()}:
        out.append(Finding("error", user.file, wanted, "password", "a well-known default"))
    elif plain and settings.pbx.asterisk.ari_password not in ("", password):
        msg = "differs from pbx.asterisk.ari_password"
        out.append(Finding("error", user.file, wanted, "password", msg))
    if _yes(user.get("read_only")):
        msg = "must be no: voicedock originates, bridges and hangs up"
        out.append(Finding("error", user.file, wanted, "read_only", msg))
    return out


def _classes(value: str | None) -> set[str]:
    return {c.strip().lower() for c in (value or "").split(",") if c.strip()}


def _check_manager(directory: Path, settings: Settings) -> list[Finding]:
    # AMI is only used with originate_via = "ami"; otherwise its problems are warnings.
    severity: Severity = "error" if settings.pbx.asterisk.originate_via == "ami" else "warning"
    sections = _required(directory, "manager.conf", severity)
    out: list[Finding] = []
    general = _first(sections, "general") or Section("general", "manager.conf")
    if not _yes(general.get("enabled")):
        out.append(Finding(severity, general.file, "general", "enabled", "must be yes (AMI)"))
    bind = general.get("bindaddr")
    if bind and _host(bind) in _WILDCARD_ADDRESSES:
        msg = f"{bind}: AMI on every interface; bind it to voicedock's network only"
        out.append(Finding("warning", general.file, "general", "bindaddr", msg))
    wanted = settings.pbx.asterisk.ami_user
    user = _first(sections, wanted)
    if user is None:
        msg = f"no [{wanted}] (pbx.asterisk.ami_user)"
        return [*out, Finding(severity, "manager.conf", wanted, "", msg)]
    if not user.get("secret"):
        out.append(Finding(severity, user.file, wanted, "secret", "empty"))
    for key, needed in (("read", {"call", "originate"}), ("write", {"call", "originate"})):
        have = _classes(user.get(key))
        if "all" in have:
            msg = f"'all' grants far more than needed; use {','.join(sorted(needed))}"
            out.append(Finding("warning", user.file, wanted, key, msg))
        elif needed - have:
            msg = f"missing {','.join(sorted(needed - have))}"
            out.append(Finding(severity, user.file, wanted, key, msg))
    broad = _classes(user.get("write")) & {"command", "config"}
    if broad:
        msg = f"{','.join(sorted(broad))} not needed by voicedock (least privilege)"
        out.append(Finding("warning", user.file, wanted, "write", msg))
    for key in ("deny", "permit"):
        if not user.get_all(key) and not user.get("acl"):
            msg = "not set: any address may log in with this secret"
            out.append(Finding("warning", user.file, wanted, key, msg))
    return out


def _check_pjsip(directory: Path, settings: Settings) -> list[Finding]:
    sections = _required(directory, "pjsip.conf")
    out: list[Finding] = []
    for trunk in settings.trunks:
        name = trunk.endpoint or trunk.name
        endpoint = _first(sections, name, type_="endpoint")
        if endpoint is None:
            msg = f"no type = endpoint section for trunk {trunk.name!r}"
            out.append(Finding("error", "pjsip.conf", name, "", msg))
            continue
        out.extend(_check_endpoint(endpoint, sections))
    return out


def _check_endpoint(endpoint: Section, sections: list[Section]) -> list[Finding]:
    name, file = endpoint.name, endpoint.file
    out: list[Finding] = []
    aors = [a.strip() for a in (endpoint.get("aors") or "").split(",") if a.strip()]
    if not aors:
        out.append(Finding("error", file, name, "aors", "not set: outbound calls cannot dial"))
    for aor in aors:
        if _first(sections, aor, type_="aor") is None:
            out.append(Finding("error", file, name, "aors", f"no type = aor section [{aor}]"))
    if not endpoint.get("context"):
        out.append(Finding("error", file, name, "context", "not set: inbound calls are lost"))
    identified = any(
        (s.get("type") or "").lower() == "identify" and s.get("endpoint") == name and s.get("match")
        for s in sections
    )
    auth = endpoint.get("outbound_auth")
    registered = any(
        (s.get("type") or "").lower() == "registration" and s.get("outbound_auth") == auth
        for s in sections
    ) and _first(sections, auth or "", type_="auth")
    if not identified and not registered:
        msg = "neither an identify (match) nor a registration with outbound_auth"
        out.append(Finding("error", file, name, "", msg))
    if endpoint.get("direct_media") is None or _yes(endpoint.get("direct_media")):
        msg = "must be no (default yes): media has to pass Asterisk to reach voicedock"
        out.append(Finding("error", file, name, "direct_media", msg))
    media = endpoint.get("media_address")
    if media is not None and _host(media) in _WILDCARD_ADDRESSES | {""}:
        msg = f"{media!r} is not an address the far end can send RTP to"
        out.append(Finding("error", file, name, "media_address", msg))
    transport = endpoint.get("transport")
    if transport and _first(sections, transport, type_="transport") is None:
        msg = f"no type = transport section [{transport}]"
        out.append(Finding("error", file, name, "transport", msg))
    return out


_STASIS = re.compile(r"\bStasis\(\s*([^,)\s]+)\s*(?:,\s*([^,)\s]*))?\s*(?:,\s*([^)]*))?\)", re.I)


def _stasis_calls(context: Section) -> list[tuple[str, str, str]]:
    """``(app, first arg, rest)`` of every Stasis() in the context's exten/same lines."""
    return [
        (m.group(1), m.group(2) or "", (m.group(3) or "").strip())
        for key, value in context.options
        if key.lower() in ("exten", "same")
        for m in _STASIS.finditer(value)
    ]


_NODE_CONTEXT = "voicedock-node"
_GOSUB_NODE = re.compile(
    r"\bGosub\(\s*" + _NODE_CONTEXT + r"\s*,\s*s\s*,\s*1\s*\(\s*inbound\s*,\s*\$\{EXTEN\}", re.I
)


def _values(context: Section) -> list[str]:
    return [v for k, v in context.options if k.lower() in ("exten", "same")]


def _check_dialplan(directory: Path, settings: Settings) -> list[Finding]:
    sections = _required(directory, "extensions.conf")
    asterisk = settings.pbx.asterisk
    try:
        apps = NodeApps.of(settings)
    except ConfigError as exc:
        return [Finding("error", "extensions.conf", "", "", str(exc))]
    contexts: dict[str, Section] = {}
    for s in sections:  # a context split over several [name] blocks is one context
        merged = contexts.setdefault(s.name, Section(s.name, s.file))
        merged.options.extend(s.options)
    out: list[Finding] = []
    calls = [call for c in contexts.values() for call in _stasis_calls(c)]
    ours = {apps.base, apps.own, "${" + APP_VARIABLE + "}"}
    if not any(a in ours and arg == "outbound" for a, arg, _ in calls):
        severity: Severity = "error" if asterisk.originate_via == "ami" else "warning"
        msg = f"no context runs Stasis({apps.own},outbound,...) (needed for AMI originate)"
        out.append(Finding(severity, "extensions.conf", "", "", msg))
    pjsip = load_conf(directory, "pjsip.conf") or []
    endpoints = [_first(pjsip, t.endpoint or t.name, type_="endpoint") for t in settings.trunks]
    for name in sorted({e.get("context") or "" for e in endpoints if e} - {""}):
        msg = _inbound_problem(contexts, contexts.get(name) or Section(name, ""), apps)
        if msg:
            out.append(Finding("error", "extensions.conf", name, "", msg))
    transfers = contexts.get(asterisk.transfer_context)
    if transfers is None:
        msg = "missing (pbx.asterisk.transfer_context): transfers will fail"
        out.append(Finding("error", "extensions.conf", asterisk.transfer_context, "", msg))
    else:
        patterns = {v.split(",", 1)[0].strip() for k, v in transfers.options if k == "exten"}
        for target in settings.policy.internal_targets:
            if not any(ch in target for ch in "*?[") and target not in patterns:
                msg = f"no exten for internal target {target!r} (policy.internal_targets)"
                out.append(Finding("warning", transfers.file, transfers.name, "exten", msg))
    failed = [a for a, arg, _ in calls if arg == "transfer-failed"]
    if apps.several_nodes and failed and "${" + APP_VARIABLE + "}" not in failed:
        msg = (
            f"Stasis({failed[0]},transfer-failed,...) does not read {APP_VARIABLE}: a caller "
            "whose transfer failed does not return to the node serving the call"
        )
        out.append(Finding("warning", "extensions.conf", "", "", msg))
    return out


def _inbound_problem(contexts: dict[str, Section], trunk: Section, apps: NodeApps) -> str:
    """What keeps the trunk context from handing inbound calls to this node ("" if nothing):
    ``Gosub(voicedock-node,s,1(inbound,${EXTEN}))`` (any live node), or, for a single node,
    ``Stasis(<its app>,inbound,${EXTEN})``."""
    if any(_GOSUB_NODE.search(v) for v in _values(trunk)):
        node = contexts.get(_NODE_CONTEXT)
        if node is None:
            return f"Gosub({_NODE_CONTEXT},...) but there is no [{_NODE_CONTEXT}] context"
        text = " ".join(_values(node))
        stasis = [a for a, arg, _ in _stasis_calls(node) if arg == "${ARG1}"]
        if f"GLOBAL({APPS_VARIABLE})" not in text or not stasis:
            return (
                f"[{_NODE_CONTEXT}] does not try the live nodes' applications ({APPS_VARIABLE}): "
                "use the one in dialplan/asterisk/extensions_voicedock.conf"
            )
        return ""
    inbound = [
        a for a, arg, rest in _stasis_calls(trunk) if arg == "inbound" and "${EXTEN}" in rest
    ]
    if apps.own in inbound:
        return ""
    if inbound:
        return (
            f"trunk context hands inbound calls to Stasis({inbound[0]}) alone, and this node's "
            f"ARI application is {apps.own}: use Gosub({_NODE_CONTEXT},s,1(inbound,${{EXTEN}})) "
            "so that every live node answers them"
        )
    return (
        f"trunk context has no Stasis({apps.own},inbound,${{EXTEN}}) nor "
        f"Gosub({_NODE_CONTEXT},s,1(inbound,${{EXTEN}}))"
    )


def _check_modules(directory: Path, settings: Settings) -> list[Finding]:
    sections = load_conf(directory, "modules.conf")
    if sections is None:
        return []  # no modules.conf: Asterisk autoloads everything
    modules = _first(sections, "modules") or Section("modules", "modules.conf")
    loaded, refused = set(), set()
    for key, value in modules.options:
        module = value.removesuffix(".so").strip()
        if key.lower() in ("load", "require", "preload", "preload-require"):
            loaded.add(module)
        elif key.lower() == "noload":
            refused.add(module)
    autoload = modules.get("autoload")
    out: list[Finding] = []
    media = MEDIA_MODULES.get(settings.pbx.asterisk.media_transport)
    if media is None:  # auto: chan_websocket where the server has it, else RTP
        media = MEDIA_MODULES["rtp"]
        if "chan_websocket" in loaded or (_yes(autoload) and "chan_websocket" not in refused):
            media = MEDIA_MODULES["websocket"]
    for module in (*NEEDED_MODULES, *media):
        if module in refused:
            out.append(Finding("error", modules.file, "modules", "noload", f"{module} is needed"))
        elif autoload is not None and not _yes(autoload) and module not in loaded:
            msg = f"autoload = no and {module} is not loaded"
            out.append(Finding("error", modules.file, "modules", "load", msg))
    return out
