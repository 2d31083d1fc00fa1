-- Failed sign-in attempts, for throttling shared by every replica. Subjects (usernames, client
-- addresses) are stored as SHA-256 digests; rows older than the window are purged as they age out.
CREATE TABLE IF NOT EXISTS mmt_login_failures (
    id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    scope       ENUM('user', 'address') NOT NULL,
    subject     BINARY(32)      NOT NULL,
    failed_at   DATETIME(3)     NOT NULL,
    PRIMARY KEY (id),
    KEY mmt_login_failures_subject (scope, subject, failed_at),
    KEY mmt_login_failures_age (failed_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
