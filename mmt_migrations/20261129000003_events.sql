-- Live updates: every event sent to clients, kept for MMT_EVENT_RETENTION_SECS so that a client
-- that reconnects (to any replica) gets what it missed since the last id it saw.
CREATE TABLE IF NOT EXISTS mmt_events (
    id                  BIGINT UNSIGNED NOT NULL AUTO_INCREMENT COMMENT 'the id clients resume from',
    topic               VARCHAR(128)    NOT NULL COMMENT 'job, notification, transcription, chat:<room>, ...',
    kind                VARCHAR(64)     NOT NULL COMMENT 'job.progress, transcription.approved, ...',
    recipient_user_id   BIGINT          NULL COMMENT 'OpenEMR users.id; NULL: every signed-in user but guests',
    data                JSON            NOT NULL COMMENT 'ids and small state only, no PHI beyond ids',
    created_at          DATETIME(3)     NOT NULL COMMENT 'UTC',
    PRIMARY KEY (id),
    KEY mmt_events_recipient (recipient_user_id, id),
    KEY mmt_events_created (created_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
