"""``voicedock doctor`` on what a stolen API key could cost: the destination policy and the
call caps. The shipped example passes; each unsafe change to it is named."""

from __future__ import annotations

from pathlib import Path

import pytest

from voicedock.cli import main

pytestmark = pytest.mark.unit

EXAMPLE = Path(__file__).resolve().parents[1] / "voicedock.example.toml"


def doctor(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], *replacements: tuple[str, str]
) -> tuple[int, str]:
    text = EXAMPLE.read_text(encoding="utf-8")
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    config = tmp_path / "voicedock.toml"
    config.write_text(text, encoding="utf-8")
    capsys.readouterr()
    code = main(["doctor", "--config", str(config), "--offline"])  # the configuration alone
    return code, capsys.readouterr().out


def test_the_example_passes_with_no_warning(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert doctor(tmp_path, capsys) == (0, "OK\n")


@pytest.mark.parametrize(
    ("replacement", "warning"),
    [
        (
            ('allowed_countries = ["NL"]', 'allowed_countries = ["NL", "*"]'),
            'policy.allowed_countries has "*"',
        ),
        (
            ('refused_number_types = ["premium_rate", ', "refused_number_types = ["),
            "policy.refused_number_types leaves out 'premium_rate'",
        ),
        (
            ('"shared_cost", "personal_number"]', "]"),
            "policy.refused_number_types leaves out 'personal_number'",
        ),
        (
            ("[[limits.organizations]]\n", "[[limits.organizations]]\norganization = 'other'\n#"),
            "organization 'acme' has no concurrent-call limit",
        ),
        (("max_cps = 2 ", "max_cps = 0 "), "trunks[0] (carrier): no max_cps"),
        (("max_channels = 10 ", "max_channels = 0 "), "trunks[0] (carrier): no max_channels"),
    ],
)
def test_an_unsafe_change_is_named(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    replacement: tuple[str, str],
    warning: str,
) -> None:
    code, out = doctor(tmp_path, capsys, replacement)
    assert code == 1
    assert all(line.startswith("warning: ") for line in out.splitlines()), out
    assert warning in out


def test_no_call_rate_limit_is_named(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out = doctor(
        tmp_path,
        capsys,
        ("calls_per_second = 2 ", "calls_per_second = 0 "),
        ("organization_calls_per_second = 2", "organization_calls_per_second = 0"),
    )
    assert (code, out.count("warning:")) == (1, 1)
    assert "rate_limits: no calls_per_second" in out


def test_the_old_example_policy_and_caps_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """What the example shipped before: every country, no caps."""
    code, out = doctor(
        tmp_path,
        capsys,
        ('allowed_countries = ["NL"]', 'allowed_countries = ["*"]'),
        ("max_cps = 2 ", "max_cps = 0 "),
        ("max_channels = 10 ", "max_channels = 0 "),
        ('[[limits.organizations]]\norganization = "acme"\nmax_concurrent_calls = 5\n', ""),
        ("calls_per_second = 2 ", "calls_per_second = 0 "),
        ("organization_calls_per_second = 2", "organization_calls_per_second = 0"),
    )
    assert code == 1
    assert len(out.splitlines()) == 5, out


def test_a_node_that_places_no_calls_is_not_warned(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = doctor(
        tmp_path,
        capsys,
        ('kind = "asterisk"', 'kind = "none"'),
        ('allowed_countries = ["NL"]', 'allowed_countries = ["*"]'),
        ("max_cps = 2 ", "max_cps = 0 "),
    )
    assert (code, out) == (0, "OK\n")


# Assistants of the file whose calls could not be placed: a URL the egress policy refuses (a
# private address, not in [egress] allowed_networks), a voice this node does not have, a
# provider that needs sections the entry leaves out.
UNRUNNABLE_ASSISTANTS = """
[[assistants]]
name = "Sales"
organization = "acme"
llm_config = { provider = "openai", base_url = "http://10.0.0.5:8000/v1" }

[[assistants]]
name = "Night desk"
organization = "acme"
tts_config = { provider = "espeak-ng", voice = "no-such-voice" }

[[assistants]]
name = "Cloud"
organization = "acme"
provider = "openai"

[speech]
"""


def test_assistants_whose_calls_could_not_be_placed_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = doctor(tmp_path, capsys, ("\n[speech]\n", UNRUNNABLE_ASSISTANTS))
    assert code == 2  # as a configuration that does not load: voicedock serve refuses it
    lines = out.splitlines()
    assert lines[:3] == [
        "config: assistants[1].llm_config.base_url: host 10.0.0.5 is not an allowed provider "
        "host (assistant 'Sales' of organization 'acme')",
        "config: assistants[2].tts_config.voice: 'no-such-voice' is not one of this node's "
        "espeak-ng voices (GET /voices lists them) (assistant 'Night desk' of organization "
        "'acme')",
        "config: assistants[3]: provider openai requires both stt_config and tts_config "
        "(assistant 'Cloud' of organization 'acme')",
    ]
    assert "OK" not in lines
    # Allowed by the operator's [egress], the same URL passes (the network is only warned of).
    sales = UNRUNNABLE_ASSISTANTS.split("[[assistants]]")[1]
    code, out = doctor(
        tmp_path,
        capsys,
        ("\n[speech]\n", f"\n[[assistants]]{sales}[speech]\n"),
        ("allowed_networks = []", 'allowed_networks = ["10.0.0.5:8000"]'),
    )
    assert (code, out.splitlines()[-1]) == (0, "OK"), out
    assert "assistants[" not in out


# The operator's default fallback plans, each entry checked as an organization's would be.
BAD_LLM_PLAN = (
    "\nllm = [\n",
    '\nllm = [{ provider = "ollama", model = "llama3.2" }, { provider = "rule-basd" },\n',
)
BAD_TTS_PLAN = ("\ntts = []", '\ntts = [{ provider = "espeak-ng", voice = "no-such-voice" }]')


def test_default_plans_the_node_could_not_build_are_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out = doctor(tmp_path, capsys, BAD_LLM_PLAN, BAD_TTS_PLAN)
    assert code == 2  # voicedock serve refuses it as well
    assert out.splitlines()[:2] == [
        "config: speech.fallback_plans.llm[1].provider: 'rule-basd' is not one of mistral, "
        "offline, ollama, openai, openai-compatible, rule-based, rule_based, xai",
        "config: speech.fallback_plans.tts[0].voice: 'no-such-voice' is not one of this "
        "node's espeak-ng voices (GET /voices lists them)",
    ]
