-- The practice's visit prices per calendar category and kind of patient (new or returning), set
-- by administrators and quoted when a booking needs payment. category_id 0 is practice-wide.
CREATE TABLE IF NOT EXISTS mmt_visit_prices (
    category_id     INT             NOT NULL COMMENT 'openemr_postcalendar_categories.pc_catid; 0 = every category',
    patient_kind    VARCHAR(10)     NOT NULL COMMENT 'new or returning',
    amount          DECIMAL(12,2)   NOT NULL,
    updated_by      BIGINT          NOT NULL COMMENT 'OpenEMR users.id',
    updated_at      DATETIME(3)     NOT NULL,
    PRIMARY KEY (category_id, patient_kind)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
