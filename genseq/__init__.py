"""genseq: learn to write music and text one symbol at a time."""

__version__ = "0.1.0"
