"""The authentication backend: Django's ModelBackend, with a user's permissions
read in one statement.

ModelBackend reads a user's own permissions and their groups' permissions with
two ORM queries the first time a request asks `has_perm`; building those two
joins costs about 1.5 ms of CPU, a quarter of what a job trigger through the API
spends in Python (docs/benchmarks.md "API latency under load"). This backend asks
the same question in one SQL statement. The answer is the same set
(`app_label.codename` of every permission held directly or through a group,
every permission for an active superuser, nothing for an inactive user), read
fresh on every request: a permission taken away counts from the next request.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.auth.models import Group, Permission
from django.contrib.contenttypes.models import ContentType
from django.db import connection


def _through(model: Any, name: str) -> Any:
    """The _meta of a many-to-many field's table."""
    return model._meta.get_field(name).remote_field.through._meta


@cache
def _all_permissions_sql() -> str:
    user_model = get_user_model()
    user_permissions = _through(user_model, "user_permissions")
    user_groups = _through(user_model, "groups")
    group_permissions = _through(Group, "permissions")
    qn = connection.ops.quote_name

    def column(meta, model) -> str:
        return qn(meta.get_field(model).column)

    return (
        f"SELECT ct.{qn('app_label')}, p.{qn('codename')} "  # noqa: S608 (table names only, no input)
        f"FROM {qn(Permission._meta.db_table)} p "
        f"JOIN {qn(ContentType._meta.db_table)} ct ON ct.{qn('id')} = p.{qn('content_type_id')} "
        f"WHERE p.{qn('id')} IN ("
        f"SELECT {column(user_permissions, 'permission')} FROM {qn(user_permissions.db_table)} "
        f"WHERE {column(user_permissions, user_model._meta.model_name)} = %s "
        f"UNION SELECT gp.{column(group_permissions, 'permission')} FROM {qn(group_permissions.db_table)} gp "
        f"JOIN {qn(user_groups.db_table)} ug "
        f"ON ug.{column(user_groups, 'group')} = gp.{column(group_permissions, 'group')} "
        f"WHERE ug.{column(user_groups, user_model._meta.model_name)} = %s)"
    )


class OneQueryModelBackend(ModelBackend):
    """ModelBackend whose `get_all_permissions` (behind `has_perm`) is one SQL statement."""

    def get_all_permissions(self, user_obj, obj=None):
        if not user_obj.is_active or user_obj.is_anonymous or obj is not None:
            return set()
        if user_obj.is_superuser:
            return super().get_all_permissions(user_obj, obj)
        if not hasattr(user_obj, "_perm_cache"):
            with connection.cursor() as cursor:
                cursor.execute(_all_permissions_sql(), [user_obj.pk, user_obj.pk])
                user_obj._perm_cache = {f"{app_label}.{codename}" for app_label, codename in cursor.fetchall()}
        return user_obj._perm_cache
