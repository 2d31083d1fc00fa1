-- Sidecar sign-in tokens. Only SHA-256 digests of tokens are stored, so a database read never
-- yields a usable token. Refresh tokens rotate within a family; reuse of a spent one revokes the family.
CREATE TABLE IF NOT EXISTS mmt_auth_tokens (
    id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    token_hash      BINARY(32)      NOT NULL,
    kind            ENUM('access', 'refresh') NOT NULL,
    family_id       BINARY(16)      NOT NULL,
    user_id         BIGINT          NOT NULL COMMENT 'OpenEMR users.id',
    session_source  VARCHAR(16)     NOT NULL COMMENT 'password, bridge or guest',
    issued_at       DATETIME(3)     NOT NULL,
    expires_at      DATETIME(3)     NOT NULL,
    spent_at        DATETIME(3)     NULL COMMENT 'refresh token exchanged for a new pair',
    revoked_at      DATETIME(3)     NULL,
    client_address  VARCHAR(64)     NOT NULL DEFAULT '',
    PRIMARY KEY (id),
    UNIQUE KEY mmt_auth_tokens_hash (token_hash),
    KEY mmt_auth_tokens_family (family_id),
    KEY mmt_auth_tokens_user (user_id, revoked_at),
    KEY mmt_auth_tokens_expiry (expires_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
