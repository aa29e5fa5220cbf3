"""The ``hushtune`` command: serve, build, catalogs, identify, demo."""
