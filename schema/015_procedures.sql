-- lab orders and results: procedure_order, procedure_order_code, procedure_report, procedure_result
-- (receive_hl7_results.inc.php files ORU^R01 results here; the Procedures screens read them).

CREATE TABLE `procedure_order` (
  `procedure_order_id`     bigint(20)   NOT NULL AUTO_INCREMENT,
  `uuid`                   binary(16)   DEFAULT NULL,
  `provider_id`            bigint(20)   NOT NULL DEFAULT 0,
  `patient_id`             bigint(20)   NOT NULL,
  `encounter_id`           bigint(20)   NOT NULL DEFAULT 0,
  `date_collected`         datetime     DEFAULT NULL,
  `date_ordered`           datetime     DEFAULT NULL,
  `order_priority`         varchar(31)  NOT NULL DEFAULT '',
  `order_status`           varchar(31)  NOT NULL DEFAULT '',
  `activity`               tinyint(1)   NOT NULL DEFAULT 1,
  `control_id`             varchar(255) NOT NULL DEFAULT '',
  `lab_id`                 bigint(20)   NOT NULL DEFAULT 0,
  `date_transmitted`       datetime     DEFAULT NULL,
  `external_id`            varchar(20)  DEFAULT NULL,
  `procedure_order_type`   varchar(32)  NOT NULL DEFAULT 'laboratory_test',
  PRIMARY KEY (`procedure_order_id`),
  UNIQUE KEY `uuid` (`uuid`),
  KEY `datepid` (`date_ordered`,`patient_id`),
  KEY `patient_id` (`patient_id`)
) ENGINE=InnoDB;

CREATE TABLE `procedure_order_code` (
  `procedure_order_id`   bigint(20)   NOT NULL,
  `procedure_order_seq`  int(11)      NOT NULL,
  `procedure_code`       varchar(64)  NOT NULL DEFAULT '',
  `procedure_name`       varchar(255) NOT NULL DEFAULT '',
  `procedure_source`     char(1)      NOT NULL DEFAULT '1',
  `diagnoses`            text,
  `procedure_type`       varchar(31)  DEFAULT NULL,
  PRIMARY KEY (`procedure_order_id`,`procedure_order_seq`)
) ENGINE=InnoDB;

CREATE TABLE `procedure_report` (
  `procedure_report_id`  bigint(20)   NOT NULL AUTO_INCREMENT,
  `uuid`                 binary(16)   DEFAULT NULL,
  `procedure_order_id`   bigint(20)   DEFAULT NULL,
  `procedure_order_seq`  int(11)      NOT NULL DEFAULT 1,
  `date_collected`       datetime     DEFAULT NULL,
  `date_collected_tz`    varchar(5)   DEFAULT '',
  `date_report`          datetime     DEFAULT NULL,
  `date_report_tz`       varchar(5)   DEFAULT '',
  `source`               bigint(20)   NOT NULL DEFAULT 0,
  `specimen_num`         varchar(63)  NOT NULL DEFAULT '',
  `report_status`        varchar(31)  NOT NULL DEFAULT '',
  `review_status`        varchar(31)  NOT NULL DEFAULT 'received',
  `report_notes`         text,
  PRIMARY KEY (`procedure_report_id`),
  UNIQUE KEY `uuid` (`uuid`),
  KEY `procedure_order_id` (`procedure_order_id`)
) ENGINE=InnoDB;

CREATE TABLE `procedure_result` (
  `procedure_result_id`  bigint(20)   NOT NULL AUTO_INCREMENT,
  `uuid`                 binary(16)   DEFAULT NULL,
  `procedure_report_id`  bigint(20)   NOT NULL,
  `result_data_type`     char(1)      NOT NULL DEFAULT 'S',
  `result_code`          varchar(31)  NOT NULL DEFAULT '',
  `result_text`          varchar(255) NOT NULL DEFAULT '',
  `date`                 datetime     DEFAULT NULL,
  `facility`             varchar(255) NOT NULL DEFAULT '',
  `units`                varchar(31)  NOT NULL DEFAULT '',
  `result`               varchar(255) NOT NULL DEFAULT '',
  `range`                varchar(255) NOT NULL DEFAULT '',
  `abnormal`             varchar(31)  NOT NULL DEFAULT '',
  `comments`             text,
  `document_id`          bigint(20)   NOT NULL DEFAULT 0,
  `result_status`        varchar(31)  NOT NULL DEFAULT '',
  PRIMARY KEY (`procedure_result_id`),
  UNIQUE KEY `uuid` (`uuid`),
  KEY `procedure_report_id` (`procedure_report_id`)
) ENGINE=InnoDB;
