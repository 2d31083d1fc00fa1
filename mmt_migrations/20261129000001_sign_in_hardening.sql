-- Sign-ins are bound to the OpenEMR password hash they were made with (as a digest), so a password
-- change in OpenEMR ends them; failed-attempt throttling counts per user-and-address pair first.
ALTER TABLE mmt_auth_tokens
    ADD COLUMN IF NOT EXISTS credential_digest BINARY(32) NULL
        COMMENT 'SHA-256 of users_secure.password at sign-in; NULL for guests';

ALTER TABLE mmt_login_failures
    MODIFY scope ENUM('user', 'address', 'user_address') NOT NULL;

-- TOTP codes are single use: the newest RFC 6238 time step accepted per user. OpenEMR 8.2 keeps no
-- such record; the sidecar does, so a code seen once is refused for the rest of its window.
CREATE TABLE IF NOT EXISTS mmt_mfa_totp_steps (
    user_id     BIGINT NOT NULL COMMENT 'OpenEMR users.id',
    last_step   BIGINT NOT NULL,
    PRIMARY KEY (user_id)
) ENGINE = InnoDB;

-- A TOTP enrolment between "show me the QR code" and "here is a code from the app". The secret is
-- held encrypted exactly as OpenEMR stores login_mfa_registrations.var1, never in plain text.
CREATE TABLE IF NOT EXISTS mmt_mfa_enrolments (
    user_id     BIGINT       NOT NULL COMMENT 'OpenEMR users.id',
    secret      VARCHAR(512) NOT NULL COMMENT 'CryptoGen-encrypted base32 secret',
    expires_at  DATETIME     NOT NULL,
    PRIMARY KEY (user_id)
) ENGINE = InnoDB;
