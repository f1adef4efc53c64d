"""marketexport: exports market and trading data as files people can trust."""

__version__ = "0.1.0"
