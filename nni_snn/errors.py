"""The errors the ``nni-snn`` command turns into one line on stderr, in one torch-free module.

``nni_snn.cli.main`` catches these before anything heavy is imported, so ``nni-snn --help`` starts in well under a
second; each module that raises one imports it from here (and keeps its name importable where it was defined).
"""

from __future__ import annotations


class UsageError(Exception):
    """A mistake the user can fix (a bad flag, config key or value); printed as one line, exit code 2."""


class SettingError(ValueError):
    """A value the library cannot work with, said in the library's words. ``settings`` names the options that
    would fix it, each ``name`` or ``(name, value)``: the command line shows them as its flags (``nni_snn.cli.main``),
    so that library code names no flag. Exit code 2."""

    def __init__(self, message: str, settings=()):
        super().__init__(message)
        self.settings = tuple(settings)


class ArchError(SettingError):
    """An architecture file that cannot be used; the message names the problem. Exit code 2."""


class SizeError(SettingError):
    """Network sizes that cannot be built or cannot fit the memory available; ``settings``: what to lower."""


class ExportError(SettingError):
    """A run, or a network, that cannot be exported; the message says what is missing or what to change."""


class DataError(ValueError):
    """A dataset (images or events) that cannot be loaded as asked; the message says what to do. Exit code 2."""


class FrontError(ValueError):
    """No run, or an unfinished one, where the user pointed; the message says which folder. Exit code 2."""


class ExperimentError(RuntimeError):
    """The experiment could not be started or did not finish as asked; the message says why. Exit code 2."""


class NonFiniteError(RuntimeError):
    """Training diverged (a NaN or infinite loss or architecture weight). Exit code 1."""


class MultitrialError(RuntimeError):
    """The experiment ran but gave nothing to export (e.g. every trial failed); the message says why. Exit code 1."""


def shown(value) -> str:
    """``repr(value)`` cut short, for an error line: a value from a user's file can be huge (YAML aliases expand to
    billions of items)."""
    import reprlib

    short = reprlib.Repr()
    short.maxlevel, short.maxlist, short.maxdict, short.maxstring, short.maxother, short.maxlong = 3, 6, 6, 60, 60, 40
    return short.repr(value)


# What the command line reports as the user's mistake (exit 2), and as a run that stopped (exit 1).
USER_ERRORS = (UsageError, SettingError, DataError, ExperimentError, FrontError)
STOPPED = (NonFiniteError, MultitrialError)


def optional_import(module: str, extra: str, purpose: str):
    """``module`` from an optional dependency that ``pip install 'nni-snn[EXTRA]'`` brings (pyproject's extras), or
    a :class:`UsageError` in one line naming that command. Only the package itself missing is reported so; an error
    inside an installed one (a broken dependency of it) stays what it is."""
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as err:
        top = module.split(".")[0]
        if err.name is None or err.name.split(".")[0] != top:
            raise
        raise UsageError(f"{purpose} needs the {top} package, which is not installed: "
                         f"pip install 'nni-snn[{extra}]'") from None
