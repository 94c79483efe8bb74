"""Refuse an over-size upload while it streams, before anything is stored.

Without this the whole body was read (a 200 MiB upload held ~330 MB of worker
memory), stored and only then marked too large. This handler runs first in
FILE_UPLOAD_HANDLERS: it refuses a request whose declared length is over
INVOICE_UPLOAD_MAX_REQUEST_BYTES before reading it, and stops a file as soon as
the bytes received pass INVOICE_MAX_FILE_BYTES. The API answers 413 (see
config.middleware.ApiRequestLimitsMiddleware); no file reaches MEDIA_ROOT.
"""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.files.uploadhandler import FileUploadHandler


class UploadTooLarge(RequestDataTooBig):
    """A request body or an uploaded file over its limit; the message says which."""


def _mib(size: int) -> str:
    return f"{size / 1_048_576:.1f} MiB"


class SizeLimitUploadHandler(FileUploadHandler):
    """Counts each file's bytes as they arrive and stops the upload past the limit."""

    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        limit = settings.INVOICE_UPLOAD_MAX_REQUEST_BYTES
        if content_length and content_length > limit:
            raise UploadTooLarge(f"The upload is {_mib(content_length)}; one request may carry at most {_mib(limit)}.")
        return None  # let the next handlers read the body

    def new_file(self, field_name, file_name, content_type, content_length, charset=None, content_type_extra=None):
        super().new_file(field_name, file_name, content_type, content_length, charset, content_type_extra)
        self.received = 0
        if content_length and content_length > settings.INVOICE_MAX_FILE_BYTES:
            self._refuse(content_length)

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > settings.INVOICE_MAX_FILE_BYTES:
            self._refuse(self.received)
        return raw_data  # hand the chunk on to the memory or temporary-file handler

    def file_complete(self, file_size):
        return None  # the next handler builds the file

    def _refuse(self, size: int):
        raise UploadTooLarge(
            f"The file {self.file_name!r} is over the limit of "
            f"{_mib(settings.INVOICE_MAX_FILE_BYTES)} per file; nothing was stored."
        )
