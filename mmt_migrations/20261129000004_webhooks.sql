-- Webhook endpoints registered by administrators, and the log of every delivery attempt. Change
-- events themselves are rows of mmt_events written in the transaction of the change; each delivery
-- is a webhook.deliver job enqueued in that same transaction.
CREATE TABLE IF NOT EXISTS mmt_webhooks (
    id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    url             VARCHAR(2048)   NOT NULL,
    secret          VARCHAR(128)    NOT NULL COMMENT 'HMAC-SHA256 key; shown to the administrator once',
    event_types     TEXT            NOT NULL COMMENT 'comma-separated, e.g. patient.created,encounter.created',
    include_phi     BOOLEAN         NOT NULL DEFAULT FALSE COMMENT 'payloads carry the resource, not ids only',
    active          BOOLEAN         NOT NULL DEFAULT TRUE,
    description     VARCHAR(255)    NOT NULL DEFAULT '',
    created_by      BIGINT          NOT NULL COMMENT 'OpenEMR users.id',
    created_at      DATETIME(3)     NOT NULL,
    updated_at      DATETIME(3)     NOT NULL,
    PRIMARY KEY (id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

CREATE TABLE IF NOT EXISTS mmt_webhook_deliveries (
    id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    webhook_id      BIGINT UNSIGNED NOT NULL,
    event_id        BIGINT UNSIGNED NOT NULL COMMENT 'mmt_events.id',
    event_type      VARCHAR(64)     NOT NULL,
    state           ENUM('pending', 'delivered', 'failed') NOT NULL DEFAULT 'pending',
    attempts        INT UNSIGNED    NOT NULL DEFAULT 0,
    last_status     SMALLINT        NULL COMMENT 'HTTP status of the last attempt',
    last_error      VARCHAR(255)    NOT NULL DEFAULT '',
    last_attempt_at DATETIME(3)     NULL,
    delivered_at    DATETIME(3)     NULL,
    created_at      DATETIME(3)     NOT NULL,
    PRIMARY KEY (id),
    KEY mmt_webhook_deliveries_webhook (webhook_id, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
