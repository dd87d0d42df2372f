"""The README's quick start, pasted as written, against `aspsms-verify serve` in sandbox mode."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from tests.helpers import free_port, wait_for

README = Path(__file__).resolve().parent.parent / "README.md"

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(shutil.which("curl") is None, reason="the quick start uses curl")]


def quick_start() -> str:
    """The shell block of the README's quick-start section."""
    section = README.read_text(encoding="utf-8").split("\n## Quick start", 1)[1]
    section = section.split("\n## ", 1)[0]
    (block,) = re.findall(r"^```sh\n(.*?)^```", section, flags=re.MULTILINE | re.DOTALL)
    return block


def sandbox_environment(port: int) -> dict[str, str]:
    """The environment of a fresh shell: nothing of the service configured."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("ASPSMS_", "OTP_", "REDIS_", "WEB_CONCURRENCY"))}
    return {**env, "PORT": str(port)}


def answers(url: str, server: subprocess.Popen) -> bool:
    if server.poll() is not None:
        raise RuntimeError("aspsms-verify serve exited: " + server.stderr.read().decode()[-2000:])
    try:
        return requests.get(url, timeout=0.5).status_code == 200
    except requests.RequestException:
        return False


def test_the_quick_start_block_reads_the_code_it_checks_from_the_sandbox():
    block = quick_start()
    assert "/sandbox/messages" in block and "$CODE" in block
    assert not re.search(r'"code": "[0-9]', block)  # no example code to spend an attempt on
    assert "jq" not in re.sub(r"#.*", "", block)  # not installed everywhere


def test_the_quick_start_pasted_as_written_ends_in_an_approved_verification():
    port = free_port()
    env = sandbox_environment(port)
    server = subprocess.Popen([sys.executable, "-m", "service.cli", "serve"], env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        wait_for(lambda: answers(f"http://127.0.0.1:{port}/healthz", server), timeout=30)
        shell = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", quick_start()], env=env,
                               capture_output=True, text=True, timeout=60)
    finally:
        server.terminate()
        server.wait(15)
        server.stderr.close()
    assert shell.returncode == 0, shell.stderr
    lines = [line for line in shell.stdout.splitlines() if line.strip()]
    assert json.loads(lines[0]) == {"status": "ok"}
    assert json.loads(lines[1])["status"] == "pending"
    assert re.fullmatch(r"code: [0-9]{6}", lines[2])
    checked = json.loads(lines[3])
    assert checked["valid"] is True and checked["status"] == "approved"
    assert checked["attempts_remaining"] == json.loads(lines[1])["attempts_remaining"]
