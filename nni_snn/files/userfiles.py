"""Reading a file a user names (an arch.json, a ``--config``): torch-free, bounded, never blocking.

A path can name a folder, a FIFO (opening it waits for a writer), a device such as /dev/zero (reading it never
ends) or a file far larger than any such file: each fails here with an ``OSError`` whose ``strerror`` says why, which
the caller turns into its one-line error, as it does for a missing file.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path


def read_user_file(path: str | Path, limit: int) -> bytes:
    """The bytes of the regular file at ``path`` (symlinks followed), at most ``limit`` of them."""
    mode = os.stat(path).st_mode
    if stat.S_ISDIR(mode):
        raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), str(path))
    if not stat.S_ISREG(mode):
        raise OSError(errno.EINVAL, "not a regular file", str(path))
    with open(path, "rb") as f:
        data = f.read(limit + 1)
    if len(data) > limit:
        raise OSError(errno.EFBIG, f"larger than {limit >> 20} MiB, more than such a file holds", str(path))
    return data


def load_yaml(raw: bytes):
    """YAML (or JSON) from a user's bytes, safely: LibYAML's loader where PyYAML has it, which refuses nesting past
    its limit at once (PyYAML's own scanner takes minutes over 100 kB of '[' and then overflows the stack). Raises
    ``yaml.YAMLError`` (bad bytes included) or ``RecursionError``."""
    import yaml

    return yaml.load(raw, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
