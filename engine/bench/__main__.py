"""`python -m engine.bench`: see engine.bench.run."""
from .run import main

main()
