"""moodgen: mood-steered symbolic music generation with tracked experiments."""

__version__ = "0.1.0"
