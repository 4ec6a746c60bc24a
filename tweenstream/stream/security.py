"""Optional CURVE authentication and encryption for the daemon's sockets.

The daemon holds a secret certificate (``--curve-secret``, a file written by
``zmq.auth.create_certificates`` or ``tweenstream keys``). With ``--allow-keys`` (a folder of
client public certificates) only those clients complete the handshake; any other peer is
refused before a single message reaches the daemon.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator


@dataclass(frozen=True)
class Curve:
    """Server-side CURVE settings: the server's key pair and the allowed client keys."""

    public: bytes
    secret: bytes
    allow_dir: str | None = None

    @classmethod
    def from_files(cls, secret_file: str | Path, allow_dir: str | Path | None) -> Curve:
        """Load the server certificate; check that the allow-list folder exists."""
        path = Path(secret_file)
        if not path.is_file():
            raise ValueError(f"--curve-secret {path}: no such file")
        try:
            public, secret = zmq.auth.load_certificate(path)
        except (ValueError, OSError) as err:
            raise ValueError(f"--curve-secret {path}: not a certificate ({err})") from None
        if secret is None:
            raise ValueError(f"--curve-secret {path}: holds no secret key; pass the "
                             "'.key_secret' file")
        if allow_dir is not None and not Path(allow_dir).is_dir():
            raise ValueError(f"--allow-keys {allow_dir}: not a folder of public certificates")
        return cls(public, secret, str(allow_dir) if allow_dir is not None else None)

    def start(self, ctx: zmq.Context) -> ThreadAuthenticator:
        """Start the ZAP handler that checks client keys (call before binding sockets)."""
        auth = ThreadAuthenticator(ctx)
        auth.start()
        location = self.allow_dir if self.allow_dir is not None else zmq.auth.CURVE_ALLOW_ANY
        auth.configure_curve(domain="*", location=location)
        return auth

    def serve(self, sock: zmq.Socket) -> None:
        """Make ``sock`` a CURVE server."""
        sock.curve_secretkey = self.secret
        sock.curve_publickey = self.public
        sock.curve_server = True


def client_keys(sock: zmq.Socket, secret_file: str | Path, server_public_file: str | Path) -> None:
    """Make ``sock`` a CURVE client with its own certificate and the server's public one."""
    public, secret = zmq.auth.load_certificate(Path(secret_file))
    server_public, _ = zmq.auth.load_certificate(Path(server_public_file))
    if secret is None:
        raise ValueError(f"{secret_file}: holds no secret key")
    sock.curve_secretkey = secret
    sock.curve_publickey = public
    sock.curve_serverkey = server_public
