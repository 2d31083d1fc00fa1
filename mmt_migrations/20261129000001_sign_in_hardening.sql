-- Sign-ins are bound to the OpenEMR password hash they were made with (as a digest), so a password
-- change in OpenEMR ends them; failed-attempt throttling counts per user-and-address pair first.
ALTER TABLE mmt_auth_tokens
    ADD COLUMN IF NOT EXISTS credential_digest BINARY(32) NULL
        COMMENT 'SHA-256 of users_secure.password at sign-in; NULL for guests';

ALTER TABLE mmt_login_failures
    MODIFY scope ENUM('user', 'address', 'user_address') NOT NULL;
