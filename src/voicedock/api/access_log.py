"""The web app's access log, with every phone number in the request line masked.

Inbound call ids carry the caller's number (``/calls/call-_+31612345678_…``), and some routes
and queries name a number (``DELETE /do-not-call/%2B31612345678``); aiohttp's own access log
would write them whole. ``AccessLog`` writes one line per request to ``aiohttp.access``::

    127.0.0.1 "GET /calls/call-_+316***78_Ab3dEf9hJk2m HTTP/1.1" 200 512 0.004s

with each number (``+`` or ``%2B`` then 7-15 digits) shortened by ``mask_numbers`` (an inbound
call id reads as ``mask_call_id`` shows it). Referer and User-Agent are left out: they are the
client's text, not needed to operate the node. Every server of the app logs with it
(``serve.py``: ``voicedock serve``, each of its workers).
"""

from __future__ import annotations

import logging

from aiohttp.abc import AbstractAccessLogger
from aiohttp.web import BaseRequest, StreamResponse

from voicedock.validation import mask_numbers


class AccessLog(AbstractAccessLogger):
    """One line per request, phone numbers masked (``aiohttp.access``, level INFO)."""

    def log(self, request: BaseRequest, response: StreamResponse, time: float) -> None:
        version = request.version
        self.logger.info(
            '%s "%s %s HTTP/%d.%d" %d %d %.3fs',
            request.remote or "-",
            request.method,
            mask_numbers(request.raw_path),
            version.major,
            version.minor,
            response.status,
            response.body_length,
            time,
        )

    @property
    def enabled(self) -> bool:
        return self.logger.isEnabledFor(logging.INFO)
