-- The clinician's dashboard: the patients each user opened lately, kept from the sidecar's
-- audited patient reads (demographics, chart lists). One row per user and patient, its time moved
-- forward on every read; listed newest first, trimmed to the newest 20 per user.
CREATE TABLE IF NOT EXISTS mmt_recent_patients (
    user_id     BIGINT      NOT NULL COMMENT 'OpenEMR users.id of the reader',
    pid         BIGINT      NOT NULL COMMENT 'OpenEMR patient_data.pid',
    viewed_at   DATETIME(6) NOT NULL COMMENT 'local wall-clock time of the latest read',
    PRIMARY KEY (user_id, pid),
    KEY mmt_recent_patients_newest (user_id, viewed_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

-- Signed-in devices: each token family is one sign-in on one device. The client's User-Agent is
-- kept as it said it at sign-in (cut to 255 characters), and the last time the family's access
-- token was used (recorded at most once a minute).
ALTER TABLE mmt_auth_tokens
    ADD COLUMN IF NOT EXISTS user_agent VARCHAR(255) NULL COMMENT 'User-Agent at sign-in',
    ADD COLUMN IF NOT EXISTS last_used_at DATETIME(3) NULL COMMENT 'latest use of this access token';
