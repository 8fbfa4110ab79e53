"""Insert many model instances with PostgreSQL's COPY: the batch intake's write path.

``bulk_create`` on PostgreSQL builds one INSERT with every value quoted into the SQL text on the
client (Django's psycopg backend binds on the client side); for 1,000 decisions that quoting took
more time than everything else the batch does. COPY streams the rows instead. Ids are taken from
the table's identity sequence first, so the instances get their primary keys as with
``bulk_create``. Other databases (SQLite, the embedded default), and a single row, use ``bulk_create``.
"""

from collections.abc import Callable
from operator import attrgetter

import orjson
from django.db import connection, connections, models
from psycopg.adapt import Dumper

# Values of these types go to psycopg as they are (Django's own preparation for them only checks
# and converts values we build ourselves); any other field is prepared by Django.
_PASS_THROUGH = {
    "BigIntegerField",
    "BooleanField",
    "CharField",
    "DateTimeField",
    "DecimalField",
    "FloatField",
    "ForeignKey",
    "IntegerField",
    "OneToOneField",
    "PositiveIntegerField",
    "PositiveSmallIntegerField",
    "SlugField",
    "SmallIntegerField",
    "TextField",
}


class _JsonText:
    """orjson's UTF-8 output on its way into COPY as it is: a str would be decoded here and encoded
    again by psycopg (a few percent of a batch with 2 KB payloads)."""

    __slots__ = ("data",)

    def __init__(self, data: bytes):
        self.data = data


class _JsonTextDumper(Dumper):
    def dump(self, obj: _JsonText) -> bytes:
        return obj.data


def _json_text_getter(field: models.JSONField, db):
    """A JSON column's value as JSON text, encoded by orjson (several times faster than the json module, and
    json.dumps was a tenth of a batch's CPU); COPY hands the text to jsonb's own parser, so spacing and
    escapes do not matter. Whatever orjson refuses (an integer beyond 64 bits, say) and None (SQL NULL or
    JSON null, by the field's rule) take Django's own path."""
    attname = field.attname

    def get(instance):
        value = getattr(instance, attname)
        if value is not None:
            try:
                return _JsonText(orjson.dumps(value))
            except (orjson.JSONEncodeError, TypeError):
                pass
        return field.get_db_prep_save(value, db)

    return get


def _value_getter(field: models.Field, db):
    if getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False):
        return lambda instance: field.pre_save(instance, add=True)
    attname = field.attname
    if isinstance(field, models.JSONField) and field.encoder is None:
        return _json_text_getter(field, db)
    return lambda instance: field.get_db_prep_save(getattr(instance, attname), db)


def _passes_through(field: models.Field) -> bool:
    auto = getattr(field, "auto_now", False) or getattr(field, "auto_now_add", False)
    return field.get_internal_type() in _PASS_THROUGH and not auto


def _row_plan(fields: list, db) -> tuple[list, Callable[[models.Model], list]]:
    """The column order and a function from an instance to its row: the values that pass through are
    read in one ``attrgetter`` call (a function call per field and row was a fifth of the COPY's CPU),
    then the ones that need preparing."""
    plain = [field for field in fields if _passes_through(field)]
    prepared = [field for field in fields if not _passes_through(field)]
    read = attrgetter(*(field.attname for field in plain)) if plain else (lambda instance: ())
    if len(plain) == 1:
        single = read
        read = lambda instance: (single(instance),)  # noqa: E731 - attrgetter of one name gives no tuple
    getters = [_value_getter(field, db) for field in prepared]

    def row(instance) -> list:
        return [*read(instance), *(get(instance) for get in getters)]

    return [*plain, *prepared], row


def bulk_copy(model: type[models.Model], instances: list[models.Model]) -> list[models.Model]:
    """Insert ``instances`` (new, without primary keys) and set their ``pk``; returns them."""
    if not instances:
        return instances
    if connection.vendor != "postgresql" or len(instances) == 1:
        # One row: an INSERT is one round trip, where the ids and the COPY are two.
        return model.objects.bulk_create(instances)
    meta = model._meta
    db = connections[connection.alias]  # the wrapper itself, not the per-thread proxy
    fields, row = _row_plan([field for field in meta.concrete_fields if not field.primary_key], db)
    table = connection.ops.quote_name(meta.db_table)
    columns = ", ".join(connection.ops.quote_name(column) for column in [meta.pk.column, *(f.column for f in fields)])
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT nextval(pg_get_serial_sequence(%s, %s)) FROM generate_series(1, %s)",
            [meta.db_table, meta.pk.column, len(instances)],
        )
        ids = [row[0] for row in cursor.fetchall()]
        cursor.cursor.adapters.register_dumper(_JsonText, _JsonTextDumper)
        with cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:  # table and columns from _meta
            for instance, pk in zip(instances, ids, strict=True):
                copy.write_row([pk, *row(instance)])
    for instance, pk in zip(instances, ids, strict=True):
        instance.pk = pk
        instance._state.adding = False
        instance._state.db = connection.alias
    return instances
