"""The maths of the transformer: configs, parameters, layers, blocks, models, loss,
optimizers, schedules and decoding. Each layer reads as its formula; speed lives in engine.fast."""
