"""The embedded default's filesystem broker: kombu's empty-message race (celery/kombu#1551),
reproduced against the stock transport and shown handled by ours."""

import json
import multiprocessing
import os
import threading
import time
from pathlib import Path

import pytest
from kombu import Connection
from kombu.transport import filesystem as stock

from exceptions_app import broker

OURS = broker.TRANSPORT_PATH
STOCK = "kombu.transport.filesystem:Transport"


def transport_options(root: Path) -> dict:
    for folder in ("messages", "processed", "control"):
        (root / folder).mkdir(parents=True, exist_ok=True)
    return {
        "data_folder_in": str(root / "messages"),
        "data_folder_out": str(root / "messages"),
        "processed_folder": str(root / "processed"),
        "control_folder": str(root / "control"),
    }


def channel(transport: str, root: Path):
    return Connection("filesystem://", transport=transport, transport_options=transport_options(root)).default_channel


def publish_while_paused(publish, pause: threading.Event, resume: threading.Event) -> threading.Thread:
    writer = threading.Thread(target=publish)
    writer.start()
    assert pause.wait(5), "the writer never reached the pause"
    return writer


def test_stock_transport_hands_a_consumer_a_message_still_being_written(tmp_path, monkeypatch):
    """The stock writer creates the file, then locks, then writes; a consumer that looks in between
    reads an empty file. This is the JSONDecodeError that stopped the demo's worker."""
    writing, resume = threading.Event(), threading.Event()
    stock_lock = stock.lock

    def lock_slowly(file, flags):
        writing.set()
        resume.wait(5)
        stock_lock(file, flags)

    monkeypatch.setattr(stock, "lock", lock_slowly)
    producer, consumer = channel(STOCK, tmp_path), channel(STOCK, tmp_path)
    writer = publish_while_paused(lambda: producer._put("default", {"n": 1}), writing, resume)
    try:
        with pytest.raises(json.JSONDecodeError):
            consumer._get("default")
    finally:
        resume.set()
        writer.join()


def test_our_transport_never_shows_a_message_before_it_is_whole(tmp_path, monkeypatch):
    writing, resume = threading.Event(), threading.Event()
    encode = broker.dumps

    def encode_slowly(payload):
        writing.set()
        resume.wait(5)
        return encode(payload)

    monkeypatch.setattr(broker, "dumps", encode_slowly)
    producer, consumer = channel(OURS, tmp_path), channel(OURS, tmp_path)
    writer = publish_while_paused(lambda: producer._put("default", {"n": 1}), writing, resume)
    try:
        with pytest.raises(stock.Empty):
            consumer._get("default")  # the half-written file is there, under a name no consumer takes
    finally:
        resume.set()
        writer.join()
    assert consumer._get("default") == {"n": 1}
    assert not os.listdir(tmp_path / "messages")


def test_an_unreadable_message_is_set_aside_and_the_next_one_delivered(tmp_path, caplog):
    consumer = channel(OURS, tmp_path)
    (tmp_path / "messages" / "000000000000001_empty.default.msg").write_bytes(b"")
    consumer._put("default", {"n": 2})
    assert consumer._get("default") == {"n": 2}
    assert [path.name for path in (tmp_path / "processed").iterdir()] == [
        "000000000000001_empty.default.msg" + broker.REJECTED_SUFFIX
    ]
    assert "unreadable" in caplog.text
    with pytest.raises(stock.Empty):
        consumer._get("default")


def _produce(root: str, start: int, count: int) -> None:
    producer = channel(OURS, Path(root))
    for number in range(start, start + count):
        producer._put("deliveries", {"n": number})


def _consume(root: str, expected: int, results) -> None:
    consumer, received, deadline = channel(OURS, Path(root)), [], time.monotonic() + 60
    while len(received) < expected and time.monotonic() < deadline:
        try:
            received.append(consumer._get("deliveries")["n"])
        except stock.Empty:
            time.sleep(0.001)
    results.put(received)


def test_concurrent_producers_and_consumers_lose_and_duplicate_nothing(tmp_path):
    """Four producer processes and two consumer processes race over one folder."""
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    producers = [context.Process(target=_produce, args=(str(tmp_path), index * 500, 500)) for index in range(4)]
    consumers = [context.Process(target=_consume, args=(str(tmp_path), 1000, results)) for _ in range(2)]
    for process in consumers + producers:
        process.start()
    received = results.get(timeout=90) + results.get(timeout=90)
    for process in consumers + producers:
        process.join(timeout=30)
        assert process.exitcode == 0
    assert sorted(received) == list(range(2000))
