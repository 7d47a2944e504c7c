"""Which Asterisk a lab runs: each version's Debian suite, packages, chroot and missing modules.

The lab runs Debian's own Asterisk packages in a debootstrap chroot. Asterisk 22 comes from
Debian testing; Asterisk 16.28 (what much of the installed base still runs) from Debian
bullseye. Each version has a chroot of its own in the lab's cache directory, so building or
running one never touches the other; the speaking parties' utterances are shared.

    build = asterisk_build("16")
    build.suite, build.packages, build.chroot_name, build.absent_modules
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_VERSION = "22"


@dataclass(frozen=True, slots=True)
class AsteriskBuild:
    """One Asterisk version the lab can run."""

    version: str
    """The major version, as ``voicedock lab up --asterisk`` takes it."""
    suite: str
    """The Debian suite debootstrap installs (``LabSettings.suite`` overrides it for 22)."""
    packages: tuple[str, ...]
    chroot_name: str
    """The chroot's directory in the lab's cache directory."""
    lock_name: str
    """The file lock serialising provisionings of this chroot."""
    absent_modules: frozenset[str]
    """Modules the lab loads where they exist that this version does not have (the lab runs
    without them: the media transports that came later)."""


_PACKAGES = ("asterisk", "asterisk-modules", "asterisk-core-sounds-en-gsm")

BUILDS: dict[str, AsteriskBuild] = {
    "22": AsteriskBuild(
        version="22",
        suite="testing",
        packages=_PACKAGES,
        chroot_name="root",
        lock_name=".provision.lock",
        absent_modules=frozenset(),
    ),
    # Debian bullseye: 1:16.28.0~dfsg-0+deb11u4. Its modules are in /usr/lib/asterisk/modules.
    # No chan_websocket (20.16/21.11/22.6 on) and no AudioSocket in Debian's build of 16.
    "16": AsteriskBuild(
        version="16",
        suite="bullseye",
        packages=_PACKAGES,
        chroot_name="root-asterisk16",
        lock_name=".provision-asterisk16.lock",
        absent_modules=frozenset(
            {
                "chan_websocket",
                "res_websocket_client",
                "res_audiosocket",
                "app_audiosocket",
                "chan_audiosocket",
            }
        ),
    ),
}

VERSIONS: tuple[str, ...] = tuple(BUILDS)


def asterisk_build(version: str) -> AsteriskBuild:
    """The lab build of ``version`` (``ValueError`` naming the versions the lab has)."""
    try:
        return BUILDS[version]
    except KeyError:
        raise ValueError(
            f"lab asterisk: no lab build of Asterisk {version!r} (have: {', '.join(VERSIONS)})"
        ) from None
