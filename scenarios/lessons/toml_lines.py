"""Where each key of a lesson file is: line numbers that `tomllib` does not keep.

A lesson file has one shape (a `[lesson]` table, then `[[step]]` tables, each with an
optional `[step.question]`), so a line scanner can find them: a header line opens a table, a
`key =` line names a key in the open table, and lines inside a multi-line string (between
triple quotes) are text, not keys. Dotted keys (`question.ask = ...`) and inline tables
(`question = {ask = ...}`) are followed far enough for their lines to be found.

    lines = KeyLines.scan(text)
    lines.of("step", 2, "head")          # the line of `head = ...` in the third [[step]]
    lines.of("step", 2, "question", "ask")
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

_HEADER = re.compile(r"^\s*(\[\[?)\s*([A-Za-z0-9_.\-\" ]+?)\s*(\]\]?)\s*(#.*)?$")
_KEY = re.compile(r"^\s*([A-Za-z0-9_\-]+(?:\s*\.\s*[A-Za-z0-9_\-]+)*)\s*=(.*)$")


@dataclass
class KeyLines:
    """Lines of tables and keys, by place: ("lesson",), ("step", i), ("step", i, "question")
    for tables; the same followed by the key's name for keys."""

    lines: dict[tuple, int] = field(default_factory=dict)
    headers: list[tuple[int, str]] = field(default_factory=list)  # (line, table name as written)

    @classmethod
    def scan(cls, text: str) -> KeyLines:
        found = cls()
        table: tuple = ()
        steps = -1
        closing: str | None = None  # the triple quote that ends the multi-line string we are in
        for number, line in enumerate(text.splitlines(), start=1):
            if closing is not None:
                if line.count(closing) % 2 == 1:
                    closing = None
                continue
            header = _HEADER.match(line)
            if header:
                name = header.group(2).replace(" ", "").replace('"', "")
                found.headers.append((number, name))
                if header.group(1) == "[[" and name == "step":
                    steps += 1
                    table = ("step", steps)
                elif name == "step.question" and steps >= 0:
                    table = ("step", steps, "question")
                else:
                    table = tuple(name.split("."))
                found.lines.setdefault(table, number)
                continue
            key = _KEY.match(line)
            if not key:
                continue
            parts = tuple(p.strip() for p in key.group(1).split("."))
            found.lines.setdefault(table + parts, number)
            if len(parts) > 1:  # question.ask = ...: the question table starts here too
                found.lines.setdefault(table + parts[:1], number)
            value = key.group(2)
            inline = value.strip()
            if inline.startswith("{"):  # question = {ask = "...", answer = "..."}
                for inner in re.findall(r"([A-Za-z0-9_\-]+)\s*=", inline):
                    found.lines.setdefault(table + parts + (inner,), number)
            for quote in ('"""', "'''"):
                if value.count(quote) % 2 == 1:
                    closing = quote
                    break
        return found

    def of(self, *place) -> int:
        """The line of `place`, else of the nearest enclosing table it is in, else 1."""
        place = tuple(place)
        while place:
            if place in self.lines:
                return self.lines[place]
            place = place[:-1]
        return 1
