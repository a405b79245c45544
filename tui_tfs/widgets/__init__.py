"""The explorer's widgets: each shows one thing about the session it is handed.

`LayerTree` (the model's layers, forward and backward), `TensorView`, `AttentionView`,
`AttentionOverview`, `FormulaPanel`, `StatusLine`, and the small views in `views`
(positional encoding, embeddings, softmax temperature, gradient norms).
"""
from .attention_map import AttentionOverview, AttentionView
from .formula import FormulaPanel
from .layer_tree import LayerTree
from .panel import TextPanel
from .status import StatusLine
from .tensor_view import TensorView
from .views import EmbeddingView, GradNormView, PositionalView, TemperatureView

__all__ = [
    "AttentionOverview", "AttentionView", "EmbeddingView", "FormulaPanel", "GradNormView",
    "LayerTree", "PositionalView", "StatusLine", "TemperatureView", "TensorView", "TextPanel",
]
