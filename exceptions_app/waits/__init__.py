"""Waiting for people without a thread per waiter: a per-process hub woken by the database
(PostgreSQL LISTEN/NOTIFY, or a cheap poll on the embedded SQLite default), and the views that
wait on it asynchronously under the ASGI server."""
