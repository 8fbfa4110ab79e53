"""The Redis broker: kombu's Redis transport, without the crash that stopped deliveries after an outage.

When Redis goes away while a worker holds an unacknowledged message, the worker closes its broker
connection. kombu's Redis channel first drops its connection pool, then restores the unacknowledged
messages, which builds a new pool from the connection's parameters; by then the connection has let go
of them, and ``AttributeError: 'NoneType' object has no attribute 'hostname'`` ended the worker as an
"Unrecoverable error" (in 3 of 5 outage tests with both cores busy). Worse, that shutdown could hang for good,
Celery's pool waiting on a child that waited on it, so the supervisor had nothing to restart: in CI, 543
deliveries waited on a worker that never came back.

A task that ran through the outage then ended the worker the same way when it was acknowledged on the
lost connection, after the worker had reconnected.

Here a restore, an acknowledgement or a rejection on a connection that is gone is skipped with a
warning, and the worker goes on, reconnecting as after any lost connection. Nothing is lost: the
messages stay in Redis's unacknowledged set, which the next consumer restores after
``visibility_timeout``, and a delivery's wake-up is repeated by the sweep anyway, since the outbox,
not the broker, is the record of what is due.
"""

import logging

from kombu.transport import redis, virtual

logger = logging.getLogger(__name__)


class QoS(redis.QoS):
    """Acknowledging, rejecting or restoring on a channel whose connection is gone leaves the message in
    Redis's unacknowledged set (restored after the visibility timeout) instead of ending the worker."""

    def _connection_gone(self) -> bool:
        transport = self.channel.connection
        return transport is None or transport.client is None

    def restore_unacked(self, client=None):
        if client is None and self._connection_gone():
            logger.warning(
                "broker connection already closed: %d unacknowledged message(s) left in Redis, "
                "to be restored after the visibility timeout (deliveries are re-sent by the sweep)",
                len(self._delivered),
            )
            self._delivered.clear()
            return None
        return super().restore_unacked(client)

    def ack(self, delivery_tag):
        # A task that ran through an outage finishes on the connection that was lost.
        if self._connection_gone():
            logger.warning(
                "broker connection lost while a task ran: its message stays in Redis, to run again after "
                "the visibility timeout (tasks here are safe to repeat)"
            )
            return virtual.QoS.ack(self, delivery_tag)  # forgotten here, not removed from Redis
        return super().ack(delivery_tag)

    def reject(self, delivery_tag, requeue=False):
        if self._connection_gone():
            logger.warning("broker connection lost: a rejected message stays in Redis until the visibility timeout")
            return virtual.QoS.ack(self, delivery_tag)
        return super().reject(delivery_tag, requeue=requeue)


class Channel(redis.Channel):
    QoS = QoS


class Transport(redis.Transport):
    Channel = Channel
