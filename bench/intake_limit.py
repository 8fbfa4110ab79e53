"""The limit for bench/intake.py (issue 25): raw COPY of exactly the rows Tollgate wrote for a run's decisions.

For the decisions with ``after < id <= up_to``, every row the gate wrote is read back as COPY text: the decisions,
their items (holds, and audit copies of sampled verdicts), the items' audit events and the decisions' outbox rows
(deliveries). Then client processes write them again, ``chunk`` decisions (with all their rows) per transaction,
the way the batch endpoint does: ids from each table's sequence, one COPY per table. Rows are handed to COPY as the
text PostgreSQL gave, only the ids (and the deliveries' unique public ids) rewritten, so the figure is the
database's: no JSON encoding, no validation, no policy. Triggers and indexes apply as they do to ours.
"""

# Table and column names below come from the catalog of the bench database (no outside input).
# ruff: noqa: S608

import multiprocessing
import signal
import time
import uuid

import psycopg

from bench import common

# table -> the columns to rewrite, in this order at the start of each row: its id, then the column that links it
# to the decision (directly or through an item), then (deliveries) the unique public id.
DECISIONS = "exceptions_app_gatedecision"
ITEMS = "exceptions_app_exceptionitem"
EVENTS = "exceptions_app_auditevent"
DELIVERIES = "exceptions_app_delivery"
_LEADING = {
    DECISIONS: ["id"],
    ITEMS: ["id", "decision_id"],
    EVENTS: ["id", "item_id"],
    DELIVERIES: ["id", "decision_id", "public_id"],
}
_WHERE = {
    DECISIONS: "id > %(after)s AND id <= %(up_to)s",
    ITEMS: "decision_id > %(after)s AND decision_id <= %(up_to)s",
    EVENTS: f"item_id IN (SELECT id FROM {ITEMS} WHERE decision_id > %(after)s AND decision_id <= %(up_to)s)",
    DELIVERIES: "decision_id > %(after)s AND decision_id <= %(up_to)s",
}
_ROWS: dict = {}  # set before the processes fork: they read it instead of unpickling rows


def _columns(conn, table: str) -> list[str]:
    names = [
        row[0]
        for row in conn.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s ORDER BY ordinal_position",
            [table],
        )
    ]
    leading = _LEADING[table]
    return leading + [name for name in names if name not in leading]


def _copy_out(conn, table: str, columns: list[str], where: str, bounds: dict) -> list[list[bytes]]:
    bounds = {name: int(value) for name, value in bounds.items()}
    query = f"SELECT {', '.join(columns)} FROM {table} WHERE {where % bounds} ORDER BY id"
    data = bytearray()
    with conn.cursor().copy(f"COPY ({query}) TO STDOUT") as copy:
        for block in copy:
            data += block
    return [line.split(b"\t") for line in bytes(data).split(b"\n") if line]


def rows_read(database: str, after: int, up_to: int) -> dict:
    """Every row the gate wrote for decisions ``after < id <= up_to``, grouped by decision, as COPY text fields."""
    bounds = {"after": after, "up_to": up_to}
    with psycopg.connect(common.database_url(database), connect_timeout=10) as conn:
        columns = {table: _columns(conn, table) for table in _LEADING}
        rows = {table: _copy_out(conn, table, columns[table], _WHERE[table], bounds) for table in _LEADING}
    decision_of_item = {fields[0]: fields[1] for fields in rows[ITEMS]}
    by_decision: dict[bytes, dict[str, list]] = {fields[0]: {t: [] for t in _LEADING} for fields in rows[DECISIONS]}
    for fields in rows[DECISIONS]:
        by_decision[fields[0]][DECISIONS].append(fields)
    for table, link in ((ITEMS, None), (DELIVERIES, None), (EVENTS, decision_of_item)):
        for fields in rows[table]:
            decision = fields[1] if link is None else link[fields[1]]
            by_decision[decision][table].append(fields)
    counts = {table: len(found) for table, found in rows.items()}
    return {"columns": columns, "decisions": list(by_decision.values()), "counts": counts}


def _chunk_write(cursor, columns: dict, decisions: list[dict]) -> None:
    """One chunk in the caller's transaction: ids from the sequences, then one COPY per table (as the gate does)."""
    new_ids: dict[tuple[str, bytes], bytes] = {}
    for table in (DECISIONS, ITEMS, EVENTS, DELIVERIES):
        rows = [fields for decision in decisions for fields in decision[table]]
        if not rows:
            continue
        ids = cursor.execute(
            f"SELECT nextval(pg_get_serial_sequence('{table}', 'id')) FROM generate_series(1, %s)", [len(rows)]
        ).fetchall()
        out = []
        for fields, (pk,) in zip(rows, ids, strict=True):
            fresh = list(fields)
            fresh[0] = str(pk).encode()
            new_ids[(table, fields[0])] = fresh[0]
            if table in (ITEMS, DELIVERIES):
                fresh[1] = new_ids[(DECISIONS, fields[1])]
            elif table == EVENTS:
                fresh[1] = new_ids[(ITEMS, fields[1])]
            if table == DELIVERIES:
                fresh[2] = f"msg_{uuid.uuid4().hex}".encode()
            out.append(b"\t".join(fresh))
        with cursor.copy(f"COPY {table} ({', '.join(columns[table])}) FROM STDIN") as copy:
            copy.write(b"\n".join(out) + b"\n")


def _worker(database: str, spans: list[tuple[int, int]], start_at: float) -> tuple[float, float, int, float]:
    """Returns (began, ended, decisions written, CPU seconds of this connection's PostgreSQL backend)."""
    rows, done = _ROWS, 0
    with psycopg.connect(common.database_url(database), connect_timeout=10) as conn:
        cursor = conn.cursor()
        backend = cursor.execute("SELECT pg_backend_pid()").fetchone()[0]
        time.sleep(max(0.0, start_at - time.time()))
        began, cpu = time.time(), common.cpu_seconds(backend)
        for first, last in spans:
            with conn.transaction():
                _chunk_write(cursor, rows["columns"], rows["decisions"][first:last])
            done += last - first
        ended, cpu = time.time(), common.cpu_seconds(backend) - cpu
    return began, ended, done, cpu


def _child_signals() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def copy_limit(database: str, rows: dict, *, chunk: int, processes: int) -> dict:
    """The rows written again by ``processes`` client processes, ``chunk`` decisions per transaction."""
    count = len(rows["decisions"])
    spans = [(first, min(count, first + chunk)) for first in range(0, count, chunk)]
    shares = [spans[n::processes] for n in range(processes)]
    _ROWS.clear()
    _ROWS.update(rows)
    start_at = time.time() + 0.5
    with multiprocessing.get_context("fork").Pool(processes, initializer=_child_signals) as pool:
        jobs = [pool.apply_async(_worker, (database, share, start_at)) for share in shares if share]
        done = [job.get(timeout=600) for job in jobs]
    _ROWS.clear()
    inserted = sum(part[2] for part in done)
    elapsed = max(part[1] for part in done) - min(part[0] for part in done) if done else 0.0
    postgres_cpu = sum(part[3] for part in done)
    return {
        "method": "copy",
        "decisions_per_transaction": chunk,
        "processes": processes,
        "decisions": inserted,
        "rows": rows["counts"],
        "elapsed_s": round(elapsed, 3),
        "rate_per_s": round(inserted / elapsed, 1) if elapsed > 0 else 0.0,
        # The database's own cost of the rows, which survives other work on the machine where the rate does not.
        "postgres_ms_per_decision": round(1000 * postgres_cpu / max(1, inserted), 3),
    }
