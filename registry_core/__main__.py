"""``python -m registry_core``: see ``registry_core.cli``."""

from registry_core.cli import main

raise SystemExit(main())
