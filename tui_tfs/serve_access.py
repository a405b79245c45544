"""Who may reach a served tui-tfs: the access token, checked at the HTTP layer.

textual-serve's `Server` answers four kinds of request: the page (`/`), its static files
(`/static/...`), the websocket (`/ws`, which starts one app process per connection) and
downloads. `GuardedServer` puts one aiohttp middleware in front of all of them:

- with a token, a request without the session cookie gets the token form (`/`) or 401
  (anything else): no page, no script, no websocket, so no app process. POST /login compares
  the token with `hmac.compare_digest` and, when right, sets the session cookie (HttpOnly,
  SameSite=Lax: a link from a course page keeps it) and sends the browser back to `/`;
- without a token (loopback only), the Host header must name a loopback address, so a web page
  elsewhere cannot reach the server through DNS rebinding;
- the websocket's Origin, when sent (browsers always send it), must be this server, so another
  site open in the same browser cannot start and drive an app.

The token never appears in a URL, so aiohttp's access log (one line per request) never shows it.
"""
from __future__ import annotations

import asyncio
import hmac
import html
import ipaddress
import re
import secrets
import signal
from urllib.parse import urlsplit

import aiohttp_jinja2
from aiohttp import web
from textual_serve.app_service import AppService
from textual_serve.server import Server, log, to_int

COOKIE = "tui_tfs_access"
QUIT_GRACE = 10.0  # seconds a tab's app has to quit when its tab or the server closes
FAILED_LOGIN_PAUSE = 0.5  # seconds; wrong tokens are answered one at a time, so at most two a second
TERMINAL_CELLS = (10, 500)  # bounds on the columns and rows a tab may ask its app for
HOST_HEADER = re.compile(r"^[A-Za-z0-9.\-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$")


class GuardedServer(Server):
    """textual-serve's Server, with the access token (None: loopback, no prompt) enforced on
    every route, and page URLs built from the address the browser used (so a tab reached as
    `localhost` through an SSH tunnel, or by the machine's name, connects back to the same)."""

    def __init__(self, command: str, host: str, port: int, token: str | None,
                 announce: list[str], max_tabs: int) -> None:
        super().__init__(command, host=host, port=port, title="tui-tfs")
        self._token = token.encode("utf-8") if token is not None else None
        self._session = secrets.token_urlsafe(32)  # the cookie's value, new at every start
        self._failures = asyncio.Lock()
        self._announce = announce  # lines printed once the server listens
        self._tabs: set[AppService] = set()  # one app process per open tab
        self._max_tabs = max_tabs  # more would only starve the open ones of memory and CPU

    # -- the web application -------------------------------------------------------------------
    async def _make_app(self) -> web.Application:
        app = await super()._make_app()
        app.middlewares.append(self._guard)
        if self._token is not None:
            app.router.add_get("/login", self._login_form)
            app.router.add_post("/login", self._login)
        return app

    def serve(self, debug: bool = False) -> None:
        """Serve until SIGINT/SIGTERM (textual-serve's loop, with the lines printed once the
        address is bound, not before: a taken port raises OSError and prints nothing)."""
        self.debug = debug
        self.initialize_logging()
        loop = asyncio.new_event_loop()
        for stop in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(stop, self.request_exit)
        web.run_app(self._make_app(), host=self.host, port=self.port, handle_signals=False,
                    loop=loop, print=self._listening)

    def _listening(self, aiohttp_line: str) -> None:
        for line in self._announce:
            self.console.print(line, highlight=False, markup=False, soft_wrap=True)

    async def on_startup(self, app: web.Application) -> None:
        """Nothing: textual-serve prints its banner here, before the address is bound."""

    async def on_shutdown(self, app: web.Application) -> None:
        """Ctrl+C or SIGTERM: every tab's app is told to quit and waited for (killed after
        QUIT_GRACE), so none outlives the server."""
        await asyncio.gather(*(self._end(tab) for tab in list(self._tabs)))

    async def handle_websocket(self, request: web.Request) -> web.StreamResponse:
        """textual-serve's handler, keeping each tab's AppService so the server can end it,
        with the terminal's size bounded and at most `max_tabs` tabs at once."""
        if len(self._tabs) >= self._max_tabs:
            return web.Response(status=503, text=f"{self._max_tabs} tabs are open, the most "
                                f"this server runs (tui-tfs serve --max-tabs): close one\n")
        low, high = TERMINAL_CELLS
        width = min(max(to_int(request.query.get("width", "80"), 80), low), high)
        height = min(max(to_int(request.query.get("height", "24"), 24), low), high)
        websocket = web.WebSocketResponse(heartbeat=15)
        tab = AppService(self.command, write_bytes=websocket.send_bytes,
                         write_str=websocket.send_str, close=websocket.close,
                         download_manager=self.download_manager, debug=self.debug)
        self._tabs.add(tab)  # counted before the first await, so the bound holds
        watcher = None
        try:
            await websocket.prepare(request)
            await tab.start(width, height)
            watcher = asyncio.create_task(self._close_when_app_ends(tab, websocket))
            await self._process_messages(websocket, tab)
        except (ValueError, TypeError, KeyError, AssertionError) as error:  # a garbled message
            log.warning("tab closed: %s", error)
        finally:
            if watcher is not None:
                watcher.cancel()
            await self._end(tab)
            self._tabs.discard(tab)
            if websocket.prepared:
                await websocket.close()
        return websocket

    @staticmethod
    async def _close_when_app_ends(tab: AppService, websocket: web.WebSocketResponse) -> None:
        """An app that ended without saying so (killed: out of memory, a signal) closes its
        tab, so the page says the session ended and the tab's place is free again."""
        process = tab._process  # textual-serve keeps it private
        if process is not None:
            await process.wait()
            await websocket.close()

    @staticmethod
    async def _end(tab: AppService) -> None:
        """Ask the tab's app to quit and wait until its process has ended (stop() returns when
        the app closes its output, a moment before); kill it after QUIT_GRACE seconds."""
        process = tab._process  # textual-serve keeps it private; nothing else can end it
        try:
            await asyncio.wait_for(tab.stop(), QUIT_GRACE)
            if process is not None:
                await asyncio.wait_for(process.wait(), QUIT_GRACE)
        except asyncio.TimeoutError:
            if process is not None and process.returncode is None:
                process.kill()

    @web.middleware
    async def _guard(self, request: web.Request, handler) -> web.StreamResponse:
        if not HOST_HEADER.match(request.host):
            return web.Response(status=400, text="bad Host header\n")
        if self._token is None and not is_loopback(_hostname(request.host)):
            return web.Response(status=403, text="this server answers only to localhost / "
                                "127.0.0.1 (start it with --token to serve other names)\n")
        origin = request.headers.get("Origin")
        if request.path == "/ws" and origin is not None and urlsplit(origin).netloc != request.host:
            return web.Response(status=403, text="websocket from another site refused\n")
        if self._token is None or request.path == "/login" or self._has_session(request):
            return await handler(request)
        if request.path == "/" and request.method in ("GET", "HEAD"):
            return _token_page(status=401)
        return web.Response(status=401, text="access token required: open / and enter it\n")

    def _has_session(self, request: web.Request) -> bool:
        value = request.cookies.get(COOKIE, "")
        return hmac.compare_digest(value.encode("utf-8", "replace"), self._session.encode("ascii"))

    # -- the token form ------------------------------------------------------------------------
    async def _login_form(self, request: web.Request) -> web.Response:
        return _token_page(status=200)

    async def _login(self, request: web.Request) -> web.StreamResponse:
        form = await request.post()
        given = form.get("token")
        given = given.strip().encode("utf-8", "replace") if isinstance(given, str) else b""
        assert self._token is not None  # the route exists only with a token
        if not hmac.compare_digest(given, self._token):
            async with self._failures:  # one wrong guess at a time, each held back a moment
                await asyncio.sleep(FAILED_LOGIN_PAUSE)
            return _token_page(status=403, wrong=True)
        response = web.HTTPSeeOther("/")
        response.set_cookie(COOKIE, self._session, httponly=True, samesite="Lax", path="/")
        return response

    # -- the page ------------------------------------------------------------------------------
    @aiohttp_jinja2.template("app_index.html")
    async def handle_index(self, request: web.Request) -> dict:
        """textual-serve's page, with its script and websocket URLs on the host the browser
        asked for (textual-serve builds them from the bind address: 0.0.0.0 would not do)."""
        base = f"{request.scheme}://{request.host}"
        router = request.app.router
        static = f"{base}{router['static'].url_for(filename='/')}".rstrip("/") + "/"
        socket = f"{base}{router['websocket'].url_for()}"
        socket = ("wss:" if base.startswith("https") else "ws:") + socket.split(":", 1)[1]
        return {"font_size": to_int(request.query.get("fontsize", "16"), 16),
                "app_websocket_url": socket, "config": {"static": {"url": static}},
                "application": {"name": self.title}}


def is_loopback(host: str) -> bool:
    """127.0.0.0/8, ::1 or the name localhost: reachable from this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _hostname(host_header: str) -> str:
    """`localhost:8000` -> `localhost`, `[::1]:8000` -> `[::1]`."""
    if host_header.startswith("["):
        return host_header.split("]", 1)[0] + "]"
    return host_header.rsplit(":", 1)[0] if ":" in host_header else host_header


def _token_page(status: int, wrong: bool = False) -> web.Response:
    """The form the page shows before anything of the app: self-contained (no script, no
    static file), so nothing else is served to a browser without the token."""
    message = ("<p class=wrong id=wrong>That token is not right: check it and try again.</p>"
               if wrong else "")
    body = _PAGE.format(message=message, title=html.escape("tui-tfs"))
    return web.Response(status=status, text=body, content_type="text/html")


_PAGE = """<!DOCTYPE html>
<html lang=en>
<head>
<meta charset=utf-8>
<title>{title}: access token</title>
<style>
body {{ background: #0c181f; color: #e8eef2; font: 16px menlo, monospace; display: flex;
        align-items: center; justify-content: center; height: 100vh; margin: 0; }}
form {{ background: #12232d; padding: 32px; width: 480px; }}
input {{ font: inherit; padding: 8px; width: 100%; box-sizing: border-box; margin: 8px 0 16px; }}
button {{ font: inherit; padding: 8px 24px; background: #5e0ba7; color: #fff; border: none; }}
.wrong {{ color: #ff8a80; }}
</style>
</head>
<body>
<form method=post action=/login>
<h1>{title}</h1>
<p>This server asks for an access token (the one printed when it started).</p>
{message}
<label for=token>Access token</label>
<input id=token name=token type=password autocomplete=current-password autofocus required>
<button id=enter type=submit>Enter</button>
</form>
</body>
</html>
"""
