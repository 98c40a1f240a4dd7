"""Nazorat composition root: the ``nazorat`` command and the services it can start."""
