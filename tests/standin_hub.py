"""A stand-in Hugging Face hub on 127.0.0.1, for the tests of ``studio models pull``.

It answers the few routes huggingface_hub's ``model_info`` and ``snapshot_download`` use (repo info,
the recursive tree, HEAD and GET of ``/resolve/``, with byte ranges so a partial download resumes),
serving repos held in memory in the hub's file layout.  ``slow`` files are sent in small timed
chunks, so a test can kill a pull half-way.  Every request is logged (method, path, Range).
"""
from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

CHUNK = 64 * 1024


class StandinHub:
    def __init__(self, repos: dict[str, dict[str, bytes]], slow: dict[str, float] | None = None):
        """``repos``: repo id -> file path -> bytes; ``slow``: file path -> bytes per second."""
        self.repos = repos
        self.slow = slow or {}
        self.log: list[tuple[str, str, str | None]] = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_HEAD(self):
                hub._serve(self, body=False)

            def do_GET(self):
                hub._serve(self, body=True)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> "StandinHub":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    @staticmethod
    def sha(repo: dict[str, bytes]) -> str:
        digest = hashlib.sha1()
        for name in sorted(repo):
            digest.update(name.encode() + hashlib.sha256(repo[name]).digest())
        return digest.hexdigest()

    def _json(self, handler, data, status: int = 200, error: str | None = None) -> None:
        body = json.dumps(data).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        if error:
            handler.send_header("X-Error-Code", error)
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(body)

    def _serve(self, handler, body: bool) -> None:
        path = unquote(urlparse(handler.path).path)
        self.log.append((handler.command, path, handler.headers.get("Range")))
        if m := re.fullmatch(r"/api/models/([^/]+/[^/]+)(?:/revision/[^/]+)?", path):
            repo = self.repos.get(m[1])
            if repo is None:
                return self._json(handler, {"error": "Repository not found"}, 404, "RepoNotFound")
            return self._json(handler, {"id": m[1], "modelId": m[1], "sha": self.sha(repo), "private": False,
                                        "gated": False, "disabled": False, "tags": [], "downloads": 0, "likes": 0,
                                        "siblings": [{"rfilename": n, "size": len(b)} for n, b in sorted(repo.items())]})
        if m := re.fullmatch(r"/api/models/([^/]+/[^/]+)/tree/([^/]+)(/.*)?", path):
            repo = self.repos.get(m[1])
            if repo is None:
                return self._json(handler, {"error": "Repository not found"}, 404, "RepoNotFound")
            return self._json(handler, [{"type": "file", "path": n, "size": len(b),
                                         "oid": hashlib.sha1(b).hexdigest(),
                                         "lfs": {"oid": hashlib.sha256(b).hexdigest(), "size": len(b),
                                                 "pointerSize": 130}}
                                        for n, b in sorted(repo.items())])
        if m := re.fullmatch(r"/([^/]+/[^/]+)/resolve/([^/]+)/(.+)", path):
            repo = self.repos.get(m[1])
            if repo is None or m[3] not in repo:
                return self._json(handler, {"error": "Entry not found"}, 404,
                                  "RepoNotFound" if repo is None else "EntryNotFound")
            return self._file(handler, repo, m[3], body)
        return self._json(handler, {"error": f"no route {path}"}, 404)

    def _file(self, handler, repo: dict[str, bytes], name: str, body: bool) -> None:
        data = repo[name]
        start = 0
        if body and (match := re.fullmatch(r"bytes=(\d+)-(\d*)", handler.headers.get("Range") or "")):
            start = int(match[1])
        handler.send_response(206 if start else 200)
        handler.send_header("X-Repo-Commit", self.sha(repo))
        handler.send_header("ETag", f'"{hashlib.sha256(data).hexdigest()}"')
        handler.send_header("Accept-Ranges", "bytes")
        handler.send_header("Content-Length", str(len(data) - start))
        if start:
            handler.send_header("Content-Range", f"bytes {start}-{len(data) - 1}/{len(data)}")
        handler.end_headers()
        if not body:
            return
        rate = self.slow.get(name)
        try:
            for at in range(start, len(data), CHUNK):
                handler.wfile.write(data[at:at + CHUNK])
                if rate:
                    time.sleep(CHUNK / rate)
        except (BrokenPipeError, ConnectionResetError):  # the client was killed mid-file
            pass


def repo_from_folder(folder: Path) -> dict[str, bytes]:
    """A model folder's files as a hub repo (paths relative to the folder)."""
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}
