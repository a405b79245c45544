"""tui-tfs: the terminal app. The Textual explorer, and the `tui-tfs` command line (`cli`)
with headless training (`headless`). Imports engine and scenarios; they never import it."""

__version__ = "0.1.0"
