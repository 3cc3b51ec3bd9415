"""One temporary-directory helper for every test and benchmark.

    with temp_dir("vmmd-e2e-") as path: ...

The directory goes when the block ends. With VMMD_KEEP_TMP=1 it stays when the block ends by an
exception (a failed check, a timeout), and its path is printed: what the test left (logs, sockets,
images) can then be looked at.
"""
import contextlib
import os
import shutil
import sys
import tempfile


class TempDir:
    """A fresh directory under $TMPDIR; remove() deletes it unless a failure asks to keep it."""

    def __init__(self, prefix="vmmd-test-"):
        self.path = tempfile.mkdtemp(prefix=prefix)

    def remove(self, failed=False):
        if failed and os.environ.get("VMMD_KEEP_TMP") == "1":
            print(f"kept {self.path} (VMMD_KEEP_TMP=1)", file=sys.stderr)
            return
        shutil.rmtree(self.path, ignore_errors=True)


def _is_failure(exc):
    if isinstance(exc, SystemExit):
        return exc.code not in (None, 0)
    return exc is not None


@contextlib.contextmanager
def temp_dir(prefix="vmmd-test-"):
    tmp = TempDir(prefix)
    try:
        yield tmp.path
    except BaseException as e:
        tmp.remove(failed=_is_failure(e))
        raise
    tmp.remove()
