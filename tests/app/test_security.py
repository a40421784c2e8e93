"""Exposure: a non-local host needs a login; only the workspace's media is served over HTTP."""
from __future__ import annotations

import socket
import urllib.error
import urllib.parse
import urllib.request

import pytest

from studio.app import security
from studio.cli import main
from studio.errors import StudioError


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_non_local_host_without_auth_is_refused_with_a_sentence(workspace, capsys):
    code = main(["serve", "--host", "0.0.0.0", "--workspace", str(workspace)])
    err = capsys.readouterr().err
    assert code == 2
    assert "Serving on 0.0.0.0 exposes the studio to the network; give --auth USER:PASSWORD" in err
    assert "Traceback" not in err


def test_launch_arguments_are_local_private_and_limited(tmp_path):
    kwargs = security.launch_kwargs(tmp_path / "ws")
    assert kwargs["server_name"] == "127.0.0.1" and kwargs["share"] is False and kwargs["auth"] is None
    assert kwargs["allowed_paths"] == [str((tmp_path / "ws").resolve() / "media"),
                                       str((tmp_path / "ws").resolve() / "exports")]
    assert kwargs["max_file_size"] == security.MAX_FILE_SIZE
    with pytest.raises(StudioError, match="exposes the studio"):
        security.launch_kwargs(tmp_path / "ws", host="0.0.0.0")
    login = security.launch_kwargs(tmp_path / "ws", host="0.0.0.0", auth="ann:secret")["auth"]
    assert login("ann", "secret") and not security.LoginThrottle("ann", "secret")("ann", "wrong")
    with pytest.raises(StudioError, match="USER:PASSWORD"):
        security.parse_auth("no-password")


def _get(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_only_the_workspace_media_is_served(workspace, fake, tmp_path):
    from studio.app import launch
    from studio.engine import Studio

    studio = Studio(workspace)
    made = studio.generate("fake", "a colour", n=1)
    outside = tmp_path / "secret.txt"
    outside.write_text("not for the browser")
    app = launch(studio, port=free_port(), block=False, names=["fake"])
    try:
        base = app.local_url.rstrip("/") + "/gradio_api/file="

        def fetch(path) -> int:
            return _get(base + urllib.parse.quote(str(path)))

        assert fetch(made[0].path) == 200  # a candidate's media file
        assert fetch(outside) in (403, 404)  # next to the workspace, not in it
        assert fetch("/etc/passwd") in (403, 404)
        assert fetch(studio.store.root / "studio.db") in (403, 404)  # in the workspace, but not media
        assert fetch(f"{studio.store.root}/media/../studio.db") in (403, 404)
        assert fetch(studio.store.root / "media" / "missing.png") in (403, 404)
    finally:
        app.close()


def test_wrong_passwords_are_throttled_on_the_live_login(workspace, fake):
    import time

    from studio.app import launch
    from studio.engine import Studio

    app = launch(Studio(workspace), port=free_port(), block=False, names=["fake"], auth="ann:secret")
    try:
        login = app.local_url.rstrip("/") + "/login"

        def post(password: str) -> int:
            data = urllib.parse.urlencode({"username": "ann", "password": password}).encode()
            try:
                with urllib.request.urlopen(urllib.request.Request(login, data=data), timeout=30) as response:
                    return response.status
            except urllib.error.HTTPError as exc:
                return exc.code

        began = time.monotonic()
        answers = [post(f"guess{i}") for i in range(20)]
        assert all(code >= 400 for code in answers)
        if time.monotonic() - began < security.FIRST_DELAY:  # still inside the first failure's delay
            assert post("secret") >= 400  # refused unchecked, even with the right password
        throttle = app.auth
        assert isinstance(throttle, security.LoginThrottle) and throttle.failures < 5  # the rest went unchecked
        time.sleep(max(0.0, throttle.refused_until - time.monotonic()) + 0.05)
        assert post("secret") == 200
    finally:
        app.close()


def _upload(url: str, size: int) -> int:
    boundary = "studio-test-boundary"
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"big.bin\"\r\n"
            "Content-Type: application/octet-stream\r\n\r\n")
    body = head.encode() + b"\0" * size + f"\r\n--{boundary}--\r\n".encode()
    kind = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
    request = urllib.request.Request(url, data=body, headers=kind)
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_uploads_have_a_quota_and_are_cleaned_up(workspace, fake, monkeypatch):
    """Any number of 20 MB uploads landed in the workspace's .gradio/uploads and stayed there."""
    from studio.app import launch
    from studio.engine import Studio

    leftover = security.uploads_dir(workspace) / "old" / "from-an-earlier-serve.bin"
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"\0" * 1000)
    monkeypatch.setattr(security, "UPLOAD_QUOTA", 2**20)
    app = launch(Studio(workspace), port=free_port(), block=False, names=["fake"])
    try:
        assert not leftover.exists()  # what an earlier serve left is gone
        assert app.delete_cache == (security.UPLOAD_CLEAN_EVERY, security.UPLOAD_MAX_AGE)
        url = app.local_url.rstrip("/") + "/gradio_api/upload"
        assert _upload(url, 600_000) == 200
        assert _upload(url, 600_000) == 413  # past the quota
        assert _upload(url, 300_000) == 200  # still room for this one
        assert security.folder_bytes(security.uploads_dir(workspace)) <= 2**20
    finally:
        app.close()


def test_a_refused_upload_is_read_to_its_end_before_the_413(tmp_path):
    """A 413 sent while the browser was still sending closed the connection under it: a broken pipe
    and no sentence (seen once in CI)."""
    import asyncio

    (tmp_path / "full.bin").write_bytes(b"\0" * 2000)
    chunks = [{"type": "http.request", "body": b"\0" * 500, "more_body": True} for _ in range(3)]
    chunks.append({"type": "http.request", "body": b"\0" * 500, "more_body": False})
    sent, read = [], []

    async def receive():
        read.append(chunks[len(read)])
        return read[-1]

    async def send(message):
        if message["type"] == "http.response.start":
            assert len(read) == len(chunks), "the answer went out before the body was read"
        sent.append(message)

    async def inner(scope, receive, send):
        raise AssertionError("an upload past the quota reached Gradio")

    quota = security.UploadQuota(inner, tmp_path, quota=3000)
    scope = {"type": "http", "method": "POST", "path": "/gradio_api/upload",
             "headers": [(b"content-length", b"2000")]}
    asyncio.run(quota(scope, receive, send))
    assert sent[0]["status"] == 413 and b"upload space is full" in sent[1]["body"]
