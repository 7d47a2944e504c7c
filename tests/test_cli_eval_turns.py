"""``voicedock eval turns``: recorded calls replayed through each end-of-turn mode, driven
through the CLI on two-channel recordings made from the turn-taking corpus's voices."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile

from voicedock.cli import main
from voicedock.media.codecs import resample
from voicedock.pipeline.hearing import turn_model

BENCH = Path(__file__).resolve().parents[1] / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))

import turn_corpus as corpus  # noqa: E402

pytestmark = [
    pytest.mark.unit,
    pytest.mark.skipif(not Path("/usr/bin/espeak-ng").exists(), reason="needs espeak-ng"),
]

VOICE = corpus.Voice("espeak", "en-us+f3", "en", 0.95)
# A sentence broken by 900 ms: silence endpointing (600 ms) ends the turn, then the caller goes on.
BROKEN = corpus.ItemSpec(
    "broken",
    "pause",
    VOICE,
    (
        corpus.Segment("I would like to book an appointment for", 900),
        corpus.Segment("Tuesday morning, please.", 0),
    ),
)
FINISHED = corpus.ItemSpec(
    "finished", "complete", VOICE, (corpus.Segment("What time do you open tomorrow?", 0),)
)


@pytest.fixture(scope="module")
def items(tmp_path_factory: pytest.TempPathFactory) -> dict[str, corpus.Item]:
    built = corpus.build(tmp_path_factory.mktemp("corpus"), [BROKEN, FINISHED])
    return {item.spec.key: item for item in built}


def stereo(path: Path, caller: bytes, rate: int = corpus.RATE) -> Path:
    """A call recording: the caller left, a quiet assistant right."""
    left = np.frombuffer(caller, dtype=np.int16)
    if rate != corpus.RATE:
        left = resample(left, corpus.RATE, rate)
    soundfile.write(str(path), np.stack([left, np.zeros_like(left)], axis=1), rate, "PCM_16")
    return path


def rows(capsys: pytest.CaptureFixture[str]) -> list[dict[str, object]]:
    return [json.loads(line) for line in capsys.readouterr().out.splitlines() if line]


def test_a_known_cut_off_is_counted_and_a_clean_turn_is_not(
    tmp_path: Path, items: dict[str, corpus.Item], capsys: pytest.CaptureFixture[str]
) -> None:
    broken = stereo(tmp_path / "broken.wav", items["broken"].pcm)
    finished = stereo(tmp_path / "finished.wav", items["finished"].pcm)
    argv = ["eval", "turns", "--wav", str(broken), "--wav", str(finished)]
    assert main([*argv, "--modes", "silence", "--json"]) == 0
    out = {(r["call"], r["mode"]): r for r in rows(capsys)}

    cut = out[str(broken), "silence"]
    assert cut["turns"] == 2  # judged finished in the pause, then again at the real end
    assert cut["early_cut_offs"] == 1
    clean = out[str(finished), "silence"]
    assert (clean["turns"], clean["early_cut_offs"]) == (1, 0)
    assert 560 <= clean["answer_start_p50_ms"] <= 700  # type: ignore[operator]
    assert out["total", "silence"]["early_cut_offs"] == 1
    # The sweep: waiting a second of silence does not cut the 900 ms pause.
    assert out[str(broken), "silence end_silence_ms=1000"]["early_cut_offs"] == 0
    assert out[str(broken), "silence end_silence_ms=400"]["early_cut_offs"] == 1

    assert main([*argv, "--modes", "silence", "--no-sweep"]) == 0
    table = capsys.readouterr().out
    assert "| call | mode | turns | early cut-offs |" in table
    assert f"| {broken} | silence | 2 | 1 (50.0 %) |" in table
    assert "end_silence_ms" not in table


@pytest.mark.skipif(not turn_model.installed(), reason="needs the turn model's weights")
def test_both_modes_side_by_side(
    tmp_path: Path, items: dict[str, corpus.Item], capsys: pytest.CaptureFixture[str]
) -> None:
    finished = stereo(tmp_path / "finished.wav", items["finished"].pcm)
    assert main(["eval", "turns", "--wav", str(finished), "--no-sweep", "--json"]) == 0
    out = {(r["call"], r["mode"]): r for r in rows(capsys)}
    assert set(out) == {(str(finished), "silence"), (str(finished), "model")} | {
        ("total", "silence"),
        ("total", "model"),
    }
    model = out[str(finished), "model"]
    assert model["model_predictions"] >= 1  # type: ignore[operator]
    assert model["early_cut_offs"] == 0


def test_another_rate_is_resampled_and_judged_the_same(
    tmp_path: Path, items: dict[str, corpus.Item], capsys: pytest.CaptureFixture[str]
) -> None:
    broken = stereo(tmp_path / "broken-44k.wav", items["broken"].pcm, rate=44100)
    assert main(["eval", "turns", "--wav", str(broken), "--modes", "silence", "--json"]) == 0
    out = {(r["call"], r["mode"]): r for r in rows(capsys)}
    assert out[str(broken), "silence"]["early_cut_offs"] == 1


def test_a_mono_file_and_an_unknown_call_are_refused(
    tmp_path: Path, items: dict[str, corpus.Item], capsys: pytest.CaptureFixture[str]
) -> None:
    mono = tmp_path / "mono.wav"
    soundfile.write(str(mono), np.frombuffer(items["finished"].pcm, dtype=np.int16), 8000)
    assert main(["eval", "turns", "--wav", str(mono)]) == 1
    assert "1 channel(s); a call recording has two" in capsys.readouterr().err

    config = tmp_path / "voicedock.toml"
    config.write_text(f'[recordings]\ndirectory = "{tmp_path / "rec"}"\n', encoding="utf-8")
    (tmp_path / "rec" / "org_1").mkdir(parents=True)
    call_id = "call-outbound-0123456789abcdef"
    argv = ["eval", "turns", "--config", str(config), "--call", call_id]
    assert main(argv) == 1
    assert f"no recording of call '{call_id}'" in capsys.readouterr().err

    # The same call once recorded is found under its organization.
    stereo(tmp_path / "rec" / "org_1" / f"{call_id}.wav", items["finished"].pcm)
    assert main([*argv, "--modes", "silence", "--no-sweep", "--json"]) == 0
    out = {(r["call"], r["mode"]): r for r in rows(capsys)}
    assert out[call_id, "silence"]["turns"] == 1

    assert main(["eval", "turns", "--wav", str(mono), "--modes", "loud"]) == 1
    assert "unknown mode 'loud'" in capsys.readouterr().err


def test_speech_over_the_reply_is_a_barge_in_and_a_short_noise_is_a_false_one(
    tmp_path: Path, items: dict[str, corpus.Item], capsys: pytest.CaptureFixture[str]
) -> None:
    reply = np.frombuffer(items["finished"].pcm, dtype=np.int16)  # the assistant speaking
    start = corpus.LEAD_MS * 8 + 4000  # half a second into the reply
    talk = np.zeros_like(reply)  # the caller talks over it, for a second
    caller_words = np.frombuffer(items["broken"].pcm, dtype=np.int16)[corpus.LEAD_MS * 8 :]
    talk[start : start + 8000] = caller_words[:8000]
    noise = np.zeros_like(reply)  # a knock on the handset: 300 ms, under a real barge-in
    knock = np.random.default_rng(7).normal(0, 6000, 2400).clip(-32768, 32767)
    noise[start : start + 2400] = knock.astype(np.int16)
    paths = []
    for name, caller in (("talk", talk), ("knock", noise)):
        path = tmp_path / f"{name}.wav"
        soundfile.write(str(path), np.stack([caller, reply], axis=1), corpus.RATE, "PCM_16")
        paths += ["--wav", str(path)]
    argv = ["eval", "turns", *paths, "--modes", "silence", "--no-sweep", "--json"]
    assert main(argv) == 0
    out = {Path(str(r["call"])).stem: r for r in rows(capsys)}
    assert (out["talk"]["barge_ins"], out["talk"]["missed_barge_ins"]) == (1, 0)
    assert out["talk"]["false_barge_ins"] == 0
    assert out["knock"]["barge_ins"] == 0
    assert out["knock"]["false_barge_ins"] == 1  # it stopped the assistant: a false barge-in

    # Asked to count only speech of 2 s over the reply as a barge-in, the talk is a false one.
    assert main([*argv, "--barge-in-ms", "2000"]) == 0
    out = {Path(str(r["call"])).stem: r for r in rows(capsys)}
    assert (out["talk"]["barge_ins"], out["talk"]["false_barge_ins"]) == (0, 1)
