"""The local stack (`make run`): the template's API on moto, without Docker or an AWS account.

Modules: engine (serialized, patched moto server), template (everything read from
template.yaml), runner (Lambda worker processes), gateway (SAM CLI's API Gateway emulation),
stack (all of it together), tokens (dev secrets and JWTs), testing (the stack for tests).
Nothing heavy is imported here, so `python -m devserver.tokens` stays quick.
"""
