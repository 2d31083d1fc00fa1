-- the patient's chart: vitals (form_vitals, form_vital_details, uuid_mapping) and issue lists
-- (lists, lists_medication, issue_encounter, lists_touch)

-- Vitals forms, always in US units (lb, in, degF); a measurement not taken is 0.
CREATE TABLE `form_vitals` (
  `id`                            bigint(20) NOT NULL AUTO_INCREMENT,
  `uuid`                          binary(16) DEFAULT NULL,
  `date`                          datetime DEFAULT NULL,
  `pid`                           bigint(20) DEFAULT 0,
  `user`                          varchar(255) DEFAULT NULL,
  `groupname`                     varchar(255) DEFAULT NULL,
  `authorized`                    tinyint(4) DEFAULT 0,
  `activity`                      tinyint(4) DEFAULT 0,
  `bps`                           varchar(40) DEFAULT NULL,
  `bpd`                           varchar(40) DEFAULT NULL,
  `weight`                        decimal(12,6) DEFAULT 0.00,
  `height`                        decimal(12,6) DEFAULT 0.00,
  `temperature`                   decimal(12,6) DEFAULT 0.00,
  `temp_method`                   varchar(255) DEFAULT NULL,
  `pulse`                         decimal(12,6) DEFAULT 0.00,
  `respiration`                   decimal(12,6) DEFAULT 0.00,
  `note`                          varchar(255) DEFAULT NULL,
  `BMI`                           decimal(12,6) DEFAULT 0.0,
  `BMI_status`                    varchar(255) DEFAULT NULL,
  `waist_circ`                    decimal(12,6) DEFAULT 0.00,
  `head_circ`                     decimal(12,6) DEFAULT 0.00,
  `oxygen_saturation`             decimal(6,2) DEFAULT 0.00,
  `oxygen_flow_rate`              decimal(12,6) DEFAULT 0.00,
  `external_id`                   varchar(20) DEFAULT NULL,
  `ped_weight_height`             decimal(6,2) DEFAULT 0.00,
  `ped_bmi`                       decimal(6,2) DEFAULT 0.00,
  `ped_head_circ`                 decimal(6,2) DEFAULT 0.00,
  `inhaled_oxygen_concentration`  decimal(6,2) DEFAULT 0.00,
  `last_updated`                  datetime NOT NULL DEFAULT current_timestamp() ON UPDATE current_timestamp(),
  PRIMARY KEY (`id`),
  KEY `pid` (`pid`),
  UNIQUE KEY `uuid` (`uuid`)
) ENGINE=InnoDB;

-- One row per annotated vitals column: interpretation (list vitals-interpretation) and reason.
CREATE TABLE `form_vital_details` (
  `id`                        bigint(20) NOT NULL AUTO_INCREMENT,
  `form_id`                   bigint(20) NOT NULL,
  `vitals_column`             varchar(64) NOT NULL,
  `interpretation_list_id`    varchar(100) DEFAULT NULL,
  `interpretation_option_id`  varchar(100) DEFAULT NULL,
  `interpretation_codes`      varchar(255) DEFAULT NULL,
  `interpretation_title`      varchar(255) DEFAULT NULL,
  `reason_code`               varchar(31) DEFAULT NULL,
  `reason_description`        text DEFAULT NULL,
  `reason_status`             varchar(31) DEFAULT NULL,
  PRIMARY KEY (`id`),
  KEY `fk_form_id` (`form_id`),
  KEY `fk_list_options_id` (`interpretation_list_id`,`interpretation_option_id`)
) ENGINE=InnoDB;

-- FHIR ids for rows that yield several resources (a vitals form: one Observation per LOINC code).
CREATE TABLE `uuid_mapping` (
  `id`             bigint(20) NOT NULL AUTO_INCREMENT,
  `uuid`           binary(16) NOT NULL DEFAULT '',
  `resource`       varchar(255) NOT NULL DEFAULT '',
  `resource_path`  varchar(255) DEFAULT NULL,
  `table`          varchar(255) NOT NULL DEFAULT '',
  `target_uuid`    binary(16) NOT NULL DEFAULT '',
  `created`        timestamp NULL DEFAULT NULL,
  PRIMARY KEY (`id`),
  KEY `uuid` (`uuid`),
  KEY `resource` (`resource`),
  KEY `table` (`table`),
  KEY `target_uuid` (`target_uuid`)
) ENGINE=InnoDB;

-- Issues: allergies, problems, medications, ... (type); ended by enddate, never deleted here.
CREATE TABLE `lists` (
  `id`                  bigint(20) NOT NULL AUTO_INCREMENT,
  `uuid`                binary(16) DEFAULT NULL,
  `date`                datetime DEFAULT NULL,
  `type`                varchar(255) DEFAULT NULL,
  `subtype`             varchar(31) NOT NULL DEFAULT '',
  `title`               varchar(255) DEFAULT NULL,
  `udi`                 varchar(255) DEFAULT NULL,
  `udi_data`            text DEFAULT NULL,
  `begdate`             datetime DEFAULT NULL,
  `enddate`             datetime DEFAULT NULL,
  `returndate`          date DEFAULT NULL,
  `occurrence`          int(11) DEFAULT 0,
  `classification`      int(11) DEFAULT 0,
  `referredby`          varchar(255) DEFAULT NULL,
  `extrainfo`           varchar(255) DEFAULT NULL,
  `diagnosis`           varchar(255) DEFAULT NULL,
  `activity`            tinyint(4) DEFAULT NULL,
  `comments`            longtext DEFAULT NULL,
  `pid`                 bigint(20) DEFAULT NULL,
  `user`                varchar(255) DEFAULT NULL,
  `groupname`           varchar(255) DEFAULT NULL,
  `outcome`             int(11) NOT NULL DEFAULT 0,
  `destination`         varchar(255) DEFAULT NULL,
  `reinjury_id`         bigint(20) NOT NULL DEFAULT 0,
  `injury_part`         varchar(31) NOT NULL DEFAULT '',
  `injury_type`         varchar(31) NOT NULL DEFAULT '',
  `injury_grade`        varchar(31) NOT NULL DEFAULT '',
  `reaction`            varchar(255) NOT NULL DEFAULT '',
  `verification`        varchar(36) NOT NULL DEFAULT '',
  `external_allergyid`  int(11) DEFAULT NULL,
  `erx_source`          enum('0','1') NOT NULL DEFAULT '0',
  `erx_uploaded`        enum('0','1') NOT NULL DEFAULT '0',
  `modifydate`          timestamp NOT NULL DEFAULT current_timestamp() ON UPDATE current_timestamp(),
  `severity_al`         varchar(50) DEFAULT NULL,
  `external_id`         varchar(20) DEFAULT NULL,
  `list_option_id`      varchar(100) DEFAULT NULL,
  PRIMARY KEY (`id`),
  KEY `pid` (`pid`),
  KEY `type` (`type`),
  UNIQUE KEY `uuid` (`uuid`)
) ENGINE=InnoDB;

-- Companion row of a medication issue.
CREATE TABLE `lists_medication` (
  `id`                                       bigint(20) NOT NULL AUTO_INCREMENT,
  `list_id`                                  bigint(20) DEFAULT NULL,
  `drug_dosage_instructions`                 longtext DEFAULT NULL,
  `usage_category`                           varchar(100) DEFAULT NULL,
  `usage_category_title`                     varchar(255) NOT NULL,
  `request_intent`                           varchar(100) DEFAULT NULL,
  `request_intent_title`                     varchar(255) NOT NULL,
  `medication_adherence_information_source`  varchar(50) DEFAULT NULL,
  `medication_adherence`                     varchar(50) DEFAULT NULL,
  `medication_adherence_date_asserted`       datetime DEFAULT NULL,
  `prescription_id`                          bigint(20) DEFAULT NULL,
  `is_primary_record`                        tinyint(1) DEFAULT 1,
  `reporting_source_record_id`               bigint(20) DEFAULT NULL,
  PRIMARY KEY (`id`),
  KEY `lists_med_usage_category_idx` (`usage_category`),
  KEY `lists_med_request_intent_idx` (`request_intent`),
  KEY `lists_medication_list_idx` (`list_id`)
) ENGINE=InnoDB;

-- Which issues an encounter addressed (FHIR Condition encounter-diagnosis).
CREATE TABLE `issue_encounter` (
  `id`          bigint(20) NOT NULL AUTO_INCREMENT,
  `uuid`        binary(16) DEFAULT NULL,
  `pid`         bigint(20) NOT NULL,
  `list_id`     int(11) NOT NULL,
  `encounter`   int(11) NOT NULL,
  `resolved`    tinyint(1) NOT NULL,
  `created_by`  bigint(20) DEFAULT NULL,
  `updated_by`  bigint(20) DEFAULT NULL,
  `created_at`  datetime DEFAULT current_timestamp(),
  `updated_at`  datetime DEFAULT current_timestamp() ON UPDATE current_timestamp(),
  PRIMARY KEY (`id`),
  UNIQUE KEY `uniq_issue_key` (`pid`,`list_id`,`encounter`),
  UNIQUE KEY `uuid_unique` (`uuid`)
) ENGINE=InnoDB;

-- "List reviewed" marker, one row per patient and issue type.
CREATE TABLE `lists_touch` (
  `pid`   bigint(20) NOT NULL DEFAULT 0,
  `type`  varchar(255) NOT NULL DEFAULT '',
  `date`  datetime DEFAULT NULL,
  PRIMARY KEY (`pid`,`type`)
) ENGINE=InnoDB;
