"""The command layer: one module per group of commands (``cli.py`` assembles them), the
plumbing they share (``common``) and their help texts (``help``)."""
