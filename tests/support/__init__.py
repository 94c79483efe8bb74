"""Helpers that run real services (IMAP server, ...) for the tests and benchmarks."""
