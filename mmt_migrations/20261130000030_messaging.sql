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
