"""limpet: talk to live Python interpreters.

The C core (limpet._limpet) holds the wire codec; the embedded server,
limpet.start(), is being built on it (see the README's status section).
"""
from . import wire
from ._limpet import PROTOCOL_VERSION, VERSION as __version__

__all__ = ["wire", "PROTOCOL_VERSION", "__version__"]
