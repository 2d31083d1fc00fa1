-- Dictated visit transcriptions, their timed segments and the append-only history of the note text.
-- Only an approved note leaves these tables, filed into OpenEMR's clinical notes form.
CREATE TABLE IF NOT EXISTS mmt_transcriptions (
    id                  BINARY(16)      NOT NULL COMMENT 'client-generated uuid: a retried create is a no-op',
    pid                 BIGINT          NOT NULL COMMENT 'OpenEMR patient_data.pid',
    encounter           BIGINT          NULL COMMENT 'OpenEMR form_encounter.encounter',
    author_id           BIGINT          NOT NULL COMMENT 'OpenEMR users.id of the dictating clinician',
    status              ENUM('draft', 'pending_review', 'approved', 'rejected', 'filed', 'cancelled') NOT NULL,
    version             INT UNSIGNED    NOT NULL DEFAULT 1 COMMENT 'optimistic lock, the ETag',
    title               VARCHAR(255)    NOT NULL DEFAULT '',
    note_type           VARCHAR(100)    NOT NULL DEFAULT 'progress_note' COMMENT 'Clinical_Note_Type option',
    language            VARCHAR(16)     NOT NULL DEFAULT 'en',
    note_text           MEDIUMTEXT      NOT NULL,
    create_digest       BINARY(32)      NOT NULL COMMENT 'SHA-256 of the create request, to tell a retry from a clash',
    audio_content_type  VARCHAR(100)    NULL,
    audio_size          BIGINT          NULL COMMENT 'declared total bytes',
    audio_received      BIGINT          NOT NULL DEFAULT 0,
    audio_sha256        BINARY(32)      NULL COMMENT 'declared digest, verified on completion',
    audio_duration_ms   BIGINT          NULL,
    audio_completed_at  DATETIME(3)     NULL,
    reject_reason       TEXT            NULL,
    created_at          DATETIME(3)     NOT NULL,
    updated_at          DATETIME(3)     NOT NULL,
    submitted_at        DATETIME(3)     NULL,
    approved_at         DATETIME(3)     NULL,
    approved_by         BIGINT          NULL,
    rejected_at         DATETIME(3)     NULL,
    rejected_by         BIGINT          NULL,
    cancelled_at        DATETIME(3)     NULL,
    filed_at            DATETIME(3)     NULL,
    filed_by            BIGINT          NULL,
    filed_form_id       BIGINT          NULL COMMENT 'form_clinical_notes.form_id (and forms.form_id)',
    filed_note_id       BIGINT          NULL COMMENT 'form_clinical_notes.id',
    PRIMARY KEY (id),
    KEY mmt_transcriptions_patient (pid, created_at),
    KEY mmt_transcriptions_author (author_id, status, created_at),
    KEY mmt_transcriptions_status (status, created_at),
    KEY mmt_transcriptions_encounter (encounter)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

CREATE TABLE IF NOT EXISTS mmt_transcription_segments (
    transcription_id    BINARY(16)      NOT NULL,
    seq                 INT UNSIGNED    NOT NULL,
    start_ms            INT UNSIGNED    NOT NULL,
    end_ms              INT UNSIGNED    NOT NULL,
    speaker_label       VARCHAR(64)     NOT NULL DEFAULT '',
    speaker_role        ENUM('clinician', 'patient', 'other', 'unknown') NOT NULL DEFAULT 'unknown',
    text                TEXT            NOT NULL,
    confidence          DECIMAL(4, 3)   NULL,
    edited_by_human     BOOLEAN         NOT NULL DEFAULT FALSE,
    PRIMARY KEY (transcription_id, seq)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

CREATE TABLE IF NOT EXISTS mmt_transcription_revisions (
    id                  BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    transcription_id    BINARY(16)      NOT NULL,
    revision_no         INT UNSIGNED    NOT NULL,
    note_text           MEDIUMTEXT      NOT NULL,
    author_id           BIGINT          NOT NULL COMMENT 'OpenEMR users.id who made this revision',
    reason              VARCHAR(255)    NOT NULL DEFAULT '',
    created_at          DATETIME(3)     NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY mmt_transcription_revisions_no (transcription_id, revision_no)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
