"""Subcommands of the ``supercooled`` command line, one module each.

Every module here defines ``register(subparsers)``, which adds its parser and sets
``func`` to the function that runs it. :mod:`supercooled.cli` discovers them, so a
subcommand exists exactly when its module does.
"""
