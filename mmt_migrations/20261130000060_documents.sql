-- Short-lived links that let one user's browser preview one document without sending a token
-- (an <iframe> or a new tab cannot). The link's secret is kept only as its SHA-256; the link is
-- bound to the user and to the password they signed in with, and every use re-checks their
-- OpenEMR permissions. Nothing decrypted is written anywhere: each view streams from memory.
CREATE TABLE IF NOT EXISTS mmt_document_views (
    token_sha256  BINARY(32)  NOT NULL COMMENT 'SHA-256 of the link secret',
    document_id   BIGINT      NOT NULL COMMENT 'OpenEMR documents.id',
    user_id       BIGINT      NOT NULL COMMENT 'OpenEMR users.id the link was made for',
    credential    BINARY(32)  NOT NULL COMMENT 'SHA-256 of that user''s password hash at the time',
    expires_at    DATETIME(3) NOT NULL COMMENT 'UTC',
    PRIMARY KEY (token_sha256),
    KEY mmt_document_views_expiry (expires_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

-- Text extracted from a document, one row per page: from the PDF's own text layer, or by
-- Tesseract with its mean word confidence. A new extraction replaces the document's rows.
CREATE TABLE IF NOT EXISTS mmt_document_text (
    document_id  BIGINT      NOT NULL COMMENT 'OpenEMR documents.id',
    page         INT         NOT NULL COMMENT '1-based',
    method       VARCHAR(8)  NOT NULL COMMENT 'text (the PDF text layer) or ocr (Tesseract)',
    confidence   DOUBLE      NULL COMMENT 'Tesseract mean word confidence, 0-100; NULL for a text layer',
    content      MEDIUMTEXT  NOT NULL,
    created_at   DATETIME(3) NOT NULL COMMENT 'UTC',
    PRIMARY KEY (document_id, page)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
