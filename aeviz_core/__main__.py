"""``python -m aeviz_core`` runs the ``aeviz`` command line."""

from aeviz_core.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
