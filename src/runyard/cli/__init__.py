"""The ``runyard`` command line: parse, call the SDK, print (see :mod:`runyard.cli.main`)."""
