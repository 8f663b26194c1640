"""Doctest collection: the Dask module's examples need Dask, an optional dependency."""

import importlib.util

collect_ignore = [] if importlib.util.find_spec("dask") else ["dask.py"]
