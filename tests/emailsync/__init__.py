"""Tests of the emailsync app."""
