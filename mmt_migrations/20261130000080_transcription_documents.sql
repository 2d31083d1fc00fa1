-- Documents (a scanned lab report, a referral letter) attached to a transcription as context for
-- whoever writes or reviews the note. Both must be about the same patient.
CREATE TABLE IF NOT EXISTS mmt_transcription_documents (
    transcription_id BINARY(16)  NOT NULL COMMENT 'mmt_transcriptions.id',
    document_id      INT         NOT NULL COMMENT 'documents.id',
    attached_by      BIGINT      NOT NULL COMMENT 'OpenEMR users.id',
    attached_at      DATETIME(3) NOT NULL COMMENT 'local wall-clock time',
    PRIMARY KEY (transcription_id, document_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
