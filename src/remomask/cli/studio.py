"""``remomask studio``: the local web page (docs/studio.md; the command line's contract: docs/design.md §11).

Starts a Starlette application under uvicorn on ``--host`` (127.0.0.1 by default) and ``--port`` (7860),
loads the model once in the background, and serves the page and its JSON API until Ctrl-C. Binding to an
address other than a loopback one prints a warning: the studio has no authentication. The model folder,
device and port are checked before anything starts; a model that then fails to load is reported by the page
and the API as one error line.
"""

from __future__ import annotations

import ipaddress
import socket
from pathlib import Path

import click

from ._motion_files import check_model_dir
from ._core import check_device, command, device_option, fail, int_range

__all__ = ["studio", "DEFAULT_HOST", "DEFAULT_PORT"]

DEFAULT_HOST = "127.0.0.1"
"""Address the studio binds to unless ``--host`` says otherwise (this machine only)."""

DEFAULT_PORT = 7860
"""Port the studio listens on unless ``--port`` says otherwise."""


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``.

    Raises:
        UsageFailure: the address cannot be resolved or the port is taken (the message says which).
    """
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        raise fail(f"--host {host}: not an address of this machine") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        reason = "is in use; pass another --port" if exc.errno == 98 else (exc.strerror or str(exc))
        raise fail(f"port {port} on {host} {reason}") from None
    sock.set_inheritable(True)
    return sock


@command("studio")
@click.option("--model", "model_dir", type=click.Path(path_type=Path), default=None,
              help="Pipeline folder [default: the bundled model].")
@click.option("--host", default=DEFAULT_HOST, show_default=True,
              help="Address to listen on; anything but a loopback address exposes the studio to the network.")
@click.option("--port", type=int_range(1, 65535), default=DEFAULT_PORT, show_default=True, help="Port.")
@click.option("--open", "open_browser", is_flag=True, help="Open the page in the default web browser.")
@device_option(help="cpu or cuda (cuda runs with bf16 autocast).")
def studio(model_dir, host, port, open_browser, device) -> None:
    """Serve the studio: a local page to generate, view (3D), compare and download motions.

    The page and its JSON API (docs/studio.md) work offline; Ctrl-C stops the server and deletes the
    files it generated.
    """
    check_model_dir(model_dir)
    check_device(device)
    sock = _bind(host, port)

    import uvicorn

    from ..studio.app import LOCAL_HOSTS, create_app
    from ..studio.service import Studio

    loopback = _is_loopback(host)
    if not loopback:
        click.echo(f"warning: the studio listens on {host}, reachable from other machines; it has no "
                   "authentication (use the default --host 127.0.0.1 to keep it on this machine)", err=True)
    port = sock.getsockname()[1]
    shown = "127.0.0.1" if host in ("0.0.0.0", "::") else host
    url = f"http://{shown if ':' not in shown else f'[{shown}]'}:{port}/"
    app = create_app(Studio(model_dir, device=device), allowed_hosts=list(LOCAL_HOSTS) if loopback else ["*"])
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", access_log=False, lifespan="on"))
    click.echo(f"remomask studio: {url}  (Ctrl-C to stop)", err=True)
    if open_browser:
        import threading
        import webbrowser

        threading.Timer(1.0, webbrowser.open, args=(url,)).start()
    try:
        server.run(sockets=[sock])
    finally:
        sock.close()
