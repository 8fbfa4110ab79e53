"""The embedded default's broker candidates under the same race: 4 producer processes and 1 consumer.

    .venv/bin/python bench/embedded_broker.py [--messages-per-producer 2000]

Compares kombu's stock filesystem transport, ours (exceptions_app/broker.py) and, when SQLAlchemy
is installed (``pip install sqlalchemy``; Tollgate does not depend on it), kombu's SQLAlchemy
transport on SQLite. Prints, per transport: messages received, unique, lost, errors the consumer
saw, producers that crashed, and messages a second.
"""

import argparse
import contextlib
import multiprocessing
import tempfile
import time
from pathlib import Path

from kombu import Connection

from exceptions_app.broker import TRANSPORT_PATH

PRODUCERS = 4
FILESYSTEM = {"stock filesystem": "kombu.transport.filesystem:Transport", "tollgate filesystem": None}


def _connection(kind: str, root: str) -> Connection:
    if kind == "sqlalchemy on sqlite":
        return Connection(f"sqla+sqlite:///{root}/broker.sqlite3")
    folders = {name: Path(root) / name for name in ("messages", "processed", "control")}
    for folder in folders.values():
        folder.mkdir(exist_ok=True)
    return Connection(
        "filesystem://",
        transport=FILESYSTEM[kind] or TRANSPORT_PATH,
        transport_options={
            "data_folder_in": str(folders["messages"]),
            "data_folder_out": str(folders["messages"]),
            "processed_folder": str(folders["processed"]),
            "control_folder": str(folders["control"]),
        },
    )


def _produce(kind: str, root: str, start: int, count: int) -> None:
    with _connection(kind, root) as connection:
        channel = connection.default_channel
        for number in range(start, start + count):
            channel._put("q", {"n": number})


def run(kind: str, per_producer: int, seconds: float = 120) -> dict:
    root = tempfile.mkdtemp(prefix="tollgate-broker-")
    total = PRODUCERS * per_producer
    with _connection(kind, root) as connection:
        channel = connection.default_channel
        with contextlib.suppress(Exception):  # empty, as expected; it creates SQLAlchemy's tables first
            channel._get("q")
        producers = [
            multiprocessing.Process(target=_produce, args=(kind, root, index * per_producer, per_producer))
            for index in range(PRODUCERS)
        ]
        started = time.monotonic()
        for process in producers:
            process.start()
        received, errors = [], 0
        while len(received) < total and time.monotonic() - started < seconds:
            try:
                received.append(channel._get("q")["n"])
            except Exception as error:
                if type(error).__name__ != "Empty":
                    errors += 1
            producers_done = all(not process.is_alive() for process in producers)
            if len(received) < total and producers_done and channel._size("q") == 0:
                break  # every producer is done (or dead) and nothing is left to read
        elapsed = time.monotonic() - started
        for process in producers:
            process.join()
    return {
        "transport": kind,
        "sent": total,
        "received": len(received),
        "unique": len(set(received)),
        "lost": total - len(set(received)),
        "consumer errors": errors,
        "producers crashed": sum(process.exitcode != 0 for process in producers),
        "messages/s": round(len(received) / elapsed),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages-per-producer", type=int, default=2000)
    arguments = parser.parse_args()
    kinds = list(FILESYSTEM)
    try:
        import sqlalchemy  # noqa: F401

        kinds.append("sqlalchemy on sqlite")
    except ImportError:
        print("(SQLAlchemy not installed: its transport is skipped)")
    for kind in kinds:
        print(run(kind, arguments.messages_per_producer))


if __name__ == "__main__":
    main()
