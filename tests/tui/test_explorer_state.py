"""The explorer's state is one immutable value held in a reactive: assigning a new value
redraws by itself, a key that changes nothing draws nothing, and the values cannot be changed
in place (so no change can slip past the comparison)."""
from __future__ import annotations

import dataclasses
from dataclasses import replace

import pytest

from conftest import drive, screen_text
from tui_tfs.session import Session
from tui_tfs.widgets import TensorView

pytestmark = pytest.mark.timeout(120)


def test_a_new_state_redraws_without_a_refresh_call(make_app):
    seen = {}

    async def change(pilot):
        screen = pilot.app.screen
        seen["before"] = screen_text(pilot.app)
        screen.state = replace(screen.state, shown="grads")  # nothing else called
        await pilot.pause()
        seen["grads"] = screen_text(pilot.app)
        screen.state = replace(screen.state, shown="tensor",
                               view=replace(screen.state.view, numbers=True))
        await pilot.pause()
        seen["numbers"] = screen_text(pilot.app)
        seen["session_numbers"] = screen.session.view.numbers

    drive(make_app(), change)
    assert "gradient norms" not in seen["before"]
    assert "gradient norms" in seen["grads"] and "parameter-gradient norm" in seen["grads"]
    # the numbers behind the shades, and the session answers the views with the new choice
    assert seen["session_numbers"] is True
    assert seen["numbers"] != seen["before"] and "gradient norms" not in seen["numbers"]


def test_a_key_that_changes_nothing_draws_nothing(make_app, monkeypatch):
    """m (next batch item) on a trace of one example keeps item 1: the state is equal, so the
    tensor view is not drawn again; n, which moves, draws it."""
    drawn = []
    show = TensorView.show

    def counted(self, session, style):
        drawn.append(session.cursor.index)
        show(self, session, style)

    monkeypatch.setattr(TensorView, "show", counted)
    seen = {}

    async def keys(pilot):
        seen["batch"] = pilot.app.session.batch_size
        seen["start"] = len(drawn)
        await pilot.press("m", "m", "M")
        await pilot.pause()
        seen["after_m"] = len(drawn)
        await pilot.press("n")
        await pilot.pause()
        seen["after_n"] = len(drawn)

    drive(make_app(), keys)
    assert seen["batch"] == 1 and seen["start"] >= 1
    assert seen["after_m"] == seen["start"]
    assert seen["after_n"] == seen["start"] + 1


def test_view_choices_are_values():
    session = Session.open("reverse")
    with pytest.raises(dataclasses.FrozenInstanceError):
        session.view.numbers = True
    before = session.view
    session.cycle("head", 1)
    assert session.view is not before and session.view.head == before.head + 1
    assert before.head == 0  # the old value is unchanged: the screen compares the two
