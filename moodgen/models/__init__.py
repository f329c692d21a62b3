from .lstm import LAYERS, LanguageModel

__all__ = ["LAYERS", "LanguageModel"]
