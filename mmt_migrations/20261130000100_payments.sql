-- The sidecar's side of each patient payment: the client key that makes a retry post once, the
-- front-desk receipt row it wrote, and a void. Keyed by OpenEMR's ar_session.session_id; a payment
-- posted in OpenEMR's own screens gets a row here only when the sidecar voids it.
CREATE TABLE IF NOT EXISTS mmt_payments (
    session_id      INT UNSIGNED    NOT NULL COMMENT 'ar_session.session_id',
    pid             BIGINT          NOT NULL,
    encounter       INT             NOT NULL DEFAULT 0 COMMENT '0 for a pre-payment',
    kind            VARCHAR(20)     NOT NULL COMMENT 'invoice_balance, copay or pre_payment',
    receipt_id      BIGINT          NULL COMMENT 'payments.id of the front-desk receipt row',
    posted_by       BIGINT          NULL COMMENT 'OpenEMR users.id; NULL when posted in OpenEMR',
    idempotency_key VARCHAR(64)     NULL,
    request_hash    BINARY(32)      NULL COMMENT 'SHA-256 of the payment as validated',
    voided_at       DATETIME(3)     NULL,
    voided_by       BIGINT          NULL,
    void_reason     VARCHAR(255)    NULL,
    created_at      DATETIME(3)     NOT NULL,
    PRIMARY KEY (session_id),
    UNIQUE KEY mmt_payments_request (posted_by, idempotency_key),
    KEY mmt_payments_patient (pid, encounter)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
