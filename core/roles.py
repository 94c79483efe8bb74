"""Roles are Django groups. Each app declares which permissions of its own each
role holds (`role_permissions` on its AppConfig); core only assembles the groups.

Migrations call `grant_role_permissions(apps, role_permissions())` so a fresh
database has the groups; each app's roles migration calls it again once its
own permissions exist.
"""

from __future__ import annotations

from django.apps import apps as live_apps
from django.contrib.auth.management import create_permissions


def role_permissions() -> dict[str, list[str]]:
    """Every role with the permissions the installed apps give it ("app.codename")."""
    roles: dict[str, list[str]] = {}
    for app_config in live_apps.get_app_configs():
        for role, perms in getattr(app_config, "role_permissions", {}).items():
            held = roles.setdefault(role, [])
            held.extend(perm for perm in perms if perm not in held)
    return roles


def grant_role_permissions(apps, roles: dict[str, list[str]]) -> None:
    """Create the groups and give them the listed permissions (idempotent).

    Permissions are created on post_migrate, which has not run yet inside a
    migration on a fresh database, so create them first. Permissions of apps
    not migrated yet are skipped; each app's roles migration calls this again.
    """
    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, verbosity=0, apps=apps)
        app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for role, perms in roles.items():
        group, _ = Group.objects.get_or_create(name=role)
        for dotted in perms:
            app_label, codename = dotted.split(".")
            permission = Permission.objects.filter(content_type__app_label=app_label, codename=codename).first()
            if permission is not None:
                group.permissions.add(permission)


def ensure_roles() -> None:
    """Create the role groups with the live app registry (after a flush, in tests)."""
    grant_role_permissions(live_apps, role_permissions())
