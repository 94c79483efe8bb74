"""Gunicorn settings read by every `gunicorn` started in this folder (make run, the
Procfile, the Docker image and compose), whatever the command line adds.

Header limits are stated here rather than trusted to defaults: a request line or
header block over them is refused by gunicorn with a 400 before Django sees it.
Gunicorn has no body limit; the body is limited by the app before it is read
(config.middleware.ApiRequestLimitsMiddleware, config.uploads), and a body
without Content-Length is read as empty by Django's WSGI handler.
"""

limit_request_line = 4094  # bytes in "POST /path?query HTTP/1.1"
limit_request_fields = 50  # header fields per request (gunicorn's default is 100)
limit_request_field_size = 8190  # bytes per header field
