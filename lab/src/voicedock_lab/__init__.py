"""The lab PBX: a real Asterisk 22 from a cached Debian testing chroot, or Debian bullseye's
Asterisk 16.28 from a chroot of its own (``LabSettings(asterisk="16")``, ``voicedock lab up
--asterisk 16``), or a FreeSWITCH built from its upstream sources (``voicedock_lab.freeswitch``),
on 127.0.0.1 only. Its own
distribution, ``voicedock-lab`` (lab/pyproject.toml), beside the service's: it may import
voicedock, never the other way round, and it adds ``voicedock lab`` by an entry point.

    voicedock lab up [--free-ports] [--asterisk 16] | down | status | cli "core show channels"

    from voicedock_lab.server import LabAsterisk
    from voicedock_lab.settings import LabSettings
    with LabAsterisk(LabSettings().with_free_ports()) as lab:
        lab.ari_url, lab.ari_credentials, lab.ami_port, lab.recordings_dir
        lab.originate_inbound("+31850835037")   # the emulated carrier calls voicedock

Both ends of the "carrier" trunk live in the one Asterisk: voicedock dials
``PJSIP/<number>@carrier`` and reaches the emulated remote parties of dialplan/lab/. The
speaking parties play utterances that ``up()`` synthesises once per machine with the offline
TTS (``voicedock_lab.utterances``; ``LabAsterisk(utterances=False)`` skips them).
"""
