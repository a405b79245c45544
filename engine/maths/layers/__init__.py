"""The layers of a transformer, each with its forward and, right under it, its backward."""
from .attention import MASK_FILL, MultiHeadAttention, merge_heads, softmax, split_heads
from .dropout import Dropout, ResidualAdd
from .embedding import PositionalEncoding, TokenEmbedding, sinusoid_table
from .feedforward import Activation, FeedForward
from .layernorm import LayerNorm
from .linear import Linear, TiedOutput

__all__ = [
    "Activation", "Dropout", "FeedForward", "LayerNorm", "Linear", "MASK_FILL",
    "MultiHeadAttention", "PositionalEncoding", "ResidualAdd", "TiedOutput", "TokenEmbedding",
    "merge_heads", "sinusoid_table", "softmax", "split_heads",
]
