"""voxgate: AI voice agents on phone lines (Asterisk AudioSocket/ARI first)."""

__version__ = "0.1.0"
