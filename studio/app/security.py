"""How the app is exposed: local by default, a login for anything else, only the workspace's media served.

The login comes from ``--auth USER:PASSWORD``, ``--auth-file FILE`` or ``$STUDIO_AUTH`` (the
last two keep the password out of ``ps``).  Wrong passwords are throttled: after each
failure every login is refused, unchecked, for a delay that doubles up to a limit, so
guessing runs at a few tries a minute at most.

Uploads (the page has no upload field, but Gradio's /upload route takes files from anyone who can
reach the page) have a quota: past ``UPLOAD_QUOTA`` in the upload folder an upload is refused, and
Gradio's ``delete_cache`` removes files older than ``UPLOAD_MAX_AGE`` (what an earlier serve left is
removed at start).

Gradio serves a file only when it lies in ``allowed_paths``, in its own cache or in its upload
folder.  The app allows the workspace's ``media/`` and ``exports/`` folders and points
Gradio's cache and upload folder inside the workspace too, so nothing outside the workspace
(and not its database, adapters or job folders) can be fetched.
"""
from __future__ import annotations

import hmac
import os
import shutil
import socket
import threading
import time
from pathlib import Path
from typing import Any, Callable, Mapping

from ..errors import StudioError

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
DEFAULT_HOST = "127.0.0.1"
MAX_FILE_SIZE = "20mb"  # the largest upload the app accepts
DRAIN_LIMIT = 64 * 2**20  # a refused upload's body is read and dropped up to this, so its sender sees the 413
UPLOAD_QUOTA = 200 * 2**20  # bytes Gradio's upload folder may hold in all; an upload past it is refused (413)
UPLOAD_MAX_AGE = 3600  # seconds an upload (or a file Gradio cached for the page) is kept ...
UPLOAD_CLEAN_EVERY = 600  # ... removed this often by Gradio's delete_cache, and all of them when serve stops
CACHE = ".gradio"  # Gradio's cache and upload folder, inside the workspace
AUTH_ENV = "STUDIO_AUTH"  # USER:PASSWORD from the environment, when no --auth or --auth-file is given
FIRST_DELAY = 1.0  # seconds every login is refused after one wrong password
MAX_DELAY = 30.0  # the delay doubles per failure in a row, up to this


def read_auth(auth: str | None = None, auth_file: str | Path | None = None,
              environ: Mapping[str, str] | None = None) -> str | None:
    """The login as USER:PASSWORD from --auth, else --auth-file, else $STUDIO_AUTH; None for none."""
    environ = os.environ if environ is None else environ
    if auth and auth_file:
        raise StudioError("Give the login once: --auth or --auth-file, not both.")
    if auth_file:
        try:
            text = Path(auth_file).expanduser().read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or "not UTF-8 text"
            raise StudioError(f"Cannot read the login file {auth_file}: {reason}.") from None
        lines = [line.strip() for line in text.splitlines() if line.strip()]
        if not lines:
            raise StudioError(f"The login file {auth_file} is empty; write USER:PASSWORD in it.")
        return lines[0]
    return auth or environ.get(AUTH_ENV) or None


class LoginThrottle:
    """Gradio's ``auth`` callable: one login, checked in constant time, throttled after failures.

    Gradio calls it on its event loop, so it never sleeps: while throttled it refuses at once.
    """

    def __init__(self, user: str, password: str, first_delay: float = FIRST_DELAY, max_delay: float = MAX_DELAY,
                 clock: Callable[[], float] = time.monotonic):
        self._user, self._password = user.encode(), password.encode()
        self.first_delay, self.max_delay, self.clock = first_delay, max_delay, clock
        self.failures = 0
        self.refused_until = 0.0
        self._lock = threading.Lock()

    def __call__(self, username: str, password: str) -> bool:
        with self._lock:
            now = self.clock()
            if now < self.refused_until:
                return False
            ok = hmac.compare_digest(username.encode(), self._user) & \
                hmac.compare_digest(password.encode(), self._password)
            if ok:
                self.failures, self.refused_until = 0, 0.0
            else:
                self.failures += 1
                self.refused_until = now + min(self.max_delay, self.first_delay * 2 ** (self.failures - 1))
            return ok


def check_address(host: str, port: int | None) -> None:
    """The port is valid and free on an address this machine has; one sentence otherwise."""
    if port is not None and not 1 <= port <= 65535:
        raise StudioError(f"--port must be between 1 and 65535, not {port}.")
    try:
        infos = socket.getaddrinfo(host, port or 0, type=socket.SOCK_STREAM)
    except (socket.gaierror, UnicodeError) as exc:
        raise StudioError(f"Cannot serve on '{host}': the address is unknown ({exc.args[-1]}).") from None
    family, kind, proto, _, address = infos[0]
    with socket.socket(family, kind, proto) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            busy = exc.errno == 98  # EADDRINUSE
            raise StudioError(f"Cannot serve on {host}:{port}: " + (
                "the port is in use; pick another --port." if busy else
                f"{exc.strerror or exc} (is {host} an address of this machine?).")) from None


def parse_auth(auth: str | tuple[str, str] | None) -> tuple[str, str] | None:
    if auth is None or isinstance(auth, tuple):
        return auth
    user, sep, password = auth.partition(":")
    if not sep or not user or not password:
        raise StudioError("--auth must look like USER:PASSWORD.")
    return user, password


def check_host(host: str, auth: Any) -> None:
    """A non-local address needs a login: anyone on the network could otherwise use the studio."""
    if host not in LOCAL_HOSTS and not auth:
        raise StudioError(f"Serving on {host} exposes the studio to the network; "
                          "give --auth USER:PASSWORD or use --host 127.0.0.1.")


def exports_dir(workspace: Path) -> Path:
    return Path(workspace) / "exports"


def served_folders(workspace: Path) -> list[Path]:
    """The only folders whose files the app hands to a browser."""
    root = Path(workspace).resolve()
    return [root / "media", exports_dir(root)]


def blocked(workspace: Path) -> list[Path]:
    root = Path(workspace).resolve()
    return [root / "studio.db", root / "jobs", root / "versions"]


def uploads_dir(workspace: Path) -> Path:
    return Path(workspace).resolve() / CACHE / "uploads"


def folder_bytes(folder: Path) -> int:
    """The bytes of every file under ``folder`` (0 when it is missing)."""
    total = 0
    for parent, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.lstat(os.path.join(parent, name)).st_size
            except OSError:
                pass
    return total


async def _drain(receive: Any, limit: int) -> None:
    """Read and drop a refused request's body (up to ``limit`` bytes), so the client, still sending,
    gets the answer rather than a connection closed under it (a broken pipe, no sentence)."""
    read = 0
    while read <= limit:
        message = await receive()
        if message["type"] != "http.request":
            return
        read += len(message.get("body", b""))
        if not message.get("more_body", False):
            return


class UploadQuota:
    """ASGI middleware: an upload that would take the upload folder past ``quota`` bytes gets a 413."""

    def __init__(self, app: Any, folder: str | Path, quota: int = UPLOAD_QUOTA):
        self.app, self.folder, self.quota = app, Path(folder), quota

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"].rstrip("/").endswith("/upload"):
            import anyio

            headers = dict(scope.get("headers") or [])
            try:
                incoming = int(headers.get(b"content-length", b"0"))
            except ValueError:
                incoming = 0
            used = await anyio.to_thread.run_sync(folder_bytes, self.folder)
            if used + incoming > self.quota:
                from starlette.responses import PlainTextResponse

                message = (f"The studio's upload space is full ({self.quota // 2**20} MB); uploads are removed "
                           f"after {UPLOAD_MAX_AGE // 60} minutes, try again then.")
                await _drain(receive, DRAIN_LIMIT)
                await PlainTextResponse(message, status_code=413)(scope, receive, send)
                return
        await self.app(scope, receive, send)


def prepare_environment(workspace: Path) -> None:
    """Point Gradio's cache and upload folder inside the workspace (emptied of an earlier serve's
    files); call before building the Blocks."""
    cache = Path(workspace).resolve() / CACHE
    shutil.rmtree(cache / "uploads", ignore_errors=True)
    (cache / "uploads").mkdir(parents=True, exist_ok=True)
    os.environ["GRADIO_TEMP_DIR"] = str(cache / "uploads")
    os.environ["GRADIO_EXAMPLES_CACHE"] = str(cache / "examples")
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    for folder in served_folders(workspace):
        folder.mkdir(parents=True, exist_ok=True)


def launch_kwargs(workspace: Path, host: str = DEFAULT_HOST, port: int | None = None,
                  auth: str | tuple[str, str] | None = None) -> dict[str, Any]:
    """The arguments for ``Blocks.launch``: never a share link, only the workspace's media."""
    credentials = parse_auth(auth)
    check_host(host, credentials)
    return {"server_name": host, "server_port": port, "auth": LoginThrottle(*credentials) if credentials else None,
            "share": False,
            "allowed_paths": [str(p) for p in served_folders(workspace)],
            "blocked_paths": [str(p) for p in blocked(workspace)],
            "max_file_size": MAX_FILE_SIZE,
            "app_kwargs": {"middleware": [_middleware(UploadQuota, folder=uploads_dir(workspace),
                                                      quota=UPLOAD_QUOTA)]},
            "show_error": True, "quiet": True, "footer_links": [],
            "run_history": False, "enable_monitoring": False, "mcp_server": False, "ssr_mode": False, "pwa": False}


def _middleware(cls: Any, **options: Any) -> Any:
    from starlette.middleware import Middleware

    return Middleware(cls, **options)
