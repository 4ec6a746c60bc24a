"""Who may talk to the daemon: CURVE keys, roles, and the private default control socket.

Threat model (docs/protocol.md, "Security"): anyone who can reach the data socket can feed
training data; the control socket can also stop the daemon and write files, so it is guarded:

- **Without CURVE** the control socket is an ``ipc`` socket in a folder only the daemon's user
  can enter (mode 0700, socket 0600), so only that user's processes connect. A ``tcp`` control
  endpoint without CURVE is refused unless explicitly allowed (``--insecure-control``).
- **With CURVE** (``--curve-secret``) every socket encrypts and authenticates; only keys in
  ``--allow-keys`` (producers and readers) or ``--admin-keys`` (operators) complete the
  handshake. Read commands (``READ``) are open to both; admin commands (``ADMIN``) only to
  admin keys. A producer's key can never stop the daemon or write a file.
"""

from __future__ import annotations

import os
import socket
import stat
from dataclasses import dataclass, field
from pathlib import Path

import zmq
import zmq.auth
from zmq.auth.thread import ThreadAuthenticator

READ = frozenset({"status", "metrics", "streams", "acked", "job", "models"})
# Documents the admin commands (a test checks every command is in exactly one set); the daemon
# itself treats anything not in READ as admin, so a new command is never open by accident.
ADMIN = frozenset({"shutdown", "set-phase", "save", "export", "refine", "checkpoint",
                   "reset-stream", "configure", "add-model", "remove-model"})
LOCAL_TRANSPORTS = ("ipc://", "inproc://")


@dataclass(frozen=True)
class Curve:
    """Server-side CURVE settings: the server's key pair and the client keys it admits.

    ``allowed`` and ``admins`` hold z85-encoded public keys (bytes), as ``zmq.auth`` loads them.

    Examples
    --------
    >>> import tempfile
    >>> folder = tempfile.mkdtemp()
    >>> _, server = zmq.auth.create_certificates(folder, "server")
    >>> client, _ = zmq.auth.create_certificates(folder, "client")
    >>> curve = Curve.from_files(server, allow_dir=None, admin_dir=None, allow_any=True)
    >>> curve.callback("*", zmq.auth.load_certificate(client)[0]), curve.is_admin("x")
    (True, False)
    """

    public: bytes
    secret: bytes
    allowed: frozenset[bytes] = field(default_factory=frozenset)
    admins: frozenset[bytes] = field(default_factory=frozenset)
    allow_any: bool = False

    @classmethod
    def from_files(cls, secret_file: str | Path, allow_dir: str | Path | None,
                   admin_dir: str | Path | None = None, allow_any: bool = False) -> Curve:
        """Load the server certificate and the client key folders; say what is missing."""
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
        if allow_dir is None and admin_dir is None and not allow_any:
            raise ValueError("--curve-secret needs --allow-keys DIR (producer and reader keys) "
                             "and/or --admin-keys DIR (operator keys); --allow-any-key admits "
                             "every key as a producer and reader")
        return cls(public, secret, _keys(allow_dir, "--allow-keys"),
                   _keys(admin_dir, "--admin-keys"), allow_any)

    def start(self, ctx: zmq.Context) -> ThreadAuthenticator:
        """Start the ZAP handler that checks client keys (call before binding sockets)."""
        auth = ThreadAuthenticator(ctx)
        auth.start()
        auth.configure_curve_callback(domain="*", credentials_provider=self)
        return auth

    def callback(self, domain: str, key: bytes) -> bool:
        """ZAP: may the client with this z85 public key connect at all?"""
        return self.allow_any or key in self.allowed or key in self.admins

    def is_admin(self, user_id: str | None) -> bool:
        """Is the peer (its ZAP User-Id: the z85 public key) an admin key?"""
        return user_id is not None and user_id.encode() in self.admins

    def serve(self, sock: zmq.Socket) -> None:
        """Make ``sock`` a CURVE server."""
        sock.curve_secretkey = self.secret
        sock.curve_publickey = self.public
        sock.curve_server = True


def _keys(folder: str | Path | None, flag: str) -> frozenset[bytes]:
    if folder is None:
        return frozenset()
    if not Path(folder).is_dir():
        raise ValueError(f"{flag} {folder}: not a folder of public certificates")
    return frozenset(zmq.auth.load_certificates(folder))


def client_keys(sock: zmq.Socket, secret_file: str | Path, server_public_file: str | Path) -> None:
    """Make ``sock`` a CURVE client with its own certificate and the server's public one."""
    public, secret = zmq.auth.load_certificate(Path(secret_file))
    server_public, _ = zmq.auth.load_certificate(Path(server_public_file))
    if secret is None:
        raise ValueError(f"{secret_file}: holds no secret key")
    sock.curve_secretkey = secret
    sock.curve_publickey = public
    sock.curve_serverkey = server_public


def private_dir() -> Path:
    """The per-user folder of default sockets: ``$XDG_RUNTIME_DIR/tweenstream`` or
    ``/tmp/tweenstream-<uid>``, created with mode 0700 and refused if anyone else owns it or
    can enter it.

    Examples
    --------
    >>> oct(private_dir().stat().st_mode & 0o777)
    '0o700'
    """
    base = os.environ.get("XDG_RUNTIME_DIR")
    folder = Path(base) / "tweenstream" if base else Path(f"/tmp/tweenstream-{os.getuid()}")
    folder.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = folder.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid() \
            or info.st_mode & 0o077:
        raise ValueError(f"{folder} must be a folder owned by this user with mode 0700 (it "
                         "holds the control socket); remove it or pass --control")
    return folder


def default_control() -> str:
    """The default control endpoint: an ipc socket in ``private_dir()``.

    Examples
    --------
    >>> default_control().startswith("ipc://") and default_control().endswith("/control")
    True
    """
    return f"ipc://{private_dir()}/control"


def check_control(endpoint: str, curve: Curve | None, insecure: bool) -> str | None:
    """Refuse an unauthenticated control endpoint that other machines' processes can reach.

    Returns a warning to log when ``insecure`` allowed it, else None.

    Examples
    --------
    >>> check_control("ipc:///run/x/control", None, False) is None
    True
    >>> check_control("tcp://127.0.0.1:5556", None, False)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: control endpoint tcp://127.0.0.1:5556 without CURVE lets any process ...
    """
    abstract = endpoint.startswith("ipc://@")  # Linux abstract sockets have no file mode
    if curve is not None or (endpoint.startswith(LOCAL_TRANSPORTS) and not abstract):
        return None
    if not insecure:
        raise ValueError(f"control endpoint {endpoint} without CURVE lets any process that can "
                         "reach it stop the daemon and write files; use an ipc:// endpoint "
                         "(the default), --curve-secret with --admin-keys, or "
                         "--insecure-control to accept the risk")
    return (f"control endpoint {endpoint} has no authentication (--insecure-control): any "
            "process that reaches it can stop the daemon and write files")


def claim_ipc(endpoint: str) -> None:
    """Refuse to bind an ipc socket that another live process listens on (binding would take
    it over silently); a file left by a killed process is fine to replace.

    Examples
    --------
    >>> claim_ipc("ipc:///nonexistent/tweenstream/control") is None
    True
    """
    if not endpoint.startswith("ipc://") or endpoint.startswith("ipc://@"):
        return
    path = endpoint[len("ipc://"):]
    if not os.path.exists(path):
        return
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        probe.connect(path)
    except OSError:  # refused: nobody listens, the file is stale
        return
    finally:
        probe.close()
    raise ValueError(f"{endpoint} is in use by another process (another daemon?); stop it, or "
                     "give this daemon other endpoints")


def restrict_ipc(endpoint: str) -> None:
    """Make a bound ipc socket file readable and writable by its owner only (mode 0600)."""
    if endpoint.startswith("ipc://") and not endpoint.startswith("ipc://@") \
            and not endpoint.endswith("*"):
        os.chmod(endpoint[len("ipc://"):], 0o600)
