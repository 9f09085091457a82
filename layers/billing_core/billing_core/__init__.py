"""billing_core: the credit ledger's domain rules and the small AWS adapters they use.

Nothing here knows about HTTP except `http.py`, which the thin Lambda handlers use to
parse, authorize and map domain errors to responses.
"""
