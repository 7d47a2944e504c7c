"""schemathesis's command line as tests/api/test_fuzz.py runs it: ``python -P
schemathesis_process.py ARGS`` takes the arguments of ``schemathesis`` and runs the same cases
and checks, in a process set up to spend less on them. Its environment is the test's
(``process_environment``).

- Its cyclic garbage collector's oldest generation is looked at after 1,000 collections of the
  younger ones instead of 10: its heap grows to about 2.5 GB of the strategies and cases it
  keeps, and each full collection went over all of it (the other half: 27 of them, 6 s of its
  CPU; now 2, 0.1 s, the same peak memory).
- Its HTTP client (requests) no longer reads the environment on each request: proxies from the
  environment (two walks over every variable, per request) and ``~/.netrc`` (two stats). The app
  is on 127.0.0.1 at a port of its own, over plain http: no proxy, netrc or CA bundle applies.
  Measured alone: 2.0 s of CPU per 18,000 requests with 35 variables, 6.2 s with 135.
- Its memory allocator, which the test chooses before the process starts
  (``process_environment``). Most of its CPU builds JSON Schema strategies and validators from
  the assistant configuration's large schemas (jsonschema_rs, in Rust), whose regular
  expressions compile through many small allocations: glibc's malloc and free were a sixth of
  its samples (perf), besides 3 million page faults as it unmapped memory and mapped it again.
  With jemalloc the calls half's CPU went from 66-68 s to 53-54 s (its peak memory, 3.6 GB,
  within 3 %); with glibc's malloc tuned (``GLIBC_TUNABLES``), 58-63 s.
"""

from __future__ import annotations

import ctypes.util
import gc
import sys
from collections.abc import Mapping

# jemalloc keeps what the process frees (no decay: it ends within minutes, its peak is the same).
JEMALLOC_CONF = "dirty_decay_ms:-1,muzzy_decay_ms:-1"
# Without jemalloc, glibc's malloc without its fast bins (consolidating them: 6 % of the samples)
# and keeping what it frees instead of unmapping it and mapping it again (page faults).
GLIBC_TUNABLES = ":".join(
    (
        "glibc.malloc.mxfast=0",
        "glibc.malloc.mmap_threshold=1073741824",
        "glibc.malloc.trim_threshold=4294967296",
        "glibc.malloc.top_pad=268435456",
    )
)


def process_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """``environ`` for the schemathesis process, with its allocator: jemalloc where the machine
    has it (scripts/bootstrap.sh installs libjemalloc2), glibc's malloc tuned otherwise."""
    env = dict(environ)
    jemalloc = ctypes.util.find_library("jemalloc")
    if jemalloc is not None:
        env["LD_PRELOAD"] = " ".join(filter(None, (jemalloc, env.get("LD_PRELOAD"))))
        env["MALLOC_CONF"] = JEMALLOC_CONF
    else:
        env["GLIBC_TUNABLES"] = ":".join(filter(None, (env.get("GLIBC_TUNABLES"), GLIBC_TUNABLES)))
    return env


def _requests_without_environment() -> None:
    """Every requests session schemathesis makes ignores the environment (``trust_env``)."""
    import requests

    make = requests.Session.__init__

    def __init__(self: requests.Session) -> None:
        make(self)
        self.trust_env = False

    requests.Session.__init__ = __init__  # type: ignore[method-assign]


def main() -> None:
    gc.set_threshold(700, 10, 1000)
    _requests_without_environment()
    from schemathesis.cli import schemathesis

    sys.argv[0] = "schemathesis"
    sys.exit(schemathesis())


if __name__ == "__main__":
    main()
