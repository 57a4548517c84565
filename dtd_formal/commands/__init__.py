"""One module per ``dtd-formal`` subcommand (each exposes ``register(subparsers)``), plus shared helpers."""
