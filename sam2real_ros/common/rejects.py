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
Bad input messages counted by cause: the one owner of their kinds and of the reject summary.

Nodes count bad camera frames by :func:`fault_kind` (the cause with its numbers replaced by
``N``: a bounded set of keys for ``/diagnostics``, each kind logged once). The bag commands
(``extract-frames``, ``extract-episodes``) count them with :class:`Rejects`: by full cause, so
two size errors with different numbers are two lines of the summary, each with its own numbers.
"""
import re

EXIT_CODES = """Exit codes of the bag commands (extract-frames, extract-episodes):
  0  every message of the selected topics was used
  1  done, but some messages were rejected or frames lost (the summary lists them)
  2  nothing done: bad arguments or an unreadable bag (one line says why)"""

MAX_CAUSES = 16
"""Distinct causes a :class:`Rejects` keeps apart; further ones are counted by kind."""


def fault_kind(cause):
    """
    Return the kind of a bad-message cause.

    The kind is the cause's first line without a parenthesized tail, its numbers as ``N``:
    ``"rgb8 image data has 100 bytes, expected ..."`` and ``"... has 200 bytes ..."`` are one
    kind; names with digits (``rgb8``, ``/cam2/image``, ``'16UC1'``) keep them.
    """
    text = str(cause).strip()
    text = text.splitlines()[0] if text else 'unknown'
    return re.sub(r"(?<![\w./'])\d+(\.\d+)?(?![\w'])", 'N', text.split(' (')[0])[:120]


class Rejects:
    """Bad messages by cause (the first :data:`MAX_CAUSES` apart, then by kind)."""

    def __init__(self):
        self.causes = {}  # cause -> count, in first-seen order

    def add(self, cause):
        """Count one bad message; returns True for the first of its cause (to report it)."""
        cause = str(cause)
        key = cause if cause in self.causes or len(self.causes) < MAX_CAUSES else \
            f'{fault_kind(cause)} (and similar)'
        self.causes[key] = self.causes.get(key, 0) + 1
        return self.causes[key] == 1

    @property
    def total(self):
        """Return the number of bad messages counted."""
        return sum(self.causes.values())

    def lines(self, indent='  '):
        """Return the summary lines ``<indent><count> x <cause>``."""
        return [f'{indent}{n} x {cause}' for cause, n in self.causes.items()]


def exit_code(rejected, lost=0):
    """Return a bag command's exit code (:data:`EXIT_CODES`): 1 with rejects or losses, else 0."""
    return 1 if rejected or lost else 0
