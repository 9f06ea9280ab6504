"""The ``soundtrack`` command line: a thin shell over ``analysis``, ``matching`` and ``composer``."""
