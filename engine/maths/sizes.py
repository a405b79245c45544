"""How big a model and its training are, worked out from the settings before anything is built.

A setting such as `d_model = 10**12` or `max_len = 100000` would otherwise only show itself as
memory running out, minutes later. These functions compute, with integer arithmetic and no
arrays, what the settings ask for, so a caller can refuse past a limit and say how much:

    parameter_count(config)          exact number of weights `build_model(config)` makes
    model_bytes(config)              weights, their gradients, the fixed positional table
    training_bytes(config, B, T, S)  model_bytes + optimizer moments + one step's activations

The training figure is an estimate (activations are counted per layer with a small factor for
the temporaries NumPy makes), good to a factor of about two: enough to tell 40 MB from 40 GB.

Shapes: B batch, T target length, S source length, D model width, F feed-forward width,
V vocabulary, L max_len, H heads.
"""
from __future__ import annotations

from .config import ModelConfig

DEFAULT_MEMORY_LIMIT = 4 * 1024**3  # bytes a scenario may ask for before it must say so
ACTIVATION_COPIES = 3  # temporaries per kept activation (softmax, masks, gradients of inputs)


def parameter_count(config: ModelConfig) -> int:
    """Exactly `build_model(config).num_params()`, without building it."""
    d, f, v, n = config.d_model, config.d_ff, config.vocab_size, config.n_layers
    attention = 4 * (d * d + d)  # w_q, w_k, w_v, w_o, each (D, D) with a bias
    ffn = d * f + f + f * d + d  # fc1 (D, F) + bias, fc2 (F, D) + bias
    norm = 2 * d  # gamma, beta
    embed = v * d + (config.max_len * d if config.positional == "learned" else 0)
    final_norms = norm if config.norm == "pre" else 0
    head = 0 if config.tie_embeddings else d * v + v
    if config.kind == "encoder_decoder":
        encoder = n * (attention + ffn + 2 * norm)
        decoder = n * (2 * attention + ffn + 3 * norm)
        return 2 * embed + encoder + decoder + 2 * final_norms + head
    return embed + n * (attention + ffn + 2 * norm) + final_norms + head


def model_bytes(config: ModelConfig) -> int:
    """Bytes of a built model: weights and gradients (packed), plus a sinusoid table."""
    item = 8 if config.dtype == "float64" else 4
    tables = 1 if config.kind == "decoder_only" else 2
    # the sinusoid table is computed in float64 and then cast: both exist for a moment
    sinusoid = tables * config.max_len * config.d_model * (8 + item)
    fixed = sinusoid if config.positional == "sinusoidal" else 0
    return 2 * parameter_count(config) * item + fixed


def training_bytes(config: ModelConfig, batch_size: int, target_len: int,
                   source_len: int = 0, moments: int = 2) -> int:
    """Estimated peak bytes of training: the model, `moments` optimizer buffers (Adam: 2) plus
    a backup of the weights and moments (the trainer's last good state), and one step's
    activations for a batch of `batch_size` sequences of `target_len` (and `source_len`)."""
    item = 8 if config.dtype == "float64" else 4
    b, d, f, h = batch_size, config.d_model, config.d_ff, config.n_heads
    v, n = config.vocab_size, config.n_layers
    params = parameter_count(config)

    def block(t: int, s: int) -> int:  # kept activations of one block, in elements
        return b * (t * (8 * d + 2 * f) + 2 * h * t * s)

    t, s = target_len, source_len
    if config.kind == "encoder_decoder":
        per_layer = block(s, s) + block(t, t) + block(t, s)
    else:
        per_layer = block(t, t)
    activations = ACTIVATION_COPIES * (n * per_layer + 3 * b * t * v)  # + logits, softmax, grad
    return model_bytes(config) + (2 * moments + 1) * params * item + activations * item


def format_bytes(count: int) -> str:
    """1536 -> "1.5 KiB"; big numbers stay readable (1.2e+06 TiB), never a 30-digit integer."""
    size = float(count)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB" if size < 1e6 else f"{size:.1e} TiB"
