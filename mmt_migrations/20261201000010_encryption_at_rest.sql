-- Encryption at rest of the sidecar's own PHI. Data keys (AES-256-GCM) are kept here only wrapped
-- by the master key from the configuration; `master_id` tells which master key wrapped them, so a
-- wrong key is named at start instead of failing on the first read. The newest `data` key seals
-- new values; older ones stay to open what they sealed until a rotation re-seals it. The `index`
-- key keys the blind index of searchable text.
CREATE TABLE IF NOT EXISTS mmt_data_keys (
    id          INT UNSIGNED    NOT NULL AUTO_INCREMENT,
    purpose     ENUM('data', 'index') NOT NULL,
    wrapped     VARBINARY(64)   NOT NULL COMMENT 'nonce, the key sealed by the master key, tag',
    master_id   BINARY(8)       NOT NULL COMMENT 'HMAC-SHA-256 of a fixed label under the master key, first 8 bytes',
    created_at  DATETIME(3)     NOT NULL COMMENT 'UTC',
    PRIMARY KEY (id),
    KEY mmt_data_keys_purpose (purpose, id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

-- Sealed values are binary: 0xFF 0x01, the data key id (4 bytes), nonce, ciphertext, tag. Text
-- written before this migration stays readable as it is until `mmt-sidecar rotate-key` seals it.
ALTER TABLE mmt_transcriptions
    MODIFY title          VARBINARY(1100) NOT NULL DEFAULT '',
    MODIFY note_text      MEDIUMBLOB      NOT NULL,
    MODIFY reject_reason  BLOB            NULL;
ALTER TABLE mmt_transcription_segments MODIFY text MEDIUMBLOB NOT NULL;
ALTER TABLE mmt_transcription_revisions
    MODIFY note_text  MEDIUMBLOB      NOT NULL,
    MODIFY reason     VARBINARY(1100) NOT NULL DEFAULT '';
ALTER TABLE mmt_chat_messages MODIFY text BLOB NOT NULL;
ALTER TABLE mmt_chat_rooms MODIFY title VARBINARY(1100) NOT NULL DEFAULT '';
ALTER TABLE mmt_document_text MODIFY content MEDIUMBLOB NOT NULL;

-- The blind index of extracted document text: keyed hashes of its words and word beginnings, so a
-- search finds documents without the text being readable in the database.
CREATE TABLE IF NOT EXISTS mmt_document_terms (
    document_id  BIGINT      NOT NULL COMMENT 'OpenEMR documents.id',
    term         BINARY(16)  NOT NULL COMMENT 'HMAC-SHA-256 of a normalised word or word beginning, first 16 bytes',
    PRIMARY KEY (document_id, term),
    KEY mmt_document_terms_term (term, document_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
