-- Break-glass grants: a clinician outside a patient's care team reaching that one chart for a
-- limited time, with the reason they gave. OpenEMR's `log` holds the audit row of each grant.
CREATE TABLE IF NOT EXISTS mmt_break_glass (
    id         BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    pid        BIGINT          NOT NULL COMMENT 'patient_data.pid',
    user_id    BIGINT          NOT NULL COMMENT 'OpenEMR users.id',
    reason     VARCHAR(500)    NOT NULL,
    granted_at DATETIME(3)     NOT NULL COMMENT 'local wall-clock time',
    expires_at DATETIME(3)     NOT NULL COMMENT 'local wall-clock time',
    PRIMARY KEY (id),
    KEY user_pid_expiry (user_id, pid, expires_at),
    KEY user_expiry (user_id, expires_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
