"""The explorer's widgets: each shows one thing about the session it is handed.

`LayerTree` (the model's layers, forward and backward), `TensorView`, `AttentionView`,
`AttentionOverview`, `FormulaPanel`, `StatusLine`, the attention numbers in
`attention_numbers` (scaling by 1/sqrt(d_k), softmax temperature) and the small views in
`views` (positional encoding, embeddings, gradient norms).
"""
from .attention_map import AttentionOverview, AttentionView
from .formula import FormulaPanel
from .layer_tree import LayerTree
from .panel import TextPanel
from .status import StatusLine
from .tensor_view import TensorView
from .attention_numbers import ScalingView, TemperatureView
from .views import EmbeddingView, GradNormView, PositionalView

__all__ = [
    "AttentionOverview", "AttentionView", "EmbeddingView", "FormulaPanel", "GradNormView",
    "LayerTree", "PositionalView", "ScalingView", "StatusLine", "TemperatureView", "TensorView", "TextPanel",
]
