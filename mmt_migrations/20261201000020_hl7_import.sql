-- Every HL7 v2 message received, kept because OpenEMR keeps none: the sealed text as sent, what was
-- answered (MSA-1/MSA-3) and what it became. A sender's resend is recognised by its MSH-3/4/10 and
-- answered as before without filing twice. `queued` messages wait for a person to say which
-- patient they are about (no match, or more than one).
CREATE TABLE IF NOT EXISTS mmt_hl7_messages (
    id                   BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    sending_application  VARCHAR(180)    NOT NULL,
    sending_facility     VARCHAR(180)    NOT NULL,
    control_id           VARCHAR(199)    NOT NULL COMMENT 'MSH-10',
    message_type         VARCHAR(15)     NOT NULL COMMENT 'MSH-9 as CODE^TRIGGER',
    raw                  MEDIUMBLOB      NOT NULL COMMENT 'sealed',
    state                ENUM('received', 'filed', 'queued', 'error', 'rejected') NOT NULL,
    ack_code             CHAR(2)         NOT NULL DEFAULT '',
    ack_text             VARCHAR(255)    NOT NULL DEFAULT '',
    pid                  BIGINT          NULL,
    candidates           VARCHAR(255)    NOT NULL DEFAULT '' COMMENT 'pids a queued message may be about',
    filed                VARCHAR(255)    NOT NULL DEFAULT '' COMMENT 'the OpenEMR rows written',
    received_by          BIGINT          NOT NULL COMMENT 'users.id',
    received_at          DATETIME(6)     NOT NULL,
    resolved_by          BIGINT          NULL,
    updated_at           DATETIME(6)     NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY mmt_hl7_messages_sender_control (sending_application, sending_facility, control_id),
    KEY mmt_hl7_messages_state (state, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
