-- Read receipts for OpenEMR messages (pnotes), which OpenEMR does not keep: the first time a
-- recipient opens a thread assigned to them. A reply that reassigns the thread clears the new
-- recipient's receipt, so it always describes the entry the thread now waits on.
CREATE TABLE IF NOT EXISTS mmt_message_receipts (
    pnote_id    BIGINT       NOT NULL COMMENT 'pnotes.id',
    user_id     BIGINT       NOT NULL COMMENT 'OpenEMR users.id of the reader',
    username    VARCHAR(255) NOT NULL COMMENT 'users.username, as pnotes.assigned_to names it',
    read_at     DATETIME(3)  NOT NULL COMMENT 'local wall-clock time, as pnotes dates',
    PRIMARY KEY (pnote_id, user_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

-- Per-user notifications (a new message today), listed by GET /api/notifications/ and pushed live
-- on topic `notification`. Ids and usernames only: no message text, no patient data.
CREATE TABLE IF NOT EXISTS mmt_notifications (
    id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    user_id     BIGINT          NOT NULL COMMENT 'OpenEMR users.id of the recipient',
    kind        VARCHAR(64)     NOT NULL COMMENT 'message.received, ...',
    message_id  BIGINT          NULL COMMENT 'pnotes.id it is about',
    actor       VARCHAR(255)    NOT NULL COMMENT 'username of who caused it',
    created_at  DATETIME(3)     NOT NULL COMMENT 'local wall-clock time',
    read_at     DATETIME(3)     NULL,
    PRIMARY KEY (id),
    KEY mmt_notifications_user (user_id, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
