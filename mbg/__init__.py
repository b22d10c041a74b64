"""mbg: telephony billing toolkit.

The package is a library; ``mbg.cli`` is the thin command-line layer over it.
Library functions take connections or paths and return data: they never print or exit.
"""

__version__ = "0.1.0"
