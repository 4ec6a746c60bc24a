"""Where data comes from. For now: seeded synthetic sources (the default stream, toy sets)."""

from tweenstream.stream.sources import TOY_SETS, drifting_quadrants, toy_set

__all__ = ["TOY_SETS", "drifting_quadrants", "toy_set"]
