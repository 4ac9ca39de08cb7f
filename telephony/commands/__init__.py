"""The `telephony` subcommands, one module per group, each with `register(subparsers)`.

This is the layer that wires the others together (the sandbox, operators, the audit, the
service); nothing below it imports it, so the packages below stay free of cycles.
"""
