"""The lab PBX: a real Asterisk 22 from a cached Debian testing chroot, on 127.0.0.1 only.

    voicedock lab up [--free-ports] | down | status | cli "core show channels"

    from voicedock.lab.server import LabAsterisk
    from voicedock.lab.settings import LabSettings
    with LabAsterisk(LabSettings().with_free_ports()) as lab:
        lab.ari_url, lab.ari_credentials, lab.ami_port, lab.recordings_dir
        lab.originate_inbound("+31850835037")   # the emulated carrier calls voicedock

Both ends of the "carrier" trunk live in the one Asterisk: voicedock dials
``PJSIP/<number>@carrier`` and reaches the emulated remote parties of dialplan/lab/. The
speaking parties play utterances that ``up()`` synthesises once per machine with the offline
TTS (``voicedock.lab.utterances``; ``LabAsterisk(utterances=False)`` skips them).
"""
