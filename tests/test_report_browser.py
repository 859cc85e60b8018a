"""report.html in a real headless Chromium, driven over the DevTools protocol (CDP).

Skipped only when no `chromium` is installed (`.ci/run` installs Debian's package).
The browser binds the DevTools port on loopback and loads the report from a
file:// URL: nothing leaves the machine.
"""

from __future__ import annotations

import asyncio
import base64
import itertools
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import require_chromium

from bench.present.report import build_report
from bench.present.report.figures import PLOTS

FIXTURE = Path(__file__).parent / "fixtures" / "report" / "sim-fast-ladder.json"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Generous bound on any single wait, so a wedged browser fails the test instead of
# hanging it; nothing here measures time.
WAIT_S = 60.0



@pytest.fixture(autouse=True)
def _chromium() -> None:
    require_chromium(CHROMIUM)


@pytest.fixture(scope="module")
def devtools_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A headless Chromium on loopback; yields its browser websocket URL."""
    assert CHROMIUM is not None
    profile = tmp_path_factory.mktemp("chromium-profile")
    args = [
        CHROMIUM, "--headless=new", "--remote-debugging-address=127.0.0.1",
        "--remote-debugging-port=0", f"--user-data-dir={profile}", "--no-first-run",
        "--no-default-browser-check", "--disable-gpu", "--disable-extensions",
        "--disable-background-networking", "--disable-component-update", "--disable-sync",
        "--window-size=1200,900", "about:blank",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        args.insert(1, "--no-sandbox")  # Chromium refuses to run as root with its sandbox
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE)
    try:
        assert proc.stderr is not None
        url = None
        # Chromium announces the port it picked on stderr; a closed pipe means it died.
        for raw in iter(proc.stderr.readline, b""):
            match = re.search(rb"DevTools listening on (ws://\S+)", raw)
            if match:
                url = match.group(1).decode()
                break
        assert url is not None, f"chromium exited ({proc.poll()}) without a DevTools URL"
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=WAIT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        if proc.stderr is not None:
            proc.stderr.close()


class Cdp:
    """A minimal flat-session CDP client: commands by id, events into a list."""

    def __init__(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        self.ws = ws
        self.ids = itertools.count(1)
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.events: list[dict[str, Any]] = []
        self.event_waiters: list[tuple[str, asyncio.Future[dict[str, Any]]]] = []
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for message in self.ws:
            if message.type != aiohttp.WSMsgType.TEXT:
                break
            data = message.json()
            if "id" in data and data["id"] in self.pending:
                self.pending.pop(data["id"]).set_result(data)
            elif "method" in data:
                self.events.append(data)
                for method, future in list(self.event_waiters):
                    if method == data["method"] and not future.done():
                        future.set_result(data)

    async def send(self, method: str, params: dict[str, Any] | None = None,
                   session: str | None = None) -> dict[str, Any]:
        ident = next(self.ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[ident] = future
        message: dict[str, Any] = {"id": ident, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        await self.ws.send_json(message)
        reply = await asyncio.wait_for(future, WAIT_S)
        assert "error" not in reply, f"{method}: {reply['error']}"
        return reply["result"]

    def expect(self, method: str) -> asyncio.Future[dict[str, Any]]:
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.event_waiters.append((method, future))
        return future


async def inspect(url: str, page: Path) -> dict[str, Any]:
    """Load `page`; return its problems, image states and a screenshot."""
    async with aiohttp.ClientSession() as http, http.ws_connect(url, max_msg_size=0) as ws:
        cdp = Cdp(ws)
        target = await cdp.send("Target.createTarget", {"url": "about:blank"})
        attached = await cdp.send("Target.attachToTarget",
                                  {"targetId": target["targetId"], "flatten": True})
        session = attached["sessionId"]
        for domain in ("Page.enable", "Runtime.enable", "Log.enable"):
            await cdp.send(domain, session=session)
        loaded = cdp.expect("Page.loadEventFired")
        await cdp.send("Page.navigate", {"url": page.as_uri()}, session=session)
        await asyncio.wait_for(loaded, WAIT_S)
        images = await cdp.send("Runtime.evaluate", {
            "expression": "JSON.stringify(Array.from(document.images).map("
                          "i => [i.complete, i.naturalWidth, i.src.slice(0, 22)]))",
            "returnByValue": True,
        }, session=session)
        shot = await cdp.send("Page.captureScreenshot",
                              {"format": "png", "captureBeyondViewport": True}, session=session)
        await cdp.send("Target.closeTarget", {"targetId": target["targetId"]})
        await ws.close()
        await cdp.reader
    problems = [
        e for e in cdp.events
        if e.get("method") == "Runtime.exceptionThrown"
        or (e.get("method") == "Runtime.consoleAPICalled"
            and e["params"].get("type") in ("error", "assert"))
        or (e.get("method") == "Log.entryAdded"
            and e["params"]["entry"].get("level") == "error")
    ]
    return {
        "problems": problems,
        "images": json.loads(images["result"]["value"]),
        "screenshot": base64.b64decode(shot["data"]),
    }


def test_report_opens_in_chromium_with_every_plot_loaded_and_no_errors(
    devtools_url: str, tmp_path: Path
) -> None:
    html = build_report([FIXTURE], tmp_path)
    seen = asyncio.run(inspect(devtools_url, html))
    assert seen["problems"] == []
    images = seen["images"]
    assert len(images) == len(PLOTS)  # every plot of the one run
    for complete, natural_width, src in images:
        assert complete and natural_width > 0
        assert src.startswith("data:image/png;base64")
    shot = seen["screenshot"]
    assert shot.startswith(PNG_SIGNATURE) and len(shot) > 10_000
    (tmp_path / "screenshot.png").write_bytes(shot)


def test_the_checks_catch_a_broken_image_and_a_script_error(
    devtools_url: str, tmp_path: Path
) -> None:
    # The checks above must be able to fail: a corrupt data: image and a throwing script.
    page = tmp_path / "broken.html"
    page.write_text('<!DOCTYPE html><html><body><img src="data:image/png;base64,AAAA">'
                    '<script>console.error("boom"); throw new Error("bang")</script>'
                    "</body></html>", encoding="utf-8")
    seen = asyncio.run(inspect(devtools_url, page))
    assert [width for _, width, _ in seen["images"]] == [0]
    methods = {e["method"] for e in seen["problems"]}
    assert {"Runtime.exceptionThrown", "Runtime.consoleAPICalled"} <= methods
