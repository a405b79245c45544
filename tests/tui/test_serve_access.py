"""`tui-tfs serve` over real HTTP: where it listens, who gets in, what a tab runs.

Each test starts the real command on a free port (127.0.0.1, or 0.0.0.0 asked on 127.0.0.1),
makes real requests with aiohttp's client, counts the app processes the server started from
/proc, and stops it with SIGTERM.
"""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import aiohttp
import pytest
from serve_helpers import ROOT, Served, command_line, free_port, listening_addresses

pytestmark = [pytest.mark.timeout(180),
              pytest.mark.skipif(not Path("/proc/net/tcp").exists(),
                                 reason="counts processes and sockets in Linux's /proc")]

TOKEN = "correct-horse-battery"


@pytest.fixture
def serve(tmp_path):
    """serve(*args, env=None) -> a listening Served; every one is stopped after the test."""
    started = []

    def start(*args: str, env: dict[str, str] | None = None) -> Served:
        served = Served(list(args), tmp_path / f"serve{len(started)}.log", env)
        started.append(served)
        served.wait_listening()
        return served

    yield start
    for served in started:
        served.stop()


def http(coroutine_function, *args):
    return asyncio.run(coroutine_function(*args))


async def _get(url: str, cookies: dict | None = None, headers: dict | None = None):
    async with aiohttp.ClientSession(cookies=cookies) as session:
        async with session.get(url, headers=headers, allow_redirects=False) as response:
            return response.status, await response.text()


async def _login(url: str, token: str):
    """POST the form; (status, the cookies the server set)."""
    async with aiohttp.ClientSession() as session:
        async with session.post(f"{url}/login", data={"token": token},
                                allow_redirects=False) as response:
            return response.status, {k: v.value for k, v in response.cookies.items()}


async def _open_tab(url: str, cookies: dict | None = None, headers: dict | None = None,
                    seconds: float = 60.0):
    """Open the websocket as the page does; (handshake status, screen bytes received until the
    app drew its footer or `seconds` passed, the server's apps while the tab was open)."""
    async with aiohttp.ClientSession(cookies=cookies) as session:
        try:
            socket = await session.ws_connect(f"{url}/ws?width=80&height=24", headers=headers)
        except aiohttp.WSServerHandshakeError as refused:
            return refused.status, b""
        received = b""
        deadline = time.monotonic() + seconds
        async with socket:
            while b"Quit" not in received and time.monotonic() < deadline:
                try:
                    message = await socket.receive(timeout=1)
                except asyncio.TimeoutError:
                    continue
                if message.type != aiohttp.WSMsgType.BINARY:
                    break
                received += message.data
        return 101, received


def test_default_bind_is_loopback_and_serves_the_page_without_a_prompt(serve):
    served = serve()
    assert listening_addresses(served.port) == {"127.0.0.1"}
    status, page = http(_get, served.url + "/")
    assert status == 200
    assert 'class="textual-terminal"' in page and "Access token" not in page
    # the page's script and websocket point back at the address the browser used
    assert f'data-session-websocket-url="ws://127.0.0.1:{served.port}/ws"' in page
    # a name that is not loopback (DNS rebinding from a web page) gets nothing
    status, _ = http(_get, served.url + "/", None, {"Host": f"attacker.example:{served.port}"})
    assert status == 403
    assert served.apps() == []


def test_a_non_loopback_bind_without_a_token_refuses_to_start(tmp_path):
    port = free_port()
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-m", "tui_tfs.cli", "serve", "--host", "0.0.0.0",
                           "--port", str(port)], capture_output=True, text=True, env=env,
                          timeout=60, cwd=ROOT)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in done.stderr, done.stderr
    assert "--host 0.0.0.0" in lines[0] and "--token" in lines[0] and "127.0.0.1" in lines[0]
    assert listening_addresses(port) == set()
    short = subprocess.run([sys.executable, "-m", "tui_tfs.cli", "serve", "--host", "0.0.0.0",
                            "--port", str(port), "--token", "abc"], capture_output=True,
                           text=True, env=env, timeout=60, cwd=ROOT)
    assert short.returncode == 2 and "at least 12" in short.stderr
    assert len(short.stderr.strip().splitlines()) == 1


def test_a_wrong_token_gets_nothing_of_the_app_and_the_right_one_gets_it(serve):
    served = serve("--host", "0.0.0.0", env={"TUI_TFS_TOKEN": TOKEN})
    assert listening_addresses(served.port) == {"0.0.0.0"}  # answered on 127.0.0.1 below
    status, page = http(_get, served.url + "/")
    assert status == 401 and "Access token" in page and "textual" not in page
    for path in ("/static/js/textual.js", "/static/css/xterm.css", "/ws", "/download/x"):
        assert http(_get, served.url + path)[0] == 401, path
    status, cookies = http(_login, served.url, "correct-horse-battery-staple")
    assert status == 403 and cookies == {}
    assert http(_login, served.url, "")[0] == 403
    forged = {"tui_tfs_access": "guess"}
    assert http(_get, served.url + "/", forged)[0] == 401
    assert http(_open_tab, served.url)[0] == 401
    assert http(_open_tab, served.url, forged)[0] == 401
    assert served.apps() == []  # no app process was ever started

    status, cookies = http(_login, served.url, TOKEN)
    assert status == 303 and set(cookies) == {"tui_tfs_access"}
    status, page = http(_get, served.url + "/", cookies)
    assert status == 200 and 'class="textual-terminal"' in page
    # another site open in the same browser cannot open a tab, even with the cookie
    evil = {"Origin": "http://attacker.example"}
    assert http(_open_tab, served.url, cookies, evil)[0] == 403
    assert served.apps() == []
    status, screen = http(_open_tab, served.url, cookies)
    assert status == 101 and b"Quit" in screen  # the picker's footer, drawn for the browser
    assert TOKEN not in served.output()  # never logged


def test_a_generated_token_is_printed_once_and_lets_the_browser_in(serve):
    served = serve("--host", "127.0.0.1", "--token")
    lines = [line for line in served.output().splitlines() if "access token" in line]
    assert len(lines) == 1
    token = lines[0].rsplit(": ", 1)[1].strip()
    assert len(token) >= 16
    assert http(_get, served.url + "/")[0] == 401  # loopback with a token: the prompt too
    status, cookies = http(_login, served.url, token)
    assert status == 303 and http(_get, served.url + "/", cookies)[0] == 200


async def _tab_commands(served: Served, word: str) -> list[list[str]]:
    """Open a tab; the command lines of the server's apps once they run `word`'s command."""
    async with aiohttp.ClientSession() as session:
        async with session.ws_connect(f"{served.url}/ws?width=80&height=24"):
            deadline = time.monotonic() + 60
            commands = []
            while time.monotonic() < deadline:  # until the tab's process runs the app
                commands = [command_line(pid) for pid in served.apps()]
                if commands and all(word in command for command in commands):
                    break
                await asyncio.sleep(0.2)
            return commands


def _wait_no_apps(served: Served, seconds: float = 60) -> list[int]:
    deadline = time.monotonic() + seconds
    while served.apps() and time.monotonic() < deadline:
        time.sleep(0.2)
    return served.apps()


def test_each_tab_runs_the_app_with_the_options_given(serve):
    served = serve("reverse", "--ascii")
    commands = http(_tab_commands, served, "explore")
    assert len(commands) == 1
    assert commands[0][1:] == ["-m", "tui_tfs.cli", "explore", "--ascii", "reverse"]
    assert _wait_no_apps(served) == []  # closing the tab ended its app

    served = serve("--lesson", "attention")
    commands = http(_tab_commands, served, "lesson")
    assert [command[1:] for command in commands] == [["-m", "tui_tfs.cli", "lesson", "attention"]]
    assert served.stop() == []  # stopping the server ends every tab's app


def test_a_taken_port_or_a_bad_scenario_is_one_line(serve, tmp_path):
    served = serve()
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}
    taken = subprocess.run([sys.executable, "-m", "tui_tfs.cli", "serve", "--port",
                            str(served.port)], capture_output=True, text=True, env=env,
                           timeout=60, cwd=ROOT)
    assert taken.returncode == 2 and "Traceback" not in taken.stderr
    assert f"cannot listen on 127.0.0.1:{served.port}" in taken.stderr and "--port" in taken.stderr
    assert "open http" not in taken.stdout  # nothing claims to serve
    missing = subprocess.run([sys.executable, "-m", "tui_tfs.cli", "serve", "nonesuch",
                              "--port", str(free_port())], capture_output=True, text=True,
                             env=env, timeout=60, cwd=ROOT)
    assert missing.returncode == 2 and len(missing.stderr.strip().splitlines()) == 1
    assert "nonesuch" in missing.stderr and "Traceback" not in missing.stderr
    for args in (["--lesson", "nonesuch"], ["reverse", "--lesson", "attention"]):
        refused = subprocess.run([sys.executable, "-m", "tui_tfs.cli", "serve", *args, "--port",
                                  str(free_port())], capture_output=True, text=True, env=env,
                                 timeout=60, cwd=ROOT)
        assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1, args
        assert "Traceback" not in refused.stderr


def test_tabs_beyond_max_tabs_are_refused_until_one_closes(serve):
    served = serve("--max-tabs", "1")

    async def two_tabs():
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(f"{served.url}/ws?width=80&height=24"):
                try:
                    await session.ws_connect(f"{served.url}/ws?width=80&height=24")
                except aiohttp.WSServerHandshakeError as refused:
                    second = refused.status
                else:
                    second = 101
                await asyncio.sleep(1)  # a second app would have been started by now
                return second, len(served.apps())

    second, apps = http(two_tabs)
    assert (second, apps) == (503, 1)
    assert _wait_no_apps(served) == []
    assert http(_open_tab, served.url)[0] == 101  # the first one closed: room again


def test_a_tab_draws_unicode_whatever_the_servers_locale():
    from tui_tfs.app import wants_ascii

    web = "textual.drivers.web_driver:WebDriver"  # what textual-serve sets for each tab's app
    assert wants_ascii({"LANG": "C", "TERM": "vt100"}) is True  # a terminal that cannot
    assert wants_ascii({"LANG": "C", "TERM": "vt100", "TEXTUAL_DRIVER": web}) is False  # xterm.js can


def test_an_app_killed_under_its_tab_closes_the_tab_and_frees_its_place(serve):
    served = serve("--max-tabs", "1")

    async def tab_whose_app_is_killed():
        async with aiohttp.ClientSession() as session:
            async with session.ws_connect(f"{served.url}/ws?width=80&height=24") as socket:
                received = b""
                while b"Quit" not in received:  # the app is up and drawing
                    message = await socket.receive(timeout=60)
                    assert message.type == aiohttp.WSMsgType.BINARY, message
                    received += message.data
                (app,) = served.apps()
                os.kill(app, signal.SIGKILL)  # as the kernel's out-of-memory killer would
                while True:
                    message = await socket.receive(timeout=30)
                    if message.type != aiohttp.WSMsgType.BINARY:
                        return message.type

    assert http(tab_whose_app_is_killed) in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    assert http(_open_tab, served.url)[0] == 101  # its place is free again
