-- Patient search index, kept in step with OpenEMR's patient_data (which it never alters): the
-- sidecar's own writes update it in the same transaction, and a sweep picks up rows OpenEMR
-- changed (patient_data.last_updated) or removed. Results are always read back from patient_data.
CREATE TABLE IF NOT EXISTS mmt_patient_index (
    pid             BIGINT       NOT NULL,
    sort_last       VARCHAR(128) NOT NULL,
    sort_first      VARCHAR(128) NOT NULL,
    dob             DATE         NULL,
    dob_sort        DATE         NOT NULL,
    sex             VARCHAR(31)  NOT NULL DEFAULT '',
    provider_id     BIGINT       NULL,
    source_updated  DATETIME     NULL COMMENT 'patient_data.last_updated when indexed',
    content_digest  BINARY(32)   NOT NULL COMMENT 'SHA-256 of what was indexed, to skip unchanged rows',
    PRIMARY KEY (pid),
    KEY mmt_patient_index_name (sort_last, sort_first, pid),
    KEY mmt_patient_index_dob (dob_sort, pid),
    KEY mmt_patient_index_provider (provider_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

CREATE TABLE IF NOT EXISTS mmt_patient_terms (
    term    VARCHAR(64) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
    pid     BIGINT      NOT NULL,
    PRIMARY KEY (term, pid),
    KEY mmt_patient_terms_pid (pid)
) ENGINE = InnoDB;

CREATE TABLE IF NOT EXISTS mmt_patient_index_state (
    id          TINYINT     NOT NULL,
    watermark   DATETIME    NULL COMMENT 'newest patient_data.last_updated indexed',
    synced_at   DATETIME(3) NOT NULL,
    PRIMARY KEY (id)
) ENGINE = InnoDB;
