"""billing-admin: the operator CLI. It talks to the billing HTTP API with an admin token."""
