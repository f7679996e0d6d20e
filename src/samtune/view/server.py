"""Serve the page with uvicorn on a socket bound before anything is printed.

The socket is bound here (port 0 picks a free one), so a port in use is refused in one
line before the URL is printed, and the printed port is the one served. Ctrl-C stops
uvicorn cleanly (it finishes open requests, then returns).
"""

from __future__ import annotations

import errno
import secrets
import socket
import sys
import webbrowser
from pathlib import Path

from samtune.errors import UserError
from samtune.view.security import is_loopback


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on (host, port); UserError when the port is taken or the host unknown."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as error:
        raise UserError(f"--host {host}: cannot resolve it ({error.strerror}); give an address such as 127.0.0.1") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.bind(address)
    except OSError as error:
        sock.close()
        if error.errno == errno.EADDRINUSE:
            raise UserError(f"port {port} on {host} is in use; pass another --port, or --port 0 for a free one") from None
        raise UserError(f"cannot listen on {host}:{port} ({error.strerror}); pass another --host or --port") from None
    sock.listen(128)
    return sock


def new_token(host: str) -> str | None:
    """A random token for a non-loopback host; None on loopback (the Host check applies there)."""
    return None if is_loopback(host) else secrets.token_urlsafe(24)


def page_url(sock: socket.socket, host: str, token: str | None) -> str:
    port = sock.getsockname()[1]
    shown = f"[{host}]" if ":" in host and not host.startswith("[") else host
    return f"http://{shown}:{port}/" + (f"?token={token}" if token else "")


def serve(app, sock: socket.socket, url: str, corrections: Path, open_browser: bool = True) -> None:
    """Run uvicorn on `sock` until Ctrl-C."""
    import uvicorn

    print(f"samtune view: {url}", flush=True)
    print(f"corrections are written to {corrections}; Ctrl-C stops the server", flush=True)
    if open_browser:
        try:
            webbrowser.open(url)
        except Exception as error:  # no browser on this machine: the URL is printed above
            print(f"samtune: warning: could not open a browser ({error}); open the URL above", file=sys.stderr)
    config = uvicorn.Config(app, log_level="warning", lifespan="off")
    try:
        uvicorn.Server(config).run(sockets=[sock])
    except KeyboardInterrupt:  # uvicorn re-raises Ctrl-C after its clean shutdown: stopping is the normal end
        pass
    print("samtune view: stopped", flush=True)
