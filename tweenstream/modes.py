"""The names of the learning modes, in one place (numba-free, so every command can import it).

``MODES`` are what ``TweenConfig(mode=...)`` and ``--mode`` accept; their order is the mode code
of the compiled interpreter (``runtime/layout.py`` M_*). ``PHASES`` are the rules a live learner
can be switched to and stay in (``hybrid`` is a schedule that starts in ``tween``).

Examples
--------
>>> MODES.index("tween"), "hybrid" in PHASES
(1, False)
"""

MODES = ("backprop", "tween", "tween-heuristic", "hybrid")
PHASES = MODES[:3]
