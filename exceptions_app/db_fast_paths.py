"""Database tuning, kept out of the business code: the few places where a hot statement needs more
than the ORM gives. Each is measured (docs/benchmarks.md) and each leans on something that can
change under us, so tests/test_db_fast_paths.py fails loudly if it does.

- ``prepared_cursor``: a server-side prepared statement through Django's own connection. It uses
  ``connection._prepare_cursor``, a private Django API (it wraps driver errors in Django's).
- ``update_returning``: ``UPDATE ... WHERE id IN (<queryset>) RETURNING *`` in one statement, the
  queryset written once with the ORM (so its conditions are not copied into SQL by hand).
- ``insert_chain``: a row and the rows that point at it (a decision, its item, the item's event) in one
  prepared statement of data-modifying CTEs: one round trip, and no BEGIN and COMMIT of its own.
- ``index_scan_only``: no bitmap scans for the rest of the transaction.
- ``unsaved_instance``: ``Model(**values)`` for a new row without ``Model.__init__``'s walk over every
  field (a third of a batch's CPU with 2 KB payloads: three instances per held decision). It fills
  the instance's ``__dict__`` and the related-object cache (``_state.fields_cache``, private).
"""

from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from functools import cache
from itertools import pairwise

import psycopg
from django.db import connection, transaction
from django.db.models import Model, QuerySet
from django.db.models.base import ModelState
from django.db.models.signals import post_init, pre_init


@contextmanager
def prepared_cursor() -> Iterator[psycopg.Cursor]:
    """A psycopg cursor that binds on the server and prepares each statement on its first run on
    this connection. Django's cursors bind on the client and never prepare (and Django sets the
    threshold to "never"), so the server parses and plans every run: for the claim statement, twice
    the server CPU of the prepared one. Only server-binding cursors read the threshold, so Django's
    own queries are unaffected. PostgreSQL only."""
    connection.ensure_connection()
    connection.connection.prepare_threshold = 0
    with connection._prepare_cursor(psycopg.Cursor(connection.connection)) as cursor:
        yield cursor


def index_scan_only() -> None:
    """Plain index scans for the rest of the current transaction, never bitmap scans: rows that
    leave a partial index leave dead entries in it until a vacuum, and an index scan marks each dead
    once so later scans skip it, where a bitmap scan re-reads them all every time (3.3 ms a delivery
    lease after 6,000 deliveries with autovacuum off). PostgreSQL only; call inside a transaction."""
    if not transaction.get_connection().in_atomic_block:
        raise RuntimeError("index_scan_only() applies to a transaction: call it inside atomic()")
    with connection.cursor() as cursor:
        cursor.execute("SET LOCAL enable_bitmapscan = off")


def update_returning(rows: QuerySet, **values) -> list[Model]:
    """Set ``values`` on the rows of ``rows`` (a queryset that may lock, order and limit) and return
    them as updated, in one statement. PostgreSQL only; call inside a transaction when ``rows``
    locks (``select_for_update``)."""
    model = rows.model
    table = connection.ops.quote_name(model._meta.db_table)
    pk = connection.ops.quote_name(model._meta.pk.column)
    select_sql, select_params = rows.values("pk").query.sql_with_params()
    assignments, params = [], []
    for name, value in values.items():
        field = model._meta.get_field(name)
        assignments.append(f"{connection.ops.quote_name(field.column)} = %s")
        params.append(field.get_db_prep_save(value, connection))
    sql = f"UPDATE {table} SET {', '.join(assignments)} WHERE {pk} IN ({select_sql}) RETURNING *"  # noqa: S608
    return list(model.objects.raw(sql, [*params, *select_params]))


def insert_chain(first: Model, *linked: tuple[Model, str]) -> None:
    """Insert ``first``, then each ``(instance, link)`` with its foreign key ``link`` set to the row
    inserted just before it, as ``save(force_insert=True)`` on each in turn would, but in one
    statement: one round trip, prepared on the server, and a transaction on its own (all rows or
    none). Sets each primary key and the links. Raises Django's errors (IntegrityError for a
    duplicate). Other databases (SQLite, the embedded default): ``save()`` on each, in a transaction."""
    steps = [(first, None), *linked]
    if connection.vendor != "postgresql":
        with transaction.atomic():
            first.save(force_insert=True)
            for (previous_row, _), (instance, link) in pairwise(steps):
                setattr(instance, link, previous_row)
                instance.save(force_insert=True)
        return
    sql, fields = _chain_statement(tuple((type(instance), link) for instance, link in steps))
    params = [
        field.get_db_prep_save(field.pre_save(instance, True), connection)
        for (instance, _), step_fields in zip(steps, fields, strict=True)
        for field in step_fields
    ]
    # Inside a caller's transaction, a savepoint: a refused row (a duplicate key) leaves it usable.
    within = transaction.atomic() if connection.in_atomic_block else nullcontext()
    with within, prepared_cursor() as cursor:
        cursor.execute(sql, params)
        ids = cursor.fetchone()
    for (instance, _), pk in zip(steps, ids, strict=True):
        instance.pk = pk
        instance._state.adding = False
        instance._state.db = connection.alias
    for (previous_row, _), (instance, link) in pairwise(steps):
        setattr(instance, link, previous_row)


@cache
def _chain_statement(shape: tuple[tuple[type[Model], str | None], ...]) -> tuple[str, list[list]]:
    """The statement for a chain of this shape ((model, link) per row), written once per shape, and
    the fields whose values it takes, row by row, in its parameters' order."""
    ctes, fields = [], []
    for index, (model, link) in enumerate(shape):
        meta = model._meta
        link_field = meta.get_field(link) if link else None
        columns, values, step_fields = [], [], []
        for field in meta.concrete_fields:
            if field.primary_key:
                continue
            columns.append(connection.ops.quote_name(field.column))
            if field is link_field:
                values.append(f"(SELECT * FROM r{index - 1})")  # noqa: S608 - our CTE name
            else:
                values.append("%s")
                step_fields.append(field)
        table, pk = connection.ops.quote_name(meta.db_table), connection.ops.quote_name(meta.pk.column)
        insert = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join(values)}) RETURNING {pk}"  # noqa: S608
        ctes.append(f"r{index} AS ({insert})")
        fields.append(step_fields)
    names = ", ".join(f"r{index}" for index in range(len(shape)))
    return f"WITH {', '.join(ctes)} SELECT * FROM {names}", fields  # noqa: S608 - names from _meta


class _InstancePlan:
    """Per model: which names are columns, which are related objects (and the attribute of the
    target they store), and how to fill what the caller leaves out (each field's default)."""

    def __init__(self, model: type[Model]):
        self.columns: set[str] = set()
        self.related: dict[str, tuple[str, str]] = {}
        self.defaults: list[tuple[str, object]] = []
        for field in model._meta.concrete_fields:
            self.columns.add(field.attname)
            if field.is_relation:
                self.related[field.name] = (field.attname, field.target_field.attname)
            if field.has_default() and callable(field.default):
                self.defaults.append((field.attname, field.get_default))
            else:
                value = field.get_default()  # a constant: None, "", or the field's own default value
                self.defaults.append((field.attname, lambda value=value: value))


_plans: dict[type[Model], _InstancePlan] = {}


def unsaved_instance(model: type[Model], /, **values) -> Model:
    """The same new, unsaved instance as ``model(**values)``: a related object given by field name
    is cached on the instance (reading it back costs no query), a field left out takes its default.
    Models with pre_init/post_init receivers are built by ``Model.__init__`` so they still run."""
    # The lists first: asking has_listeners() for every row cost as much as filling the instance.
    if (pre_init.receivers or post_init.receivers) and (
        pre_init.has_listeners(model) or post_init.has_listeners(model)
    ):
        return model(**values)
    plan = _plans.get(model)
    if plan is None:
        plan = _plans[model] = _InstancePlan(model)
    instance = model.__new__(model)
    state = instance._state = ModelState()
    attributes = instance.__dict__
    for name, value in values.items():
        related = plan.related.get(name)
        if related is not None:
            attname, target = related
            attributes[attname] = None if value is None else getattr(value, target)
            state.fields_cache[name] = value
        elif name in plan.columns:
            attributes[name] = value
        else:
            raise TypeError(f"{model.__name__} has no field {name!r}")
    for attname, default in plan.defaults:
        if attname not in attributes:
            attributes[attname] = default()
    return instance
