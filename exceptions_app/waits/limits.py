"""Process limits for many open connections."""

import logging
import resource

logger = logging.getLogger(__name__)


def open_files_raise() -> int:
    """Raise this process's soft limit on open files to its hard limit: each waiting agent holds a
    socket, and the usual soft limit (1,024) would refuse connections long before memory runs out.
    Returns the limit now in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1_048_576)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            logger.warning("could not raise the open-files limit above %s", soft)
    return soft
