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
The one base of sam2real's error classes: bad input a user can fix, reported as one line.

Every error class of the package that means "this file, config or argument is wrong" derives
from :class:`Sam2realError` (and keeps its builtin base, ``ValueError`` or ``RuntimeError``,
for callers that catch those). A command catches it, prints ``str(exc)`` as one line and exits
with :attr:`Sam2realError.exit_code` (2); ``sam2real`` itself does so for every subcommand.
Failures that are not the user's input (a child process died, a demo stage failed) are not
``Sam2realError``: they exit 1.
"""


class Sam2realError(Exception):
    """Bad input or configuration, named in the message; a command exits with ``exit_code``."""

    exit_code = 2
