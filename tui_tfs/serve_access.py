"""Who may reach a served tui-tfs: the access token, checked at the HTTP layer.

textual-serve's `Server` answers four kinds of request: the page (`/`), its static files
(`/static/...`), the websocket (`/ws`, which starts one app process per connection) and
downloads. `GuardedServer` puts one aiohttp middleware in front of all of them:

- with a token, a request without the session cookie gets the token form (`/`) or 401
  (anything else): no page, no script, no websocket, so no app process. POST /login compares
  the token with `hmac.compare_digest` and, when right, sets the session cookie (HttpOnly,
  SameSite=Strict) and sends the browser back to `/`;
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
import re
import secrets
import signal
from urllib.parse import urlsplit

import aiohttp_jinja2
from aiohttp import web
from textual_serve.server import Server, to_int

COOKIE = "tui_tfs_access"
FAILED_LOGIN_PAUSE = 0.5  # seconds; wrong tokens are answered one at a time, so at most two a second
LOOPBACK_NAMES = {"localhost", "127.0.0.1", "::1", "[::1]"}
HOST_HEADER = re.compile(r"^[A-Za-z0-9.\-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$")


class GuardedServer(Server):
    """textual-serve's Server, with the access token (None: loopback, no prompt) enforced on
    every route, and page URLs built from the address the browser used (so a tab reached as
    `localhost` through an SSH tunnel, or by the machine's name, connects back to the same)."""

    def __init__(self, command: str, host: str, port: int, token: str | None,
                 announce: list[str]) -> None:
        super().__init__(command, host=host, port=port, title="tui-tfs")
        self._token = token.encode("utf-8") if token is not None else None
        self._session = secrets.token_urlsafe(32)  # the cookie's value, new at every start
        self._failures = asyncio.Lock()
        self._announce = announce  # lines printed once the server listens
        self._tabs: set[asyncio.Task] = set()  # one websocket handler per open tab

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
        """Close every tab now (each handler then tells its app to quit and waits for it),
        rather than after aiohttp's grace period: Ctrl+C leaves no app process behind."""
        tabs = list(self._tabs)
        for task in tabs:
            task.cancel()
        await asyncio.gather(*tabs, return_exceptions=True)

    async def handle_websocket(self, request: web.Request) -> web.WebSocketResponse:
        task = asyncio.current_task()
        assert task is not None
        self._tabs.add(task)
        try:
            return await super().handle_websocket(request)
        finally:
            self._tabs.discard(task)

    @web.middleware
    async def _guard(self, request: web.Request, handler) -> web.StreamResponse:
        if not HOST_HEADER.match(request.host):
            return web.Response(status=400, text="bad Host header\n")
        if self._token is None and _hostname(request.host) not in LOOPBACK_NAMES:
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
        response.set_cookie(COOKIE, self._session, httponly=True, samesite="Strict", path="/")
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
