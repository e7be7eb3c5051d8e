"""A real `redis-server` for tests: started on a free loopback port, stopped after.

Without `redis-server` on PATH the tests that need it skip, saying how to get it; with the `CI`
environment variable set they fail instead (CI must run them).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Final

import pytest

START_TIMEOUT: Final = 30.0
"""Seconds a server may take to answer PING (far past a normal start, even on a busy machine)."""
HOW_TO_GET: Final = (
    "redis-server is not on PATH: install it (apt-get install redis-server, brew install redis)"
)


def executable() -> str:
    """The path of redis-server; a skip (a failure under CI) when there is none."""
    path = shutil.which("redis-server")
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{HOW_TO_GET}; CI runs the Redis tests, it does not skip them")
        pytest.skip(HOW_TO_GET)
    return path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1.0) as sock:
            sock.sendall(b"PING\r\n")
            return sock.recv(16).startswith(b"+PONG")
    except OSError:
        return False


class RedisServer:
    """One redis-server process with its own directory. `persistent` turns on the append-only
    file (`appendonly yes`): what it acknowledged survives a restart. Without it nothing does."""

    def __init__(self, directory: Path, *, persistent: bool = False) -> None:
        self.directory = directory
        self.persistent = persistent
        self.port = 0
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start on a free port (the same one on a restart), and wait until it answers PING."""
        binary = executable()
        self.directory.mkdir(parents=True, exist_ok=True)
        attempts = 1 if self.port else 5  # a fresh port taken meanwhile: pick another
        for _ in range(attempts):
            port = self.port or free_port()
            log = self.directory / "redis.log"
            args = [
                binary, "--bind", "127.0.0.1", "--port", str(port), "--save", "",
                "--appendonly", "yes" if self.persistent else "no", "--dir", str(self.directory),
                "--logfile", str(log),
            ]
            proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL)
            deadline = time.monotonic() + START_TIMEOUT
            while proc.poll() is None and not answers_ping(port):
                if time.monotonic() > deadline:
                    proc.kill()
                    proc.wait()
                    raise RuntimeError(f"redis-server did not answer within {START_TIMEOUT:g} s")
                time.sleep(0.01)
            if proc.poll() is None:
                self._proc, self.port = proc, port
                return
        text = log.read_text(errors="replace") if log.exists() else ""
        raise RuntimeError(f"redis-server did not start on port {port}:\n{text[-2000:]}")

    def stop(self) -> None:
        """SIGTERM (a persistent server syncs its append-only file first), and wait for the exit."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=START_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def restart(self) -> None:
        self.stop()
        self.start()
