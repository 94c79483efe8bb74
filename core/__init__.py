"""What every app uses and is not about jobs: the audit trail, actors and
permission checks, role assembly, the error model, shared admin and API helpers."""
