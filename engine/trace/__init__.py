"""The trace: one recorded forward + loss + backward pass, stepping through it, the formula
of each event, and the checks run over it. Depends on the maths, never on training."""
