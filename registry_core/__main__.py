"""``python -m registry_core``: see ``registry_core._cli``."""

from registry_core._cli import main

raise SystemExit(main())
