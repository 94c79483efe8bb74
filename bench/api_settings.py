"""Settings of bench/api_latency.py's gunicorn: the app's settings unchanged, with a
bench-only URLconf that adds one trivial DRF view (never in production URLs)."""

from config.settings import *  # noqa: F403

ROOT_URLCONF = "bench.api_urls"
