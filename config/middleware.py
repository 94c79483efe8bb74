"""Request middleware shared by every app."""

from __future__ import annotations

from django.urls import is_valid_path


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
