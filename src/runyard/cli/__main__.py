"""``python -m runyard.cli``: the same as the ``runyard`` console script."""

from runyard.cli.main import main

main()
