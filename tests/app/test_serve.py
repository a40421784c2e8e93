"""``studio serve`` says where it runs once it is ready, and is ready soon."""
from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request

import pytest

from flow import free_port

pytestmark = pytest.mark.slow
READY_S = 60  # generous for a loaded CI machine; the closing note reports the measured time


def test_serve_prints_its_address_once_ready(tmp_path):
    port = free_port()
    env = {**os.environ, "STUDIO_HOME": str(tmp_path / "ws")}
    started = time.monotonic()
    server = subprocess.Popen([sys.executable, "-m", "studio", "serve", "--port", str(port)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = server.stdout.readline().strip()
        ready = time.monotonic() - started
        assert line == f"Studio running at http://127.0.0.1:{port}", line
        assert ready < READY_S
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as page:
            assert page.status == 200  # ready means ready: the page answers at once
    finally:
        server.terminate()
        server.wait(timeout=30)
