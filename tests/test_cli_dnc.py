"""``voicedock dnc``: the operator's do-not-call list, for every organization (added, listed
with the file's entries, imported from a CSV with its bad rows reported, removed)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from test_cli import write_config
from voicedock.cli import main
from voicedock.store import open_store

pytestmark = pytest.mark.unit


def listed_for(db: Path, organization_id: str, number: str) -> bool:
    async def check() -> bool:
        store = await open_store(f"sqlite:///{db}")
        try:
            return await store.is_do_not_call(organization_id, number)
        finally:
            await store.aclose()

    return asyncio.run(check())


def test_the_operator_manages_the_list(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = write_config(tmp_path, '[compliance]\ndo_not_call = ["+4420*"]\n')
    args = ["--config", str(config)]
    assert main(["dnc", "add", *args, "+31612345678", "+1900*"]) == 0
    assert "added 2" in capsys.readouterr().out
    assert main(["dnc", "add", *args, "+31 6 1234"]) == 1
    assert "E.164" in capsys.readouterr().err
    csv = tmp_path / "dnc.csv"
    csv.write_text("number\n+31201234567\nnope\n+1900*\n", encoding="utf-8")
    assert main(["dnc", "import", *args, str(csv)]) == 1  # a row was refused
    captured = capsys.readouterr()
    assert "added 1, 1 listed, 1 refused" in captured.out
    assert "row 3:" in captured.err
    assert main(["dnc", "list", *args]) == 0
    assert capsys.readouterr().out.split("\n") == [
        "+4420*  (config)",
        "+1900*",
        "+31201234567",
        "+31612345678",
        "",
    ]
    db = tmp_path / "db.sqlite"
    # Every organization's calls pass it (any organization id: the operator's list).
    assert listed_for(db, "any-organization", "+19005550100")
    assert listed_for(db, "another", "+31612345678")
    assert not listed_for(db, "another", "+31612345679")
    assert main(["dnc", "remove", *args, "+1900*"]) == 0
    assert not listed_for(db, "any-organization", "+19005550100")
    assert main(["dnc", "remove", *args, "+1900*"]) == 1
    assert "not on the operator's list" in capsys.readouterr().err


def test_a_bad_entry_in_the_file_stops_start_up(tmp_path: Path) -> None:
    config = write_config(tmp_path, '[compliance]\ndo_not_call = ["+999*"]\n')
    assert main(["dnc", "list", "--config", str(config)]) == 2
