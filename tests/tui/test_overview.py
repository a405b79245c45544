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


def test_escape_belongs_to_the_screen_that_owns_the_view(make_app):
    """Esc is the explorer's own key (as it is the training screen's and help's): the binding
    that fires names an action of the screen itself, and the App binds no Esc of its own."""
    seen = []

    def note(where: str):
        async def step(pilot):
            app = pilot.app
            active = app.screen.active_bindings["escape"]
            seen.append((where, active.node is app.screen, active.binding.action,
                         "escape" in app._bindings.key_to_bindings))
        return step

    drive(make_app("reverse"), note("explorer"), "A", note("overview"), "escape",
          "ctrl+t", note("training"), "question_mark", note("help"))
    assert [s[0] for s in seen] == ["explorer", "overview", "training", "help"]
    for where, on_screen, action, app_binds in seen:
        assert on_screen and not action.startswith("app."), (where, action)
        assert not app_binds, where
