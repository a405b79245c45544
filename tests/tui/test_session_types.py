"""The session's scenario and model have types a reader (and a type checker) can follow."""
import typing

from engine.maths.models import DecoderOnlyLM, EncoderDecoder
from scenarios import Scenario
from tui_tfs.session import Session


def test_session_scenario_and_model_are_typed():
    hints = typing.get_type_hints(Session)
    assert hints["scenario"] is Scenario
    assert set(typing.get_args(hints["model"])) == {DecoderOnlyLM, EncoderDecoder}
    session = Session.open("tiny-lm")
    assert isinstance(session.scenario, hints["scenario"])
    assert isinstance(session.model, typing.get_args(hints["model"]))
