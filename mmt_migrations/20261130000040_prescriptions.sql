-- What an Australian prescription needs beyond OpenEMR's columns, per prescription (prescriptions.id):
-- the prescriber's PBS prescriber number and HPI-I, the patient's Medicare number and IHI, and the
-- PBS / controlled-drug (Schedule 8) flags. Printed on the PDF when set.
CREATE TABLE IF NOT EXISTS mmt_prescription_au (
    prescription_id     INT         NOT NULL COMMENT 'prescriptions.id',
    prescriber_number   VARCHAR(20) NULL,
    prescriber_hpii     VARCHAR(16) NULL,
    medicare_number     VARCHAR(16) NULL,
    ihi                 VARCHAR(16) NULL,
    pbs                 TINYINT(1)  NOT NULL DEFAULT 0 COMMENT 'a PBS prescription',
    controlled_schedule VARCHAR(8)  NULL COMMENT 'poisons schedule, e.g. S8',
    PRIMARY KEY (prescription_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

-- Idempotent creates: the client key (also stored in prescriptions.external_id) and a fingerprint of
-- the request, so a replay returns the same prescription and a different body under the key is 409.
CREATE TABLE IF NOT EXISTS mmt_prescription_keys (
    external_id     VARCHAR(20) NOT NULL COMMENT 'prescriptions.external_id',
    pid             BIGINT      NOT NULL COMMENT 'patient_data.pid',
    fingerprint     CHAR(64)    NOT NULL COMMENT 'SHA-256 of the create request',
    prescription_id INT         NOT NULL COMMENT 'prescriptions.id',
    PRIMARY KEY (external_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
