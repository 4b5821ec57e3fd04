"""Closed-loop, in-process evaluation of the engine's promotion policies."""
