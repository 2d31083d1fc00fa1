-- Live chat rooms about a patient or an appointment (a consultation). The sidecar's own data:
-- OpenEMR has no chat. A transcript filed to the chart becomes an ordinary pnotes message.
CREATE TABLE IF NOT EXISTS mmt_chat_rooms (
    id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    pid             BIGINT          NULL COMMENT 'patient_data.pid the room is about',
    appointment_id  INT UNSIGNED    NULL COMMENT 'openemr_postcalendar_events.pc_eid it is about',
    title           VARCHAR(255)    NOT NULL DEFAULT '',
    created_by      BIGINT          NOT NULL COMMENT 'OpenEMR users.id',
    created_at      DATETIME(3)     NOT NULL COMMENT 'UTC',
    PRIMARY KEY (id),
    KEY mmt_chat_rooms_pid (pid),
    KEY mmt_chat_rooms_appointment (appointment_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

-- Who is in a room, and how far each member has read ("read up to message N").
CREATE TABLE IF NOT EXISTS mmt_chat_members (
    room_id     BIGINT UNSIGNED NOT NULL,
    user_id     BIGINT          NOT NULL COMMENT 'OpenEMR users.id',
    username    VARCHAR(255)    NOT NULL,
    added_by    BIGINT          NOT NULL COMMENT 'OpenEMR users.id',
    added_at    DATETIME(3)     NOT NULL COMMENT 'UTC',
    read_up_to  BIGINT UNSIGNED NOT NULL DEFAULT 0 COMMENT 'mmt_chat_messages.id',
    read_at     DATETIME(3)     NULL,
    typing_at   DATETIME(3)     NULL COMMENT 'last typing indicator sent, to throttle them',
    PRIMARY KEY (room_id, user_id),
    KEY mmt_chat_members_user (user_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

-- Messages, ids and times assigned by the server; ids order a room's history and are its cursor.
CREATE TABLE IF NOT EXISTS mmt_chat_messages (
    id          BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    room_id     BIGINT UNSIGNED NOT NULL,
    author_id   BIGINT          NOT NULL COMMENT 'OpenEMR users.id',
    author      VARCHAR(255)    NOT NULL COMMENT 'users.username',
    text        TEXT            NOT NULL,
    created_at  DATETIME(3)     NOT NULL COMMENT 'UTC',
    PRIMARY KEY (id),
    KEY mmt_chat_messages_room (room_id, id),
    KEY mmt_chat_messages_author (author_id, created_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
