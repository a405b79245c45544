"""`tui-tfs serve`: the app in web browsers, one app process per browser tab (textual-serve).

    tui-tfs serve                                   http://127.0.0.1:8000, this machine only
    tui-tfs serve reverse --ascii                   every tab opens `tui-tfs explore reverse --ascii`
    tui-tfs serve --host 0.0.0.0 --token            any network, a generated token printed at start
    TUI_TFS_TOKEN=... tui-tfs serve --host 0.0.0.0  the token out of the process list

Everything is checked before the server listens (the address, the token, the scenario or the
lesson each tab will open), so a mistake is one line on stderr and exit 2, not a broken tab.
Who may connect is `serve_access.GuardedServer`'s business.
"""
from __future__ import annotations

import os
import secrets
import shlex
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

from .serve_access import GuardedServer, is_loopback

TOKEN_VARIABLE = "TUI_TFS_TOKEN"
MIN_TOKEN_LENGTH = 12
GENERATED_TOKEN_BYTES = 12  # 96 random bits, 16 characters to type


class ServeError(ValueError):
    """A serve option that cannot work; the message names it and the fix."""


@dataclass(frozen=True)
class TabCommand:
    """What each browser tab runs: the same `tui-tfs` as in a terminal, with the same options.
    `source`: a scenario name, file or checkpoint (None: the picker); `lesson`: a lesson instead."""

    source: str | None = None
    lesson: str | None = None
    ascii: bool = False

    def argv(self) -> list[str]:
        """[python, -m, tui_tfs.cli, ...]: this interpreter, so PYTHONPATH and the virtual
        environment the server runs in are the tabs' too."""
        head = [sys.executable, "-m", "tui_tfs.cli"]
        flags = ["--ascii"] if self.ascii else []
        if self.lesson is not None:
            return head + ["lesson", self.lesson] + flags
        return head + ["explore"] + flags + ([self.source] if self.source is not None else [])

    def shell(self) -> str:
        """The command line textual-serve hands to the shell, every word quoted; `exec`, so the
        app is the server's child itself (its signals, its exit status), not a shell's."""
        return "exec " + shlex.join(self.argv())


def access_token(host: str, given: str | bool | None, env: dict[str, str]) -> tuple[str | None, bool]:
    """(the token, whether it was generated here). `given`: --token's value, True for --token
    alone (generate one), None when absent (then TUI_TFS_TOKEN, if set). No token on a loopback
    host is fine (no prompt); on any other host it is a ServeError."""
    if given is None and env.get(TOKEN_VARIABLE):
        given = env[TOKEN_VARIABLE]
    if given is True:
        return secrets.token_urlsafe(GENERATED_TOKEN_BYTES), True
    if given is None:
        if is_loopback(host):
            return None, False
        raise ServeError(f"--host {host} lets other machines connect: give an access token "
                         f"(--token alone generates one, --token TOKEN or {TOKEN_VARIABLE} sets "
                         f"it), or leave --host out to serve this machine only (127.0.0.1)")
    token = given.strip()
    if len(token) < MIN_TOKEN_LENGTH or not token.isprintable():
        raise ServeError(f"the access token must be at least {MIN_TOKEN_LENGTH} printable "
                         f"characters (got {len(token)}); --token alone generates one")
    return token, False


def check_tab(tab: TabCommand) -> TabCommand:
    """Open what each tab will open once, here, so a bad scenario, checkpoint or lesson is
    refused at start (ScenarioError, CheckpointError, RunError or ServeError); a path becomes
    absolute, so the tabs do not depend on the server's working directory staying put."""
    if tab.lesson is not None:
        from .lessons import LessonNotFound, LessonRun

        try:
            LessonRun.open(tab.lesson, check=False)
        except LessonNotFound as error:
            raise ServeError(str(error)) from None
        return TabCommand(None, _absolute(tab.lesson), tab.ascii)
    if tab.source is not None:
        from .session import Session

        Session.open(tab.source, ascii=tab.ascii)
        return TabCommand(_absolute(tab.source), None, tab.ascii)
    return tab


def _absolute(source: str) -> str:
    path = Path(source)
    return str(path.resolve()) if path.exists() else source


def serve(args) -> int:
    """Check every option, then serve until Ctrl+C or SIGTERM; returns the exit code."""
    from scenarios.lessons import LessonError

    if args.lesson is not None and args.scenario is not None:
        return _refuse("give a scenario or --lesson, not both")
    try:
        token, generated = access_token(args.host, args.token, dict(os.environ))
        tab = check_tab(TabCommand(args.scenario, args.lesson, bool(args.ascii)))
    except ServeError as error:
        return _refuse(str(error))
    except LessonError as error:
        return _refuse(f"{error.file}: {len(error.problems)} problem(s); tui-tfs lesson check "
                       f"{args.lesson} lists them")
    # the tabs inherit this environment: they have no use for the token
    os.environ.pop(TOKEN_VARIABLE, None)
    shown_host = f"[{args.host}]" if ":" in args.host else args.host
    # a wildcard address is no address to type: the machine's name is
    where = socket.gethostname() if args.host in ("0.0.0.0", "::", "") else shown_host
    lines = [f"tui-tfs serve: open http://{where}:{args.port}/ in a browser; each tab runs "
             f"{' '.join(['tui-tfs'] + tab.argv()[3:])}"]
    if token is None:
        lines.append("no access token: this machine only (every user of it can connect)")
    elif generated:
        lines.append(f"access token (the page asks for it): {token}")
    else:
        lines.append("access token: the one given (the page asks for it)")
    lines.append("Ctrl+C stops the server and every tab's app")
    server = GuardedServer(tab.shell(), args.host, args.port, token, lines, args.max_tabs)
    try:
        server.serve()
    except OSError as error:  # the port is taken, or the address is not this machine's
        reason = error.strerror or str(error)
        return _refuse(f"cannot listen on {shown_host}:{args.port}: {reason}; pick another "
                       f"--port, or an address of this machine for --host")
    return 0


def _refuse(message: str) -> int:
    print(f"tui-tfs serve: {message}", file=sys.stderr)
    return 2
