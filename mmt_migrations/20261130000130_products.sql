-- Suppliers' product catalogues, imported from their spreadsheets (domain::catalogue).

CREATE TABLE IF NOT EXISTS mmt_product_imports (
    id                  BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    supplier            VARCHAR(40)     NOT NULL,
    file_name           VARCHAR(255)    NOT NULL,
    sha256              BINARY(32)      NOT NULL,
    workbook            MEDIUMBLOB      NULL COMMENT 'the uploaded file, kept until its job has read it',
    state               VARCHAR(10)     NOT NULL COMMENT 'queued, done or failed',
    report              LONGTEXT        NULL COMMENT 'JSON: counts, changes, rejected rows, or the failure',
    imported_by         BIGINT          NULL COMMENT 'OpenEMR users.id; NULL from the command line',
    created_at          DATETIME(3)     NOT NULL,
    finished_at         DATETIME(3)     NULL,
    PRIMARY KEY (id),
    KEY mmt_product_imports_supplier (supplier, created_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

CREATE TABLE IF NOT EXISTS mmt_products (
    id                  BIGINT UNSIGNED NOT NULL AUTO_INCREMENT,
    supplier            VARCHAR(40)     NOT NULL,
    product_key         VARCHAR(400)    NOT NULL COMMENT 'artg:<number>, or brand:<brand>|<form> without one',
    artg_number         VARCHAR(10)     NULL,
    brand               VARCHAR(255)    NOT NULL,
    product_name        VARCHAR(255)    NULL,
    tga_category        TINYINT UNSIGNED NULL COMMENT '1 (CBD) to 5 (THC-dominant)',
    schedule            VARCHAR(3)      NULL COMMENT 'Poisons Standard schedule, e.g. S8',
    thc                 VARCHAR(60)     NULL,
    cbd                 VARCHAR(60)     NULL,
    form                VARCHAR(60)     NOT NULL,
    pack_size           VARCHAR(60)     NULL,
    price               DECIMAL(12,2)   NULL,
    price_includes_gst  TINYINT(1)      NOT NULL,
    discontinued_at     DATETIME(3)     NULL,
    drug_id             INT             NULL COMMENT 'OpenEMR drugs.drug_id it is prescribed as',
    last_import_id      BIGINT UNSIGNED NOT NULL,
    created_at          DATETIME(3)     NOT NULL,
    updated_at          DATETIME(3)     NOT NULL,
    PRIMARY KEY (id),
    UNIQUE KEY mmt_products_key (supplier, product_key),
    KEY mmt_products_brand (brand),
    KEY mmt_products_artg (artg_number),
    KEY mmt_products_form (form, schedule)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

CREATE TABLE IF NOT EXISTS mmt_prescription_products (
    prescription_id     INT             NOT NULL COMMENT 'OpenEMR prescriptions.id',
    product_id          BIGINT UNSIGNED NOT NULL,
    PRIMARY KEY (prescription_id),
    KEY mmt_prescription_products_product (product_id)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
