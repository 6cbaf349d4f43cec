"""Where the NNI manager (its REST API and web UI) listens: loopback unless the user asks otherwise.

NNI 3.0's manager (node, ``nni_node/rest_server``) listens on every interface, and its REST API has no
authentication: anyone who reaches the port can stop the experiment, change its configuration, kill or add trials
and read trial logs and files. Every manager nni-snn starts (``nni-snn experiment``, ``nni-snn multitrial``) gets
:data:`PRELOAD` in its environment (``NODE_OPTIONS=--require``), which gives each of its servers a host when NNI
gives none, without touching NNI's installed files. docs/security.md says what is promised and how it is tested.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
import sys
from pathlib import Path

from nni_snn.errors import UsageError

LOOPBACK = "127.0.0.1"
# Shipped inside the package (package data), so an installed wheel has it.
PRELOAD = Path(__file__).with_name("manager_listen.cjs")
HOST_ENV = "NNI_SNN_MANAGER_HOST"
EXPOSED = ("without authentication: anyone who can reach it can stop the experiment, change its configuration, "
           "kill or add trials, and read trial logs and files")


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_host(host: str, flag: str = "--host") -> str:
    """``host`` if this machine can listen there (an address of one of its interfaces, or all of them: 0.0.0.0,
    ::), else a :class:`UsageError` naming why; checked before the manager starts, which would fail with a trace."""
    if not isinstance(host, str) or not host.strip():  # a config's value may be a number or a list
        raise UsageError(f"{flag}: give an address, e.g. 127.0.0.1 (this machine only) or 0.0.0.0 (every network)")
    try:
        infos = socket.getaddrinfo(host, 0, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError, ValueError) as err:
        raise UsageError(f"{flag} {host!r}: not an address or known host name ({err})") from None
    family, _, _, _, address = infos[0]
    try:
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.bind(address)  # port 0, never listened on: only asks whether the address is this machine's
    except OSError as err:
        raise UsageError(f"{flag} {host}: cannot listen there ({err.strerror}); give an address of this machine, "
                         f"or 0.0.0.0 for all interfaces") from None
    return host


def manager_env(host: str = LOOPBACK, env: dict | None = None) -> dict:
    """``env`` (default: this process's) for starting an NNI manager whose servers listen on ``host``."""
    env = dict(os.environ if env is None else env)
    require = f'--require "{PRELOAD}"'
    if require not in env.get("NODE_OPTIONS", ""):
        env["NODE_OPTIONS"] = f"{env.get('NODE_OPTIONS', '')} {require}".strip()
    env[HOST_ENV] = host
    return env


@contextlib.contextmanager
def manager_environment(host: str = LOOPBACK):
    """:func:`manager_env` applied to ``os.environ`` for a block: NNI's Python API (``NasExperiment``) starts its
    manager with this process's environment."""
    before = dict(os.environ)
    os.environ.update(manager_env(host))
    try:
        yield
    finally:
        for key in ("NODE_OPTIONS", HOST_ENV):
            if key in before:
                os.environ[key] = before[key]
            else:
                os.environ.pop(key, None)


def warn_if_exposed(host: str, port: int) -> None:
    """One line on stderr when the manager listens beyond this machine."""
    if not is_loopback(host):
        print(f"nni-snn: warning: the NNI manager and web UI listen on {url_host(host)}:{port}, {EXPOSED}",
              file=sys.stderr, flush=True)


def url_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def experiment_host(config: dict, host: str | None) -> str:
    """Where the manager of an nnictl ``config`` listens: ``host`` (``--host``) if given; for a training service
    whose workers run elsewhere (remote, kubeflow, ...), the address they reach it at (``nniManagerIp``); else
    loopback."""
    if host is not None:
        return host
    service = config.get("trainingService") or {}
    services = service if isinstance(service, list) else [service]
    platforms = {s.get("platform") for s in services if isinstance(s, dict)}
    if not platforms or platforms == {"local"}:
        return LOOPBACK
    manager_ip = config.get("nniManagerIp")
    if not manager_ip:
        raise UsageError(f"platform {', '.join(sorted(map(str, platforms - {'local'})))}: set nniManagerIp in the "
                         "config to this machine's address as the workers reach it (the NNI manager listens only "
                         "there and on loopback), or --host ADDR; or keep it on loopback and give the workers an "
                         "SSH tunnel (docs/security.md)")
    return str(manager_ip)
