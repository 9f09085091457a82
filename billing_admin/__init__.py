"""billing-admin: the operator CLI. It talks to the billing HTTP API with an admin token."""

from importlib import metadata

try:
    __version__ = metadata.version("credit-billing")
except metadata.PackageNotFoundError:  # running from a checkout without the install
    __version__ = "0.0.0"
