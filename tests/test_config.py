from __future__ import annotations

from pathlib import Path

import pytest

from voicedock.config import PolicySettings, load_settings
from voicedock.errors import ConfigError

pytestmark = pytest.mark.unit

EXAMPLE = Path(__file__).resolve().parents[1] / "voicedock.example.toml"


def test_example_config_loads_completely() -> None:
    s = load_settings(EXAMPLE, environ={})
    assert s.server.port == 8080
    assert s.trunks[0].endpoint == "carrier"
    assert s.numbers[0].number == "+31850835037"
    assert s.assistants[0].facts["opening hours|opening|open|hours"].startswith("We are open")
    assert s.pbx.asterisk.originate_via == "ari"


def test_defaults_without_a_file() -> None:
    s = load_settings(None, environ={})
    assert s.database.url.startswith("sqlite:///")
    assert s.numbers == []


def test_environment_overrides_nested_scalars() -> None:
    s = load_settings(
        EXAMPLE,
        environ={
            "VOICEDOCK_SERVER__PORT": "9001",
            "VOICEDOCK_PBX__ASTERISK__ORIGINATE_VIA": "ami",
            "VOICEDOCK_PBX__FREESWITCH__ALLOW_DEFAULT_PASSWORD": "true",
            "VOICEDOCK_PBX__ASTERISK__MEDIA_CLIENT_CONNECTION": "voicedock_media_2",
        },
    )
    assert s.server.port == 9001
    assert s.pbx.asterisk.media_client_connection == "voicedock_media_2"
    assert s.pbx.asterisk.originate_via == "ami"
    assert s.pbx.freeswitch.allow_default_password is True


def test_config_path_from_environment(tmp_path: Path) -> None:
    cfg = tmp_path / "c.toml"
    cfg.write_text("[server]\nport = 8123\n")
    assert load_settings(None, environ={"VOICEDOCK_CONFIG": str(cfg)}).server.port == 8123


@pytest.mark.parametrize(
    ("toml", "key"),
    [
        ("[server]\nport = 'x'\n", "server.port"),
        ("[server]\nport = 70000\n", "server.port"),
        ("[server]\nbogus = 1\n", "server.bogus"),
        ("[server]\nevent_loop = 'trio'\n", "server.event_loop"),
        ("[server]\ngc_thresholds = [10, 10, 10]\n", "server.gc_thresholds[0]"),
        ("[server]\ngc_thresholds = [2000, 10]\n", "server.gc_thresholds"),
        ("[server]\ngc_full_every_seconds = -1\n", "server.gc_full_every_seconds"),
        ("[pbx]\nkind = 'sip'\n", "pbx.kind"),
        ("[pbx.asterisk]\noriginate_via = 'both'\n", "pbx.asterisk.originate_via"),
        (
            "[pbx.asterisk]\nmedia_client_connection = 'media 2'\n",
            "pbx.asterisk.media_client_connection",
        ),
        ("[speech.echo]\nmax_delay_ms = 0\n", "speech.echo.max_delay_ms"),
        ("[speech.echo]\ncorrelation = 1.0\n", "speech.echo.correlation"),
        ("[speech.echo]\ncorrelation = 'high'\n", "speech.echo.correlation"),
        ("[speech.echo]\nmin_cancel_db = -3\n", "speech.echo.min_cancel_db"),
        ("[speech.echo]\nenabled = 'maybe'\n", "speech.echo.enabled"),
        ("[database]\nurl = 'mysql://x'\n", "database.url"),
        (
            "[[trunks]]\nname='t'\n[[numbers]]\nnumber='0612345678'\ntrunk='t'\norganization='o'\n",
            "numbers[0].number",
        ),
        (
            "[[trunks]]\nname='t'\n[[numbers]]\nnumber='+31612345678'\ntrunk='x'\norganization='o'\n",
            "numbers[0].trunk",
        ),
        ("[[trunks]]\nname='bad name'\n", "trunks[0].name"),
        ("[[trunks]]\nname='t'\norganizations=['']\n", "trunks[0].organizations[0]"),
        (
            "[[trunks]]\nname='t'\norganizations=['acme']\n"
            "[[numbers]]\nnumber='+31612345678'\ntrunk='t'\norganization='globex'\n",
            "numbers[0].organization",
        ),
        ("[[trunks]]\nname='t'\nendpoint='a/b'\n", "trunks[0].endpoint"),
        ("[[numbers]]\ntrunk='t'\norganization='o'\n", "numbers[0].number"),
        (
            "[pbx]\nkind = 'freeswitch'\n[pbx.freeswitch]\nesl_password='ClueCon'\n",
            "pbx.freeswitch.esl_password",
        ),
        ("[policy]\nallowed_prefixes = ['+31']\n", "policy.allowed_prefixes"),
        ("[policy]\nblocked_prefixes = ['+1900']\n", "policy.blocked_prefixes"),
        ("[policy]\nallowed_countries = ['nl']\n", "policy.allowed_countries[0]"),
        ("[policy]\nallowed_countries = ['NL', 'XX']\n", "policy.allowed_countries[1]"),
        ("[policy]\nrefused_number_types = ['expensive']\n", "policy.refused_number_types[0]"),
        ("[policy]\nextra_blocked_prefixes = ['31']\n", "policy.extra_blocked_prefixes[0]"),
        ("[policy]\nextra_blocked_prefixes = ['+']\n", "policy.extra_blocked_prefixes[0]"),
        ("[[trunks]]\nname='t'\nmax_cps=-1\n", "trunks[0].max_cps"),
        ("[[trunks]]\nname='t'\nmax_channels='many'\n", "trunks[0].max_channels"),
        (
            "[[limits.organizations]]\norganization='o'\nmax_concurrent_calls=-5\n",
            "limits.organizations[0].max_concurrent_calls",
        ),
        ("[rate_limits]\ncalls_per_second=-1\n", "rate_limits.calls_per_second"),
        ("[limits]\nopen_streams_per_key=-1\n", "limits.open_streams_per_key"),
        (
            "[limits]\nopen_streams_per_organization=100000\n",
            "limits.open_streams_per_organization",
        ),
        (
            "[limits]\nscheduled_calls_per_organization=-1\n",
            "limits.scheduled_calls_per_organization",
        ),
        ("[webhooks]\nconcurrency_per_endpoint=-1\n", "webhooks.concurrency_per_endpoint"),
        (
            "[webhooks]\nconcurrency_per_organization=1000\n",
            "webhooks.concurrency_per_organization",
        ),
        ("[limits]\npreviews_per_organization=-1\n", "limits.previews_per_organization"),
        ("[limits]\npreviews_per_node=0\n", "limits.previews_per_node"),
        ("[retention]\ncall_days=-1\n", "retention.call_days"),
        ("[retention]\ntranscript_days='forever'\n", "retention.transcript_days"),
        ("[console]\nsecure_cookie='maybe'\n", "console.secure_cookie"),
        ("[speech]\nsynthesis_queue=-1\n", "speech.synthesis_queue"),
        ("[listen]\nmax_listeners_per_call=0\n", "listen.max_listeners_per_call"),
        ("[listen]\nmax_listeners_per_organization=0\n", "listen.max_listeners_per_organization"),
        ("[listen]\nmax_backlog_ms=50\n", "listen.max_backlog_ms"),
        ("[listen]\nsupervisor_extension=' sales'\n", "listen.supervisor_extension"),
        (
            "[speech.fallback_plans]\nllm = [{provider='ollama', modle='x'}]\n",
            "speech.fallback_plans.llm[0].modle",
        ),
        (
            "[speech.fallback_plans]\nstt = [{language='en'}]\n",
            "speech.fallback_plans.stt[0].provider",
        ),
        (
            "[speech.fallback_plans]\ntts = [{provider='piper'}, {provider='openai'}, "
            "{provider='espeak-ng'}, {provider='piper'}]\n",
            "speech.fallback_plans.tts",
        ),
        (
            "[speech.fallback_plans]\nllm = [{provider='openai', api_key_ref='k'}]\n",
            "speech.fallback_plans.llm[0].api_key_ref",
        ),
        ("[speech.fallback_plans]\nvoice = []\n", "speech.fallback_plans.voice"),
    ],
)
def test_bad_value_names_the_key(tmp_path: Path, toml: str, key: str) -> None:
    cfg = tmp_path / "bad.toml"
    cfg.write_text(toml)
    with pytest.raises(ConfigError) as exc:
        load_settings(cfg, environ={})
    assert exc.value.key == key
    assert key in str(exc.value)


def test_retired_policy_keys_name_their_replacement(tmp_path: Path) -> None:
    """An old file is refused, not read with a weaker or different meaning."""
    cfg = tmp_path / "old.toml"
    cfg.write_text("[policy]\nblocked_prefixes = ['+1900']\n")
    with pytest.raises(ConfigError, match="extra_blocked_prefixes"):
        load_settings(cfg, environ={})
    cfg.write_text("[policy]\nallowed_prefixes = ['+']\n")
    with pytest.raises(ConfigError, match="allowed_countries"):
        load_settings(cfg, environ={})


def test_allowed_countries_default_to_the_caller_numbers_countries(tmp_path: Path) -> None:
    numbers = (
        "[[trunks]]\nname='t'\n"
        "[[numbers]]\nnumber='+31850835037'\ntrunk='t'\norganization='o'\n"
        "[[numbers]]\nnumber='+3222345678'\ntrunk='t'\norganization='p'\n"
    )
    cfg = tmp_path / "c.toml"
    cfg.write_text(numbers)
    assert load_settings(cfg, environ={}).policy.allowed_countries == ["BE", "NL"]
    cfg.write_text(numbers + "[policy]\nallowed_countries = []\n")
    assert load_settings(cfg, environ={}).policy.allowed_countries == []
    assert load_settings(None, environ={}).policy.allowed_countries == []


def test_bad_environment_value_names_the_key() -> None:
    with pytest.raises(ConfigError) as exc:
        load_settings(None, environ={"VOICEDOCK_SERVER__PORT": "eighty"})
    assert exc.value.key == "server.port"


def test_missing_and_invalid_files(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.toml", environ={})
    bad = tmp_path / "x.toml"
    bad.write_text("[server\n")
    with pytest.raises(ConfigError, match="TOML"):
        load_settings(bad, environ={})


def test_echo_gate_settings_reach_every_call() -> None:
    from voicedock.calls.live.config import with_echo_settings
    from voicedock.pipeline.hearing.echo import EchoGateConfig

    environ = {"VOICEDOCK_SPEECH__ECHO__CORRELATION": "0.9", "VOICEDOCK_SPEECH__ECHO__ENABLED": "0"}
    echo = load_settings(None, environ=environ).speech.echo
    assert with_echo_settings(None, echo).echo == EchoGateConfig(enabled=False, correlation=0.9)
    defaults = load_settings(None, environ={}).speech.echo
    assert with_echo_settings(None, defaults).echo == EchoGateConfig()


def test_the_supervisor_extension_must_be_a_destination_the_policy_allows() -> None:
    """Checked as every transfer destination is, when the service opens."""
    from voicedock.calls.listening import check_supervisor_extension
    from voicedock.config import ListenSettings

    policy = PolicySettings(allowed_countries=["NL"], internal_targets=["sales", "desk-*"])
    for allowed in ("", "sales", "desk-7", "+31201234567"):
        check_supervisor_extension(ListenSettings(supervisor_extension=allowed), policy)
    for refused in ("support", "+4930123456", "sales&PJSIP/x"):
        with pytest.raises(ConfigError) as exc:
            check_supervisor_extension(ListenSettings(supervisor_extension=refused), policy)
        assert exc.value.key == "listen.supervisor_extension"
