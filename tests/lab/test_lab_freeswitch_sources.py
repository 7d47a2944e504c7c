"""Where the lab FreeSWITCH's sources come from: a folder, ``../shared/freeswitch``, or the
pinned upstream archives downloaded and checked against their SHA-256 (a loopback HTTP server
stands in for upstream; no FreeSWITCH needed)."""

from __future__ import annotations

import hashlib
import io
import re
import socket
import tarfile
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from voicedock_lab import freeswitch_build, freeswitch_sources
from voicedock_lab.errors import LabError
from voicedock_lab.freeswitch_build import SOURCE_NAMES, FreeswitchBuild, FreeswitchSources
from voicedock_lab.freeswitch_sources import PINNED, PinnedSource, locate

pytestmark = pytest.mark.unit


class Upstream:
    """A loopback HTTP server serving ``files`` (path → bytes) and counting the requests."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.requests: list[str] = []
        upstream = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                upstream.requests.append(self.path)
                body = upstream.files.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                del format, args

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"

    def pin(self, name: str, body: bytes, *, served: bytes | None = None) -> PinnedSource:
        """Serve ``served`` (default ``body``) under a pin recording ``body``'s sum."""
        file = f"{name}-0123abc.tar.gz"
        self.files[f"/{file}"] = body if served is None else served
        return PinnedSource(name, file, f"{self.base}/{file}", hashlib.sha256(body).hexdigest())


@pytest.fixture
def upstream() -> Iterator[Upstream]:
    server = Upstream()
    thread = threading.Thread(target=server.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.server.shutdown()
        server.server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def lonely(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A project with nothing beside it: no ``../shared``, no configured folder."""
    project = tmp_path / "lonely" / "voicedock"
    project.mkdir(parents=True)
    monkeypatch.setenv("VOICEDOCK_PROJECT_DIR", str(project))
    monkeypatch.delenv("VOICEDOCK_FREESWITCH_SOURCES", raising=False)
    return project


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])  # closed again when the block ends


def fake_archives(directory: Path, suffix: str = ".tar.xz") -> Path:
    directory.mkdir(parents=True)
    for name in SOURCE_NAMES:
        (directory / f"{name}-1{suffix}").write_bytes(name.encode())
    return directory


def test_the_pins_name_each_source_once_with_an_https_address_and_a_sum() -> None:
    assert tuple(pin.name for pin in PINNED) == SOURCE_NAMES
    for pin in PINNED:
        assert pin.url.startswith("https://"), pin
        assert re.fullmatch(r"[0-9a-f]{64}", pin.sha256), pin
        assert re.fullmatch(rf"{pin.name}-[0-9a-f.]+(-release)?\.tar\.gz", pin.file), pin


def test_a_folder_of_the_pinned_files_is_found_as_it_is(tmp_path: Path) -> None:
    """Files downloaded by hand (the names the message gives) make a sources folder."""
    folder = tmp_path / "by-hand"
    folder.mkdir()
    for pin in PINNED:
        (folder / pin.file).write_bytes(pin.name.encode())
    sources = FreeswitchSources.find(folder)
    assert {name: path.name for name, path in sources.tarballs.items()} == {
        pin.name: pin.file for pin in PINNED
    }
    assert sources.folder("freeswitch") == "freeswitch-1.11.1.-release"


def test_the_shared_folder_is_used_before_any_download(
    lonely: Path, upstream: Upstream, tmp_path: Path
) -> None:
    fake_archives(lonely.parent / "shared" / "freeswitch")
    pins = tuple(upstream.pin(name, b"never fetched") for name in SOURCE_NAMES)
    sources = locate(cache_dir=tmp_path / "cache", pinned=pins, log=False)
    assert sources.tarballs["freeswitch"] == lonely.parent / "shared/freeswitch/freeswitch-1.tar.xz"
    assert upstream.requests == []


def test_the_configured_folder_wins_and_keeps_the_key_of_its_files(
    lonely: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_archives(lonely.parent / "shared" / "freeswitch")
    configured = fake_archives(tmp_path / "configured")
    monkeypatch.setenv("VOICEDOCK_FREESWITCH_SOURCES", str(configured))
    sources = locate(cache_dir=tmp_path / "cache", log=False)
    assert sources.tarballs["libwsc"] == configured / "libwsc-1.tar.xz"
    assert sources.key() == FreeswitchSources.find(configured).key()


def test_without_a_folder_the_pinned_archives_are_downloaded_checked_and_kept(
    lonely: Path, upstream: Upstream, tmp_path: Path
) -> None:
    pins = tuple(upstream.pin(name, f"archive of {name}".encode()) for name in SOURCE_NAMES)
    cache = tmp_path / "cache"
    sources = locate(cache_dir=cache, pinned=pins, log=False)
    kept = cache / freeswitch_sources.DOWNLOADS_NAME
    assert sources.tarballs == {pin.name: kept / pin.file for pin in pins}
    assert sources.tarballs["spandsp"].read_bytes() == b"archive of spandsp"
    assert len(upstream.requests) == 5
    assert not list(kept.glob("*.part"))
    # Kept: the next run (or the other test worker) downloads nothing and keys the same build.
    again = locate(cache_dir=cache, pinned=pins, log=False)
    assert len(upstream.requests) == 5
    assert again.key() == sources.key()
    # A kept file that no longer has its sum is fetched again.
    sources.tarballs["sofia-sip"].write_bytes(b"damaged")
    locate(cache_dir=cache, pinned=pins, log=False)
    assert upstream.requests[5:] == [f"/{pins[1].file}"]
    assert sources.tarballs["sofia-sip"].read_bytes() == b"archive of sofia-sip"


def test_an_archive_with_another_sum_is_refused_and_not_kept(
    lonely: Path, upstream: Upstream, tmp_path: Path
) -> None:
    good = [upstream.pin(name, name.encode()) for name in SOURCE_NAMES[:2]]
    pins = (*good, upstream.pin("spandsp", b"the recorded one", served=b"something else"))
    cache = tmp_path / "cache"
    with pytest.raises(LabError) as caught:
        locate(cache_dir=cache, pinned=pins, log=False)
    message = str(caught.value)
    assert pins[2].url in message
    assert hashlib.sha256(b"something else").hexdigest() in message
    assert pins[2].sha256 in message
    kept = sorted(p.name for p in (cache / freeswitch_sources.DOWNLOADS_NAME).iterdir())
    assert kept == [".lock", pins[0].file, pins[1].file]


def test_a_closed_network_says_what_to_do_in_one_message(
    lonely: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    port = closed_port()
    pins = tuple(
        PinnedSource(p.name, p.file, f"http://127.0.0.1:{port}/{p.file}", p.sha256) for p in PINNED
    )
    with pytest.raises(LabError) as caught:
        locate(cache_dir=tmp_path / "cache", pinned=pins, log=False)
    message = str(caught.value)
    assert message.startswith("FreeSWITCH sources not found:")
    assert "set VOICEDOCK_FREESWITCH_SOURCES" in message
    assert f"place them in {lonely.parent / 'shared' / 'freeswitch'}" in message
    assert pins[0].url in message  # the address that failed, and why
    assert "refused" in message.lower()
    for pin in pins:  # every file to fetch elsewhere, with its address and sum
        assert f"{pin.file}\n    {pin.url}\n    sha256 {pin.sha256}" in message
    assert not list((tmp_path / "cache").rglob("*.tar.gz*"))


def test_looking_without_downloading_names_the_command_that_downloads(
    lonely: Path, upstream: Upstream, tmp_path: Path
) -> None:
    pins = tuple(upstream.pin(name, name.encode()) for name in SOURCE_NAMES)
    with pytest.raises(LabError, match="voicedock lab up --pbx freeswitch"):
        locate(cache_dir=tmp_path / "cache", pinned=pins, download=False, log=False)
    assert upstream.requests == []


def test_an_upstream_archive_unpacks_under_the_folder_named_like_its_file(tmp_path: Path) -> None:
    """GitHub names the top folder <repo>-<full commit>; the build script's paths follow the
    file name, for the pinned downloads as for ../shared/freeswitch's archives."""
    tree = io.BytesIO()
    commit = "0c7bcebef4f057b99832a338aafab7e379ef1395"
    comment = {"comment": commit}  # git archive's global header, as GitHub serves it
    with tarfile.open(
        fileobj=tree, mode="w:gz", format=tarfile.PAX_FORMAT, pax_headers=comment
    ) as archive:
        info = tarfile.TarInfo(f"spandsp-{commit}/autogen.sh")
        info.size = len(b"#!/bin/sh\n")
        archive.addfile(info, io.BytesIO(b"#!/bin/sh\n"))
    tarball = tmp_path / "spandsp-0c7bceb.tar.gz"
    tarball.write_bytes(tree.getvalue())
    sources = FreeswitchSources({"spandsp": tarball})
    target = FreeswitchBuild(tmp_path / "entry")
    target.entry_dir.mkdir()
    into = tmp_path / "build" / sources.folder("spandsp")
    into.parent.mkdir()
    freeswitch_build.unpack(target, "spandsp", tarball, into)
    assert (into / "autogen.sh").read_bytes() == b"#!/bin/sh\n"
    assert sorted(p.name for p in into.parent.iterdir()) == [tarball.name.removesuffix(".tar.gz")]
