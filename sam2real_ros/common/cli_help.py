"""
The ``--help`` layout of every ``sam2real`` subcommand.

:class:`HelpFormatter` appends ``(default: X)`` to an option's help only where it tells the
reader something: not for required options, flags, empty defaults (``None``, ``''``, ``[]``) or
help texts that already state their default.
"""
import argparse


class HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter plus ``(default: X)`` where a default is worth stating."""

    def _get_help_string(self, action):
        text = action.help or ''
        default = action.default
        if (not action.option_strings or action.required or action.nargs == 0
                or default is None or default is argparse.SUPPRESS
                or (isinstance(default, (str, list, tuple, dict)) and not default)
                or 'default' in text.lower()):
            return text
        return f'{text} (default: %(default)s)' if text else 'default: %(default)s'
