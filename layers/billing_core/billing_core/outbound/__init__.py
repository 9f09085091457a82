"""Outbound events: signed webhooks (Standard Webhooks) to the operator's own application.

Changes are read from BillingTable's DynamoDB stream (derive.py turns item images into events,
dispatch.py decides once-ness and fans out), delivered through SQS as work items (delivery.py),
to endpoints operators manage over the admin API (endpoints.py), only to targets targets.py allows.
"""
