"""One small network per registered layer kind, for the suites that run over every kind."""

from __future__ import annotations

from tweenstream.models import kinds

#: kind name -> the kind's example network (``LayerKind.example``): a 3-class classifier that
#: contains the kind, fed (n, n_inputs) rows.
EXAMPLES = {kind.name: kind.example() for kind in kinds() if kind.example is not None}
#: kinds whose example network reads token ids, not real numbers
ID_INPUTS = {"embedding": 7}
