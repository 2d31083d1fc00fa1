-- Online payment of bookings through Stripe Checkout: one row per Checkout Session the sidecar
-- created, and every Stripe event id processed (each is acted on once however often it arrives).
CREATE TABLE IF NOT EXISTS mmt_checkouts (
    id                BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    pc_eid            INT UNSIGNED    NOT NULL COMMENT 'openemr_postcalendar_events.pc_eid paid for',
    pid               BIGINT          NOT NULL,
    stripe_session    VARCHAR(255)    NOT NULL COMMENT 'Checkout Session id (cs_…)',
    url               TEXT            NOT NULL,
    amount            DECIMAL(12,2)   NOT NULL,
    currency          CHAR(3)         NOT NULL,
    patient_kind      VARCHAR(10)     NOT NULL COMMENT 'new or returning, as priced',
    state             VARCHAR(10)     NOT NULL COMMENT 'open, paid, expired or refunded',
    payment_intent    VARCHAR(255)    NULL COMMENT 'PaymentIntent id (pi_…) once paid',
    ar_session_id     INT UNSIGNED    NULL COMMENT 'ar_session.session_id of the posted payment',
    refunded          DECIMAL(12,2)   NOT NULL DEFAULT 0 COMMENT 'refunds already posted to OpenEMR',
    hold_lapsed_at    DATETIME(3)     NULL COMMENT 'when the booking hold lapsed while this was open',
    created_by        BIGINT          NOT NULL COMMENT 'OpenEMR users.id',
    created_at        DATETIME(3)     NOT NULL,
    expires_at        DATETIME(3)     NOT NULL,
    settled_at        DATETIME(3)     NULL,
    outcome           VARCHAR(255)    NULL COMMENT 'what the payment did to the booking',
    PRIMARY KEY (id),
    UNIQUE KEY mmt_checkouts_session (stripe_session),
    KEY mmt_checkouts_appointment (pc_eid, state),
    KEY mmt_checkouts_intent (payment_intent)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

CREATE TABLE IF NOT EXISTS mmt_stripe_events (
    event_id          VARCHAR(255)    NOT NULL COMMENT 'Stripe event id (evt_…)',
    event_type        VARCHAR(100)    NOT NULL,
    received_at       DATETIME(3)     NOT NULL,
    outcome           VARCHAR(255)    NOT NULL,
    PRIMARY KEY (event_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

ALTER TABLE mmt_payments
    ADD COLUMN IF NOT EXISTS refund_of INT UNSIGNED NULL COMMENT 'session_id of the payment this refunds' AFTER kind;
