"""The attention overview (`A`, every layer x head) closes on Esc back to the explorer where the
user was: the same explorer, the same event. Esc from the explorer itself still goes back to the
scenario picker."""
from __future__ import annotations

import pytest
from conftest import drive, screen_text

from tui_tfs.screens import ExplorerScreen, PickerScreen

pytestmark = pytest.mark.timeout(120)


def look(seen: dict, name: str):
    """A drive() step that notes the screen, the view, the event and the text under `name`."""
    async def step(pilot):
        app = pilot.app
        screen = app.screen
        seen[name] = {"screen": screen, "stack": len(app.screen_stack),
                      "index": app.session.cursor.index, "text": screen_text(app),
                      "view": screen.view_name if isinstance(screen, ExplorerScreen) else None}
    return step


def test_escape_closes_the_overview_and_keeps_the_position(make_app):
    seen = {}
    drive(make_app("reverse"), "n", "n", "i", "n", look(seen, "before"), "A",
          look(seen, "overview"), "escape", look(seen, "after"), "escape", look(seen, "picker"))
    before, overview, after = seen["before"], seen["overview"], seen["after"]
    assert before["index"] > 0, "stepped away from the first event"
    assert overview["view"] == "overview" and "attention overview" in overview["text"]
    assert overview["index"] == before["index"]
    # Esc closed the overview: the same explorer is on top, on the same event, in its own view
    assert after["screen"] is before["screen"] and after["stack"] == before["stack"]
    assert after["index"] == before["index"]
    assert after["view"] == before["view"] == "tensor"
    assert "attention overview" not in after["text"]
    # ... and Esc from the explorer goes back to the picker, as before
    assert isinstance(seen["picker"]["screen"], PickerScreen)


def test_escape_from_the_overview_opened_from_the_attention_map(make_app):
    """a (one head's map), A (all of them), Esc: back on the map, same event, not the picker."""
    seen = {}
    drive(make_app("reverse"), "e", look(seen, "before"), "a", "A", look(seen, "overview"),
          "escape", look(seen, "after"))
    assert seen["overview"]["view"] == "overview"
    after = seen["after"]
    assert after["screen"] is seen["before"]["screen"]
    assert after["index"] == seen["before"]["index"] > 0
    assert after["view"] == "attention"
