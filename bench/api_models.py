"""What typed API models cost on the hot endpoints: voicedock's own (its models, and the
request or command each makes), against bare msgspec and pydantic v2 models.

Three measurements, each the same work done three ways (what the service runs: the model of
``api/models/calls.py`` and the ``OutboundRequest`` or command it makes, an answer model's
``.of``; bare msgspec and pydantic v2 models of the same shapes with the same bounds):

- ``POST /calls/outbound`` body (already parsed JSON → a validated request);
- ``POST /calls/{id}/control`` body (a ``say`` and a ``transfer``, tagged by ``type``);
- ``GET /calls`` page of 100 calls → the JSON bytes of the response.

Reports µs per operation (best of ``--repeat`` runs of ``--number`` operations). Needs both
libraries installed (``pip install msgspec pydantic``); a missing one is reported as such.
"""

import argparse
import importlib.util
import os
import platform
import subprocess
import timeit
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

import voicedock
from voicedock.api.models.base import parse
from voicedock.api.models.calls import CallSummary, OutboundCallRequest, control_command
from voicedock.calls.outbound.request import RING_TIMEOUT_BOUNDS
from voicedock.domain.records import Call, CallStatus, Direction
from voicedock.domain.timestamps import iso

OUTBOUND = {
    "destination": "+31612345678",
    "assistant_id": "asst_sales-01",
    "number_id": "num_1",
    "ring_timeout_seconds": 40,
    "assistant_override": {"first_message": "Hello, this is Anna from Acme."},
}
CONTROL = (
    {"type": "say", "content": "One moment, I am checking that for you."},
    {"type": "transfer", "destination": "+31201234567", "mode": "warm", "summary": "billing"},
)
ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,79}$"
E164_PATTERN = r"^\+[1-9][0-9]{6,14}$"
TEXT_PATTERN = r"\S"


def calls_page(n: int = 100) -> list[Call]:
    start = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
    return [
        Call(
            id=f"call_{i:06d}",
            organization_id="acme",
            direction=Direction.OUTBOUND,
            status=CallStatus.ENDED,
            caller_phone="+31612345678",
            assistant_phone="+31201234567",
            agent_name="Anna",
            business_name="Acme",
            started_at=start + timedelta(seconds=i),
            ended_at=start + timedelta(seconds=i + 60),
            duration_seconds=60,
            summary="The caller asked about an invoice.",
            created_at=start + timedelta(seconds=i),
            updated_at=start + timedelta(seconds=i + 60),
        )
        for i in range(n)
    ]


def call_summary(call: Call) -> dict[str, Any]:
    """A ``GET /calls`` item as a mapping (what the bare models are built from)."""
    return {
        "id": call.id,
        "caller_phone": call.caller_phone,
        "assistant_phone": call.assistant_phone,
        "status": call.status.value,
        "error": call.error,
        "started_at": iso(call.started_at),
        "ended_at": iso(call.ended_at),
        "duration_seconds": call.duration_seconds,
        "summary": call.summary,
        "agent_name": call.agent_name,
        "business_name": call.business_name,
        "created_at": iso(call.created_at),
        "updated_at": iso(call.updated_at),
        "campaign_id": call.campaign_id,
    }


def voicedock_models() -> dict[str, Callable[[], object]]:
    import msgspec

    page = calls_page()
    encoder = msgspec.json.Encoder()
    return {
        "outbound": lambda: parse(OUTBOUND, OutboundCallRequest).request(),
        "control": lambda: [control_command(c) for c in CONTROL],
        "calls page": lambda: encoder.encode({"calls": [CallSummary.of(c) for c in page]}),
    }


def with_msgspec() -> dict[str, Callable[[], object]]:
    import msgspec
    from msgspec import Meta

    Id = Annotated[str, Meta(pattern=ID_PATTERN)]
    Text = Annotated[str, Meta(min_length=1, max_length=2000, pattern=TEXT_PATTERN)]

    class Override(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
        first_message: Text | None = None
        system_prompt: Text | None = None

    class Outbound(msgspec.Struct, forbid_unknown_fields=True):
        destination: Annotated[str, Meta(pattern=E164_PATTERN)]
        assistant_id: Id | None = None
        number_id: Id | None = None
        assistant_override: Override | None = None
        ring_timeout_seconds: (
            Annotated[int, Meta(ge=RING_TIMEOUT_BOUNDS[0], le=RING_TIMEOUT_BOUNDS[1])] | None
        ) = None

    class Say(msgspec.Struct, tag_field="type", tag="say", forbid_unknown_fields=True):
        content: Text

    class Transfer(msgspec.Struct, tag_field="type", tag="transfer", forbid_unknown_fields=True):
        destination: Annotated[str, Meta(max_length=80)]
        announcement: Text | None = None
        mode: Literal["blind", "warm"] = "blind"
        summary: Text | None = None

    class Summary(msgspec.Struct):
        id: str
        caller_phone: str | None
        assistant_phone: str | None
        status: str
        error: str | None
        started_at: str | None
        ended_at: str | None
        duration_seconds: int | None
        summary: str | None
        agent_name: str | None
        business_name: str | None
        created_at: str | None
        updated_at: str | None
        campaign_id: str | None

    class Page(msgspec.Struct):
        calls: list[Summary]

    # A union is looked up again on every convert: dispatch on the tag to a Struct instead.
    command: dict[str, Any] = {"say": Say, "transfer": Transfer}
    page = calls_page()
    encoder = msgspec.json.Encoder()

    def summary(c: Call) -> Summary:
        return Summary(**call_summary(c))  # type: ignore[arg-type]

    return {
        "outbound": lambda: msgspec.convert(OUTBOUND, Outbound),
        "control": lambda: [msgspec.convert(c, command[c["type"]]) for c in CONTROL],
        "calls page": lambda: encoder.encode(Page([summary(c) for c in page])),
    }


def with_pydantic() -> dict[str, Callable[[], object]]:
    from pydantic import BaseModel, ConfigDict, Field, TypeAdapter

    Id = Annotated[str, Field(pattern=ID_PATTERN)]
    Text = Annotated[str, Field(min_length=1, max_length=2000, pattern=TEXT_PATTERN)]
    strict = ConfigDict(extra="forbid")

    class Override(BaseModel):
        model_config = strict
        first_message: Text | None = None
        system_prompt: Text | None = None

    class Outbound(BaseModel):
        model_config = strict
        destination: Annotated[str, Field(pattern=E164_PATTERN)]
        assistant_id: Id | None = None
        number_id: Id | None = None
        assistant_override: Override | None = None
        ring_timeout_seconds: (
            Annotated[int, Field(ge=RING_TIMEOUT_BOUNDS[0], le=RING_TIMEOUT_BOUNDS[1])] | None
        ) = None

    class Say(BaseModel):
        model_config = strict
        type: Literal["say"]
        content: Text

    class Transfer(BaseModel):
        model_config = strict
        type: Literal["transfer"]
        destination: Annotated[str, Field(max_length=80)]
        announcement: Text | None = None
        mode: Literal["blind", "warm"] = "blind"
        summary: Text | None = None

    class Summary(BaseModel):
        id: str
        caller_phone: str | None
        assistant_phone: str | None
        status: str
        error: str | None
        started_at: str | None
        ended_at: str | None
        duration_seconds: int | None
        summary: str | None
        agent_name: str | None
        business_name: str | None
        created_at: str | None
        updated_at: str | None
        campaign_id: str | None

    class Page(BaseModel):
        calls: list[Summary]

    command: Any = TypeAdapter(Annotated[Say | Transfer, Field(discriminator="type")])
    page = calls_page()

    def summary(c: Call) -> Summary:
        return Summary.model_construct(**call_summary(c))

    return {
        "outbound": lambda: Outbound.model_validate(OUTBOUND, strict=True),
        "control": lambda: [command.validate_python(c, strict=True) for c in CONTROL],
        "calls page": lambda: Page.model_construct(
            calls=[summary(c) for c in page]
        ).model_dump_json(),
    }


def best_us(fn: Callable[[], object], number: int, repeat: int) -> float:
    return min(timeit.repeat(fn, number=number, repeat=repeat)) / number * 1e6


def version(name: str) -> str:
    if importlib.util.find_spec(name) is None:
        return "not installed"
    module = importlib.import_module(name)
    return str(getattr(module, "__version__", getattr(module, "VERSION", "?")))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--number", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    ways: dict[str, Callable[[], dict[str, Callable[[], object]]]] = {
        "voicedock (its models)": voicedock_models,
        f"msgspec {version('msgspec')}": with_msgspec,
        f"pydantic {version('pydantic')}": with_pydantic,
    }
    rows = []
    for label, make in ways.items():
        try:
            cases = make()
        except ImportError as exc:
            rows.append(f"| {label} | {exc} | | |")
            continue
        numbers = []
        for name, fn in cases.items():
            n = args.number // 20 if name == "calls page" else args.number
            numbers.append(f"{best_us(fn, n, args.repeat):.1f}")
        rows.append(f"| {label} | " + " | ".join(numbers) + " |")
    source = Path(voicedock.__file__).resolve().parents[2]
    commit = subprocess.run(
        ["git", "-C", str(source), "rev-parse", "--short", "HEAD"],
        capture_output=True,
        text=True,
        check=False,
    ).stdout.strip()
    print(f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.platform()}, ", end="")
    print(f"Python {platform.python_version()}; voicedock at {commit}")
    print(f"best of {args.repeat} runs; µs per operation (lower is better)\n")
    print("| way | POST /calls/outbound body | POST /calls/{id}/control (2 bodies) "
          "| GET /calls page of 100 → JSON |")  # fmt: skip
    print("|---|---|---|---|")
    print("\n".join(rows))
    print(f"\nload average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
