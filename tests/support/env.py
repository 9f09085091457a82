"""The tests' environment: the repository's paths and the configuration every function gets
(secrets, table names, limits). No imports beyond the standard library, so a spawned worker
process can read it before the billing core is loaded."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"

TEST_ENV = {
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "BILLING_TABLE": "BillingTable",
    "LEDGER_TABLE": "LedgerTable",
    "BILLING_INTERNAL_JWT_SECRET": "test-internal-secret-0123456789abcdef",
    "BILLING_ADMIN_JWT_SECRET": "test-admin-secret-0123456789abcdef0123",
    "BILLING_ADMIN_JWT_SECRET_PREV": "test-admin-previous-secret-0123456789",
    "BILLING_USER_JWT_SECRET": "test-user-secret-0123456789abcdef01234",
    "BILLING_CONFIG_CACHE_SECONDS": "0",
    "BILLING_RATE_LIMIT_INTERNAL_PER_MIN": "200",
    "BILLING_RATE_LIMIT_ADMIN_PER_MIN": "30",
    "WORK_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/WorkQueue",
    "WEBHOOK_QUEUE_URL": "https://sqs.us-east-1.amazonaws.com/123456789012/WebhookQueue",
    "BILLING_RETRY_BASE_SECONDS": "30",
    "BILLING_MAX_WORK_ATTEMPTS": "6",
    "NOWPAYMENTS_IPN_SECRET": "test-nowpayments-ipn-secret-0123456789",
    "STRIPE_WEBHOOK_SECRET": "whsec_test_0123456789abcdef0123456789",
    "POWERTOOLS_LOG_LEVEL": "WARNING",
    "POWERTOOLS_SERVICE_NAME": "billing",
    "POWERTOOLS_METRICS_NAMESPACE": "CreditBilling",
}
