"""Screens: the scenario picker, the explorer, the help screen, and small dialogs."""
from .dialogs import ChoiceScreen, PromptScreen, QuitScreen, ReportScreen, TooSmallScreen
from .explorer import ExplorerScreen
from .help import HelpScreen
from .picker import PickerScreen

__all__ = ["ChoiceScreen", "ExplorerScreen", "HelpScreen", "PickerScreen", "PromptScreen", "QuitScreen",
           "ReportScreen", "TooSmallScreen"]
