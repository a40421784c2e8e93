"""How the app is exposed: local by default, a login for anything else, only the workspace's media served.

Gradio serves a file only when it lies in ``allowed_paths``, in its own cache or in its upload
folder.  The app allows the workspace's ``media/`` and ``exports/`` folders and points
Gradio's cache and upload folder inside the workspace too, so nothing outside the workspace
(and not its database, adapters or job folders) can be fetched.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from ..errors import StudioError

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")
DEFAULT_HOST = "127.0.0.1"
MAX_FILE_SIZE = "20mb"  # the largest upload the app accepts
CACHE = ".gradio"  # Gradio's cache and upload folder, inside the workspace


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


def prepare_environment(workspace: Path) -> None:
    """Point Gradio's cache and upload folder inside the workspace; call before building the Blocks."""
    cache = Path(workspace).resolve() / CACHE
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
    return {"server_name": host, "server_port": port, "auth": credentials, "share": False,
            "allowed_paths": [str(p) for p in served_folders(workspace)],
            "blocked_paths": [str(p) for p in blocked(workspace)],
            "max_file_size": MAX_FILE_SIZE, "show_error": True, "quiet": True, "footer_links": [],
            "run_history": False, "enable_monitoring": False, "mcp_server": False, "ssr_mode": False, "pwa": False}
