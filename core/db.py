"""Database helpers every app may use."""

from __future__ import annotations

from typing import Any

from django.db import connection, models
from django.db.models.sql import InsertQuery


def insert_together(*objs: models.Model) -> None:
    """INSERT unsaved model instances in one statement (PostgreSQL: data-modifying
    CTEs), so they commit together in one round trip where `save()` on each inside
    `atomic()` needs BEGIN, one INSERT each and COMMIT. Called in autocommit, the
    statement is its own transaction (a durable commit); inside `atomic()` it is
    part of the caller's.

    The same columns and values as `save(force_insert=True)` (defaults,
    `auto_now_add`), but no `pre_save` / `post_save` signals. Each object's
    primary key is set from the database (auto keys) and it counts as saved.
    """
    parts, params = [], []
    for obj in objs:
        meta: Any = obj._meta
        pk_set = obj._is_pk_set()  # type: ignore[attr-defined]  # Django 5.2, not in the stubs yet
        fields = [f for f in meta.local_concrete_fields if not f.generated and (pk_set or f is not meta.auto_field)]
        query = InsertQuery(type(obj))
        query.insert_values(fields, [obj])
        [(sql, values)] = query.get_compiler(connection=connection).as_sql()
        parts.append(f"{sql} RETURNING {connection.ops.quote_name(meta.pk.column)}")
        params.extend(values)
    names = [f"i{index}" for index in range(len(objs))]
    ctes = ", ".join(f"{name} AS ({part})" for name, part in zip(names, parts, strict=True))
    select = ", ".join(f"(SELECT * FROM {name})" for name in names)  # noqa: S608 (no input in it)
    with connection.cursor() as cursor:
        cursor.execute(f"WITH {ctes} SELECT {select}", params)
        keys = cursor.fetchone()
    for obj, key in zip(objs, keys, strict=True):
        obj.pk = obj._meta.pk.to_python(key)
        obj._state.adding = False
        obj._state.db = connection.alias
