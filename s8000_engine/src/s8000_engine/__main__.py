"""``python -m s8000_engine`` runs the command-line interface."""

from __future__ import annotations

from s8000_engine.cli import main

raise SystemExit(main())
