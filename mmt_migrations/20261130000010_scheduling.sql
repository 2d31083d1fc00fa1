-- Appointment holds (a pending booking that lapses unless confirmed, e.g. by payment) and the
-- client keys that make a booking request safe to retry. Both are keyed by OpenEMR's pc_eid.
CREATE TABLE IF NOT EXISTS mmt_appointment_holds (
    pc_eid          INT UNSIGNED    NOT NULL COMMENT 'openemr_postcalendar_events.pc_eid',
    expires_at      DATETIME(3)     NOT NULL,
    held_by         BIGINT          NOT NULL COMMENT 'OpenEMR users.id',
    created_at      DATETIME(3)     NOT NULL,
    PRIMARY KEY (pc_eid),
    KEY mmt_appointment_holds_expiry (expires_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

CREATE TABLE IF NOT EXISTS mmt_appointment_requests (
    user_id         BIGINT          NOT NULL COMMENT 'OpenEMR users.id of the client',
    idempotency_key VARCHAR(64)     NOT NULL,
    request_hash    BINARY(32)      NOT NULL COMMENT 'SHA-256 of the booking as validated',
    pc_eid          INT UNSIGNED    NOT NULL,
    created_at      DATETIME(3)     NOT NULL,
    PRIMARY KEY (user_id, idempotency_key),
    KEY mmt_appointment_requests_created (created_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
