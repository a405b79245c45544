"""The explorer's and the training screen's break switches rebuild the model the same way:
one switch flipped, the same weights, the same train/eval mode."""
import numpy as np

from tui_tfs.session import Session
from tui_tfs.training import TrainingController


def test_session_and_training_switches_keep_weights_and_mode():
    session = Session.open("reverse")
    controller = TrainingController(session.scenario, session.scenario.build_model())
    for owner in (session, controller):
        model = owner.model
        model.eval()
        weights = model.state_dict()
        assert owner.toggle_break("no_scaling") is True
        assert owner.model is not model and owner.model.config.breaks.active() == ["no_scaling"]
        assert not owner.model.training  # an eval-mode model stays in eval mode
        assert all(np.array_equal(weights[k], v) for k, v in owner.model.state_dict().items())
