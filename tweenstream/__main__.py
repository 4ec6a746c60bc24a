"""``python -m tweenstream`` is the ``tweenstream`` command."""

from tweenstream.cli import main

raise SystemExit(main())
