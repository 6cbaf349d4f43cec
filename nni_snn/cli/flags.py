"""A command's options as a dataclass: its flags, its ``--config`` file and NNI's parameters, layered and checked.

Each field is one option: its name is the config/NNI key (``--flag-name`` on the command line), its default the
command's, and its metadata the help text and what a valid value is (:func:`option`). The command-line flags are
generated from the fields (:func:`add_flags`), and :func:`resolve` layers and validates them in one place. Adding an
option is one line, e.g. ``event_size: int | None = option(None, "down-sample events to this side", check="int>=1")``.
The commands' own tables of options are ``nni_snn.cli.options``.

Options come from, later winning: the defaults (the paper's, on the embedded digits data), ``--config FILE`` (YAML or
JSON with the same names as the flags), flags given on the command line, and, inside an NNI trial, the tuner's
parameters. A user's mistake ends in one line on stderr and exit code 2 (:class:`UsageError`).

No torch: ``nni-snn --help`` builds its parsers from these classes. The sets of valid values that live beside torch
code (neurons, datasets, ...) are named by import path and read when an option is checked.
"""

from __future__ import annotations

import argparse
import dataclasses
import importlib
from dataclasses import field
from typing import Any, ClassVar

from nni_snn import registry
from nni_snn.errors import UsageError, shown


def is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def comma_list(value):
    """A config file's or NNI trial's list (``[0, 1, 3]``) as the flag's comma-separated text (a ``coerce=``)."""
    return ",".join(str(v) for v in value) if isinstance(value, (list, tuple)) else value


# Where ``choices="module:NAME"`` is read when --help is built, so that the flag shows them ({a,b,c}): the modules
# that import no torch. Choices from elsewhere are read when checked, and the flag's help names them.
TORCH_FREE_CHOICES = ("nni_snn.registry", "nni_snn.snn.energy")

# What ``check=`` may name: (the error's "must be ...", the test of a value that is not None).
CHECKS = {
    "int>=1": ("an integer >= 1", lambda v: is_int(v) and v >= 1),
    "int>=0": ("an integer >= 0", lambda v: is_int(v) and v >= 0),
    "pixels>=0": ("an integer >= 0 (pixels)", lambda v: is_int(v) and v >= 0),
    "number>=0": ("a number >= 0", lambda v: is_number(v) and v >= 0),
    "number>0": ("a number > 0", lambda v: is_number(v) and v > 0),
    "seconds>0": ("a number of seconds > 0", lambda v: is_number(v) and v > 0),
    "[0,1]": ("a number in [0, 1]", lambda v: is_number(v) and 0 <= v <= 1),
    # 1 would drop every edge and divide by 0 when scaling the kept ones.
    "[0,1)": ("a number in [0, 1)", lambda v: is_number(v) and 0 <= v < 1),
    "bool": ("true or false", lambda v: isinstance(v, bool)),
    "port": ("in 1..65535", lambda v: is_int(v) and 0 < v < 65536),
    # A config's or tuner's value may be a number, a list or a mapping; open() refuses a NUL byte with a traceback.
    "path": ("a path", lambda v: isinstance(v, str) and v.strip() != "" and "\x00" not in v),
    # What torchvision's downloads fetch from (its reader needs an HTTP response's length: no file:// URL).
    "url": ("an http:// or https:// URL",
            lambda v: isinstance(v, str) and v.split("://")[0] in ("http", "https") and "://" in v
            and not any(c.isspace() or c == "\x00" for c in v)),
}


def option(default: Any = dataclasses.MISSING, help: str = "", *, check: str | tuple | None = None,
           choices: tuple | str | None = None, action: str | None = None, none_ok: bool = False,
           flag: bool = True, coerce=None, group: str | None = None, positional: bool = False,
           metavar: str | None = None, nargs: str | None = None) -> Any:
    """A field that is an option.

    ``help``: the flag's help; ``{default}`` in it shows the command's default (a command that sets another default
    with a plain ``name: type = value`` keeps the help and checks of the class it overrides), and ``{attentions}``,
    ``{image_datasets}``, ``{strategies}`` the registered ones (:func:`nni_snn.registry.help_texts`). ``check``: a
    key of :data:`CHECKS`, or a pair (the error's "must be ...", the test) of its own (a network setting's, from
    :mod:`nni_snn.files.spec`). ``choices``: the valid values, or ``"module:NAME"`` of a collection (or of a function
    returning one) read when checked (so that ``--help`` imports no torch). None passes the checks where the
    command's default is None, or ``none_ok``. ``action``: for a bool, ``store_true`` (``--flag``), ``store_false``
    (``--no-flag``) or ``both`` (``--flag/--no-flag``). ``flag=False``: a config/NNI key only (listed at the end of
    --help). ``coerce``: applied to the value before its checks (YAML reads ``precision: 32`` as a number).
    ``group``: the section of --help the flag is listed in, a key of the class's ``GROUPS``. ``positional``: an
    argument, not a flag (optional where the default is None; ``nargs`` as argparse's). ``metavar``: how --help
    shows the value.
    """
    meta = {"help": help, "check": check, "choices": choices, "action": action, "none_ok": none_ok, "flag": flag,
            "coerce": coerce, "group": group, "positional": positional, "metavar": metavar, "nargs": nargs}
    return field(default=default, metadata=meta)


def same_as(cls: type, name: str, default: Any = dataclasses.MISSING) -> Any:
    """``cls``'s option ``name`` (its help and checks) in another command's table, with ``cls``'s default unless
    ``default`` is given: one definition for an option two commands share without sharing a base class."""
    return field(default=_default(cls, name) if default is dataclasses.MISSING else default,
                 metadata=_metadata(cls, name))


class Options:
    """The base of a command's table of options (a ``@dataclass(kw_only=True)``): its checks and its dict."""

    # What ``{default}`` in a help shows for a default of None (retrain: "the arch file's").
    UNSET: ClassVar[str] = "none"
    # The sections of --help (``option(group=...)``), listed in the order their first option comes in.
    GROUPS: ClassVar[dict[str, str]] = {}
    # Options listed first in --help (what the command needs most).
    FIRST: ClassVar[tuple[str, ...]] = ()

    def as_dict(self) -> dict:
        """The options as the code that runs a command takes them."""
        return dataclasses.asdict(self)

    def check(self) -> None:
        """Every option's own check (:func:`option`), then those that relate options (:meth:`check_together`)."""
        for f in dataclasses.fields(self):
            meta = _metadata(type(self), f.name)
            value = getattr(self, f.name)
            if meta.get("coerce") and value is not None:
                value = meta["coerce"](value)
                setattr(self, f.name, value)
            if value is None and (meta.get("none_ok") or _default(type(self), f.name) is None):
                continue
            flag = f"--{f.name.replace('_', '-')}"
            if meta.get("check"):
                what, valid = CHECKS[meta["check"]] if isinstance(meta["check"], str) else meta["check"]
                if not valid(value):
                    raise UsageError(f"{flag} must be {what}, got {shown(value)}")
            if meta.get("choices"):
                valid = _choices(meta["choices"])
                if value not in valid:
                    raise UsageError(f"{flag} {shown(value)} is unknown; use one of {', '.join(map(str, valid))}")
        self.check_together()

    def check_together(self) -> None:
        """Checks that involve several options (or the machine); a command adds its own."""


def _metadata(cls: type, name: str) -> dict:
    """A field's option metadata: its own, or that of the class whose default it overrides."""
    for klass in cls.__mro__:
        f = getattr(klass, "__dataclass_fields__", {}).get(name)
        if f is not None and f.metadata:
            return dict(f.metadata)
    return {}


def _default(cls: type, name: str):
    f = cls.__dataclass_fields__[name]
    return None if f.default is dataclasses.MISSING else f.default


def _choices(choices: tuple | str) -> tuple:
    if isinstance(choices, str):
        module, name = choices.split(":")
        found = getattr(importlib.import_module(module), name)
        return tuple(found() if callable(found) else found)
    return tuple(choices)


def _flag_type(cls: type, name: str) -> type:
    """What argparse converts a flag's text to: the field's type without None (annotations are strings here); a
    list's items stay text (``nargs``)."""
    types = {"int": int, "float": float, "str": str, "list[str]": str}
    return types[next(t.strip() for t in str(cls.__dataclass_fields__[name].type).split("|") if "None" not in t)]


def _metavar(choices: tuple | str) -> str | None:
    """``{a,b,c}``, what argparse shows of a flag with choices, where they can be read without torch
    (:data:`TORCH_FREE_CHOICES`); else None (argparse's ``NAME``; the help names them)."""
    if isinstance(choices, str) and choices.split(":")[0] not in TORCH_FREE_CHOICES:
        return None
    return "{" + ",".join(map(str, _choices(choices))) + "}"


def config_only(cls: type) -> str:
    """The options of ``cls`` that are config and NNI keys without a flag, with their help, for --help's end."""
    keys = [f"{f.name}: {_metadata(cls, f.name)['help']}" for f in dataclasses.fields(cls)
            if not _metadata(cls, f.name).get("flag", True)]
    return f"Keys of --config (and of NNI's parameters) without a flag: {'; '.join(keys)}." if keys else ""


def add_flags(parser: argparse.ArgumentParser, cls: type) -> None:
    """One argument or flag per option of ``cls``, its help showing ``cls``'s default, listed in its section of
    --help (``cls.GROUPS``). A flag not given is None, so that it does not hide the config file's value
    (:func:`resolve` applies the defaults)."""
    names = [f.name for f in dataclasses.fields(cls) if _metadata(cls, f.name).get("flag", True)]
    first = cls.FIRST
    # The sections in GROUPS' order, but the one holding ``first`` (what a command needs most) at the top.
    leading = {_metadata(cls, name).get("group") for name in first}
    present = {_metadata(cls, name).get("group") for name in names} - {None}
    sections = {group: parser.add_argument_group(cls.GROUPS[group])
                for group in sorted(present, key=lambda g: (g not in leading, list(cls.GROUPS).index(g)))}
    for name in sorted(names, key=lambda n: n not in first):  # sorted() keeps the fields' order otherwise
        meta = _metadata(cls, name)
        group = meta.get("group")
        target = sections[group] if group is not None else parser
        default = _default(cls, name)
        kwargs = {"help": meta["help"].format(default=cls.UNSET if default is None else default,
                                              **registry.help_texts())}
        if meta.get("positional"):
            required = cls.__dataclass_fields__[name].default is dataclasses.MISSING
            target.add_argument(name, metavar=meta.get("metavar"), nargs=meta.get("nargs") or (None if required else "?"),
                                type=_flag_type(cls, name), **kwargs)
            continue
        kwargs["default"] = None
        action = meta.get("action")
        if action == "store_false":
            target.add_argument(f"--no-{name.replace('_', '-')}", dest=name, action="store_false", **kwargs)
            continue
        if action == "store_true":
            kwargs["action"] = "store_true"
        elif action == "both":
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            kwargs["type"] = _flag_type(cls, name)
            if meta.get("choices"):  # shown, not enforced here: check() refuses a bad value from any source alike
                kwargs["metavar"] = _metavar(meta["choices"])
            elif meta.get("metavar"):
                kwargs["metavar"] = meta["metavar"]
        target.add_argument(f"--{name.replace('_', '-')}", **kwargs)


def read_config(path: str) -> dict:
    """A ``--config`` file's options (YAML or JSON), its keys spelt with _ (``data-dir`` reads as ``data_dir``)."""
    from nni_snn.files.runfolder import read_mapping

    return {str(k).replace("-", "_"): v for k, v in read_mapping(path, f"--config {path}").items()}


def resolve(cls: type, args: argparse.Namespace, trial_params: dict | None = None):
    """``cls``'s options from its defaults < ``--config`` < command-line flags < NNI trial parameters, checked."""
    names = {f.name for f in dataclasses.fields(cls)}
    given = vars(args)
    layers = [("--config", read_config(given["config"]) if given.get("config") else {}),
              ("command line", {k: v for k, v in given.items() if v is not None and k in names}),
              ("NNI trial parameters", {str(k).replace("-", "_"): v for k, v in (trial_params or {}).items()})]
    values = {}
    for source, layer in layers:
        unknown = sorted(set(layer) - names)
        if unknown:
            raise UsageError(f"{source}: unknown option {unknown[0]!r}; known: {', '.join(sorted(names))}")
        values.update(layer)
    opts = cls(**values)
    opts.check()
    return opts
