"""Request middleware shared by every app."""

from __future__ import annotations

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.http import JsonResponse
from django.urls import is_valid_path

from config.uploads import UploadTooLarge


class ApiTrailingSlashMiddleware:
    """Serve an API URL written without its trailing slash as if it had one.

    Django's APPEND_SLASH answers such a request with a redirect, which a client
    follows as a GET without the body (and in DEBUG a POST raises a RuntimeError,
    a 500). Scripts write both forms, so under /api/ the slash-less form is
    routed to the same view instead. It must come before CommonMiddleware.
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        path = request.path_info
        if path.startswith("/api/") and not path.endswith("/"):
            urlconf = getattr(request, "urlconf", None)
            if not is_valid_path(path, urlconf) and is_valid_path(f"{path}/", urlconf):
                request.path_info = f"{path}/"
                request.path = f"{request.path}/"
        return self.get_response(request)


class ApiRequestLimitsMiddleware:
    """Refuse an over-size API request body with a JSON 413 before it is read.

    Django's own limit (DATA_UPLOAD_MAX_MEMORY_SIZE) fires only once something reads
    the body, and then answers with an HTML 400; a client of the API needs JSON and
    the right status. The declared Content-Length is checked first; what is found
    while reading (RequestDataTooBig, too many fields or files) is turned into JSON
    here too. Multipart uploads have their own, larger limit and a per-file check
    while streaming (config.uploads).
    """

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path_info.startswith("/api/"):
            declared = _declared_length(request.META)
            limit = _body_limit(request.META.get("CONTENT_TYPE", ""))
            if limit is not None and declared > limit:
                return _json_error(413, f"The request body is {_mib(declared)}; the limit is {_mib(limit)}.")
        return self.get_response(request)

    def process_exception(self, request, exception):
        if not request.path_info.startswith("/api/"):
            return None
        if isinstance(exception, UploadTooLarge):
            return _json_error(413, str(exception))
        if isinstance(exception, RequestDataTooBig):
            limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
            return _json_error(
                413,
                f"The request body is over the limit of {_mib(limit)}." if limit else "The request body is too large.",
            )
        if isinstance(exception, (TooManyFieldsSent, TooManyFilesSent)):
            return _json_error(400, str(exception))
        return None


def _declared_length(meta) -> int:
    try:
        return max(int(meta.get("CONTENT_LENGTH") or 0), 0)
    except ValueError:
        return 0  # Django reads no body for a length it cannot parse


def _body_limit(content_type: str) -> int | None:
    if content_type.lower().startswith("multipart/"):
        return settings.INVOICE_UPLOAD_MAX_REQUEST_BYTES
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE


def _mib(size: int) -> str:
    return f"{size / 1_048_576:.1f} MiB"


def _json_error(status: int, detail: str) -> JsonResponse:
    # The error model's shape (core.api.error_body): `detail` for people, `code` for scripts.
    return JsonResponse({"detail": detail, "code": "too_large" if status == 413 else "invalid"}, status=status)
