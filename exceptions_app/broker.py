"""The embedded default's broker: kombu's filesystem transport, without its empty-message race.

kombu's filesystem channel creates a message file, then locks it and writes it; a consumer lists the
folder, moves the file away and reads it without the lock. A consumer that lists the folder between
the create and the write reads an empty file and the worker dies with ``JSONDecodeError``
(celery/kombu#1551); ours did after 15 minutes of the demo. Its consumer also moves claimed files to
the system temp folder, a copy and a delete across file systems, so two consumers can both take one.

Here a message is written whole under a name no consumer looks at, then renamed into place: a rename
within one folder is atomic, so a consumer sees the whole file or nothing. A consumer claims a file
by renaming it into the processed folder on the same file system, which exactly one consumer wins.
A file that still does not parse (written by an older process, or by hand) is set aside with a
logged error instead of stopping the worker.
"""

import contextlib
import logging
import os
import tempfile
import uuid
from json import JSONDecodeError
from time import monotonic

from kombu.transport import filesystem
from kombu.utils.encoding import bytes_to_str, str_to_bytes
from kombu.utils.json import dumps, loads

logger = logging.getLogger(__name__)

TRANSPORT_PATH = "exceptions_app.broker:Transport"
# Written, not yet published: consumers only take names that end in ".<queue>.msg".
_STAGING_SUFFIX = ".writing"
REJECTED_SUFFIX = ".rejected"


class Channel(filesystem.Channel):
    def _put(self, queue, payload, **kwargs) -> None:
        name = f"{round(monotonic() * 1000):015d}_{uuid.uuid4()}.{queue}.msg"
        descriptor, staging_path = tempfile.mkstemp(dir=self.data_folder_out, prefix=".", suffix=_STAGING_SUFFIX)
        try:
            with os.fdopen(descriptor, "wb") as staging:
                staging.write(str_to_bytes(dumps(payload)))
            os.replace(staging_path, os.path.join(self.data_folder_out, name))
        except OSError as error:
            _remove_quietly(staging_path)
            raise filesystem.ChannelError(f"Cannot add message {name!r} to {self.data_folder_out}") from error

    def _get(self, queue):
        suffix = f".{queue}.msg"
        for filename in sorted(os.listdir(self.data_folder_in)):
            if not filename.endswith(suffix) or filename.startswith("."):
                continue
            claimed = os.path.join(self.processed_folder, filename)
            try:
                os.rename(os.path.join(self.data_folder_in, filename), claimed)
            except FileNotFoundError:
                continue  # another consumer claimed it first
            try:
                with open(claimed, "rb") as message:
                    payload = message.read()
            except OSError as error:
                raise filesystem.ChannelError(f"Cannot read message {claimed!r}") from error
            try:
                decoded = loads(bytes_to_str(payload))
            except (JSONDecodeError, ValueError, UnicodeDecodeError):
                os.replace(claimed, claimed + REJECTED_SUFFIX)
                logger.error(
                    "Broker message %s was unreadable (%d bytes); set aside as %s",
                    filename,
                    len(payload),
                    claimed + REJECTED_SUFFIX,
                )
                continue
            if not self.store_processed:
                _remove_quietly(claimed)
            return decoded
        raise filesystem.Empty()


class Transport(filesystem.Transport):
    Channel = Channel
    # Its own state, not the stock transport's: the two must never share exchange bindings.
    global_state = filesystem.virtual.BrokerState()
    driver_type = "filesystem"
    driver_name = "tollgate-filesystem"


def _remove_quietly(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.remove(path)
