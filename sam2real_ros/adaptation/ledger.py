# Copyright 2026 sam2real contributors
# SPDX-License-Identifier: MIT
#
# Permission is hereby granted, free of charge, to any person obtaining a copy
# of this software and associated documentation files (the "Software"), to deal
# in the Software without restriction, including without limitation the rights
# to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
# copies of the Software, and to permit persons to whom the Software is
# furnished to do so, subject to the following conditions:
#
# The above copyright notice and this permission notice shall be included in
# all copies or substantial portions of the Software.
#
# THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
# IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
# FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL
# THE AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
# LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
# OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN
# THE SOFTWARE.

"""
Model versions and the decision ledger of the adaptation manager (crash-safe files).

Layout under the manager's ``work_dir`` (docs/adaptation.md)::

    ledger.jsonl              one JSON object per line, one line per decision, append-only
    versions/v0001/           one folder per model version, never changed once renamed in
      checkpoint.pt             the training checkpoint (the next candidate starts from it)
      model.onnx                the exported model (what the segmentation node loads)
      version.json              sha256 of model.onnx, parent, metrics, when it was made

A version folder is assembled under ``versions/.tmp-*`` and renamed into place (atomic); a
ledger line is written with one ``write`` + ``fsync``. After a kill -9 the ledger ends either
before or after the line: a torn last line (no newline) is cut off by :meth:`Ledger.repair`.
The ledger is the truth: the deployed version is the ``deployed_version`` of its last line.
"""
import hashlib
import json
import os
import re
import shutil

from sam2real_ros.common.errors import Sam2realError
from sam2real_ros.common.io_utils import atomic_write_json

LEDGER_NAME = 'ledger.jsonl'
VERSIONS_DIR = 'versions'
_VERSION_RE = re.compile(r'^v(\d{4,})$')


class LedgerError(Sam2realError, ValueError):
    """The ledger or a version folder is unreadable (the message names the file)."""


def sha256_file(path):
    """Return the hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            h.update(block)
    return h.hexdigest()


class Ledger:
    """
    The append-only decision log ``<work_dir>/ledger.jsonl``.

    Arguments:
    ---------
      path (str): the ledger file (created on the first :meth:`append`).

    """

    def __init__(self, path):
        self.path = os.fspath(path)

    def repair(self):
        """Cut off a torn last line (a write killed midway); return True if one was cut."""
        if not os.path.isfile(self.path):
            return False
        with open(self.path, 'rb+') as f:
            data = f.read()
            if not data or data.endswith(b'\n'):
                return False
            keep = data.rfind(b'\n') + 1
            f.truncate(keep)
            f.flush()
            os.fsync(f.fileno())
        return True

    def entries(self):
        """
        Return every complete line as a dict, oldest first.

        A torn last line (no newline: the writer was killed) is ignored; any other unreadable
        line raises :class:`LedgerError` naming the line.
        """
        if not os.path.isfile(self.path):
            return []
        with open(self.path, 'rb') as f:
            data = f.read()
        lines = data.split(b'\n')
        lines.pop()  # after the last newline: '' or a torn line
        out = []
        for n, line in enumerate(lines, 1):
            try:
                entry = json.loads(line)
            except ValueError:
                raise LedgerError(f'{self.path}: line {n} is not valid JSON') from None
            if not isinstance(entry, dict):
                raise LedgerError(f'{self.path}: line {n} is not a JSON object')
            out.append(entry)
        return out

    def append(self, entry):
        """Append one decision as a JSON line (one write, fsync)."""
        line = (json.dumps(entry, sort_keys=True, allow_nan=True) + '\n').encode()
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
            os.fsync(fd)
        finally:
            os.close(fd)

    def deployed_version(self):
        """Return the version in service after the last decision, or None."""
        entries = self.entries()
        return entries[-1].get('deployed_version') if entries else None


class Versions:
    """
    The model versions under ``<work_dir>/versions``.

    Arguments:
    ---------
      root (str): the ``versions`` folder.

    """

    def __init__(self, root):
        self.root = os.fspath(root)

    def ids(self):
        """Return the committed version ids in order (``v0001``, ...)."""
        if not os.path.isdir(self.root):
            return []
        names = [n for n in os.listdir(self.root) if _VERSION_RE.match(n)]
        return sorted(names, key=lambda n: int(_VERSION_RE.match(n).group(1)))

    def next_id(self):
        """Return the id the next version gets."""
        ids = self.ids()
        n = int(_VERSION_RE.match(ids[-1]).group(1)) + 1 if ids else 1
        return f'v{n:04d}'

    def dir(self, vid):  # noqa: A003 (a version's folder)
        """Return the folder of version ``vid``."""
        return os.path.join(self.root, vid)

    def model(self, vid):
        """Return the ``model.onnx`` of version ``vid``."""
        return os.path.join(self.root, vid, 'model.onnx')

    def checkpoint(self, vid):
        """Return the ``checkpoint.pt`` of version ``vid``."""
        return os.path.join(self.root, vid, 'checkpoint.pt')

    def info(self, vid):
        """Return the ``version.json`` of version ``vid`` as a dict."""
        path = os.path.join(self.root, vid, 'version.json')
        if not _VERSION_RE.match(str(vid)) or not os.path.isfile(path):
            raise LedgerError(f'no model version {vid!r} under {self.root} '
                              f'(versions: {", ".join(self.ids()) or "none"})')
        try:
            with open(path) as f:
                return json.load(f)
        except ValueError:
            raise LedgerError(f'{path} is not valid JSON') from None

    def staging(self):
        """Return a fresh staging folder for a version being assembled."""
        path = os.path.join(self.root, f'.tmp-{os.getpid()}')
        shutil.rmtree(path, ignore_errors=True)
        os.makedirs(path)
        return path

    def commit(self, staging, info):
        """
        Write ``version.json`` into ``staging`` and rename it to the next version (atomic).

        Returns
        -------
          str: the new version id.

        """
        info = dict(info, sha256=sha256_file(os.path.join(staging, 'model.onnx')))
        vid = self.next_id()
        info['version'] = vid
        atomic_write_json(os.path.join(staging, 'version.json'), info)
        os.rename(staging, self.dir(vid))
        return vid

    def remove_stale(self, known):
        """
        Remove staging folders and versions that no ledger line names (made, never decided).

        Returns
        -------
          list: the ids of the removed versions.

        """
        removed = []
        if not os.path.isdir(self.root):
            return removed
        for name in os.listdir(self.root):
            if name.startswith('.tmp-'):
                shutil.rmtree(os.path.join(self.root, name), ignore_errors=True)
        for vid in self.ids():
            if vid not in known:
                shutil.rmtree(self.dir(vid), ignore_errors=True)
                removed.append(vid)
        return removed
