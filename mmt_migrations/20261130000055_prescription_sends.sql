-- E-mailed prescriptions, which OpenEMR does not record: one row per request, sent by a
-- `prescription.send` job (retried with backoff). The recipient address is kept because it is
-- part of the disclosure record; no prescription or patient data is copied here.
CREATE TABLE IF NOT EXISTS mmt_prescription_sends (
    id              BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    prescription_id INT             NOT NULL COMMENT 'prescriptions.id',
    pid             BIGINT          NOT NULL COMMENT 'patient_data.pid',
    recipient       VARCHAR(255)    NOT NULL COMMENT 'the address the PDF goes to',
    requested_by    BIGINT          NOT NULL COMMENT 'OpenEMR users.id',
    requested_name  VARCHAR(255)    NOT NULL COMMENT 'users.username, for the audit row the job writes',
    requested_group VARCHAR(255)    NOT NULL COMMENT 'the requester''s OpenEMR group',
    job_id          BINARY(16)      NOT NULL COMMENT 'mmt_jobs.id',
    state           VARCHAR(16)     NOT NULL COMMENT 'queued, sent or failed',
    attempts        INT             NOT NULL DEFAULT 0,
    message_id      VARCHAR(255)    NULL COMMENT 'Message-ID of the sent e-mail',
    error           VARCHAR(255)    NULL COMMENT 'why the last attempt failed, without addresses',
    requested_at    DATETIME(3)     NOT NULL COMMENT 'local wall-clock time',
    sent_at         DATETIME(3)     NULL,
    PRIMARY KEY (id),
    UNIQUE KEY mmt_prescription_sends_job (job_id),
    KEY mmt_prescription_sends_rx (prescription_id, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
