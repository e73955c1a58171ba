"""The README's quick start, run as written: its shop.py under `flask run`, its curl commands.

Each `$ curl ...` line of the quick start's console blocks runs in a shell against the shop
(localhost:5000 becomes the test's port); where the README shows an answer, the real one
must equal it, but for the values that change from run to run (`token`, `updated_at`).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

README = Path(__file__).resolve().parent.parent / "README.md"
VARYING = ("token", "updated_at")

pytestmark = pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")


def quick_start() -> tuple[str, list[list[tuple[str, str]]]]:
    """The quick start's Python block, and its console blocks as (command, shown answer)."""
    text = README.read_text()
    section = text[text.index("## Quick start") :]
    section = section[: section.index("\n## ", 1)]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code, "no Python block in the quick start"
    blocks = []
    for block in re.findall(r"```console\n(.*?)```", section, re.S):
        steps: list[tuple[str, str]] = []
        command: list[str] = []
        for line in block.splitlines():
            if line.startswith("$ "):
                command = [line[2:]]
                steps.append(("", ""))
            elif command and command[-1].endswith("\\"):
                command.append(line)
            else:
                steps[-1] = (steps[-1][0], steps[-1][1] + line + "\n")
                continue
            steps[-1] = ("\n".join(command), steps[-1][1])
        blocks.append(steps)
    return code.group(1), blocks


def normalized(answer: str) -> Any:
    try:
        data = json.loads(answer)
    except ValueError:
        return answer.strip()
    if isinstance(data, dict):
        for key in VARYING:
            if key in data:
                data[key] = "(varies)"
    return data


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def shop(tmp_path: Path) -> Any:
    code, _ = quick_start()
    (tmp_path / "shop.py").write_text(code)
    port = free_port()
    env = {**os.environ, "FLASK_APP": "shop", "PYTHONDONTWRITEBYTECODE": "1"}
    server = subprocess.Popen(
        [sys.executable, "-m", "flask", "--app", "shop", "run", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 30
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if server.poll() is not None or time.monotonic() > deadline:
                server.kill()
                pytest.fail(f"shop.py did not start: {server.communicate()[1].decode()}")
            time.sleep(0.1)
    yield tmp_path, port
    server.terminate()
    server.wait(timeout=10)


def run(command: str, cwd: Path, port: int) -> str:
    command = command.replace("localhost:5000", f"127.0.0.1:{port}")
    done = subprocess.run(
        ["bash", "-c", command], cwd=cwd, capture_output=True, text=True, timeout=30
    )
    assert done.returncode == 0, (command, done.stderr)
    return done.stdout


def test_the_quick_start_runs_as_written(shop):
    cwd, port = shop
    _, blocks = quick_start()
    assert len(blocks) >= 2
    answers = []
    for steps in blocks:
        for command, shown in steps:
            if command.startswith("flask "):
                continue  # the fixture serves it
            answer = run(command, cwd, port)
            answers.append((command, answer))
            if "/cart" in command:  # curl exits 0 on a 4xx too: the answer must be a cart
                assert "items" in json.loads(answer), (command, answer)
            if shown.strip():
                assert normalized(answer) == normalized(shown), command
    # The merge really happened: the guest's 5 mugs and the customer's 3 are one cart of 8.
    merged = [json.loads(a) for c, a in answers if c.startswith("curl -b jar localhost:5000/cart")]
    assert merged[-1]["quantity"] == 8


def test_the_quick_start_checkout_takes_only_what_was_reviewed(shop):
    cwd, port = shop

    def curl(args: str) -> Any:
        return json.loads(run(f"curl -s -b c -c c {args}", cwd, port))

    assert run("curl -s -b c -c c -X POST localhost:5000/login/7", cwd, port) == "logged in"
    body = "-H 'Content-Type: application/json' -d '{\"product_id\": \"sku-2\"}'"
    curl(f"-X POST localhost:5000/cart/items {body}")
    review = curl("localhost:5000/checkout")
    assert review["total"] == "4.50"
    curl(f"-X POST localhost:5000/cart/items {body}")  # another device adds a spoon
    changed = curl(f"-X POST localhost:5000/checkout -d token={review['token']}")
    assert changed["changed"]["quantity"] == 2 and changed["changed"]["total_cost"] == "9.00"
    review = curl("localhost:5000/checkout")
    order = curl(f"-X POST localhost:5000/checkout -d token={review['token']}")
    assert order == {"total": "9.00", "lines": 1}
