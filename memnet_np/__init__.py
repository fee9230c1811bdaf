"""memnet_np: memory networks in pure NumPy, with hand-written, gradient-checked backward passes.

Importing the package only defines things: no random state is seeded, no file is read.
"""

__version__ = "0.1.0"
