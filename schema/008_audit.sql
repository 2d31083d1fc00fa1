-- audit log and idle-timeout tracking: log, log_comment_encrypt, session_tracker

-- Audit log; comments are base64 in 8.x; checksum lives in log_comment_encrypt.
CREATE TABLE `log` (
  `id`            bigint(20) NOT NULL AUTO_INCREMENT,
  `date`          datetime DEFAULT NULL,
  `event`         varchar(255) DEFAULT NULL,
  `category`      varchar(255) DEFAULT NULL,
  `user`          varchar(255) DEFAULT NULL,
  `groupname`     varchar(255) DEFAULT NULL,
  `comments`      longtext DEFAULT NULL,
  `user_notes`    longtext DEFAULT NULL,
  `patient_id`    bigint(20) DEFAULT NULL,
  `success`       tinyint(1) DEFAULT 1,
  `checksum`      longtext DEFAULT NULL,
  `crt_user`      varchar(255) DEFAULT NULL,
  `log_from`      varchar(20) DEFAULT 'open-emr',
  `menu_item_id`  int(11) DEFAULT NULL,
  `ccda_doc_id`   int(11) DEFAULT NULL,
  PRIMARY KEY (`id`),
  KEY `patient_id` (`patient_id`)
) ENGINE=InnoDB;

-- Per-log-row encryption flag and sha3-512 checksum.
CREATE TABLE `log_comment_encrypt` (
  `id`            int(11) NOT NULL AUTO_INCREMENT,
  `log_id`        int(11) NOT NULL,
  `encrypt`       enum('Yes','No') NOT NULL DEFAULT 'No',
  `checksum`      longtext DEFAULT NULL,
  `checksum_api`  longtext DEFAULT NULL,
  `version`       tinyint(4) NOT NULL DEFAULT 0,
  PRIMARY KEY (`id`)
) ENGINE=InnoDB;

-- Idle-timeout tracker keyed by a per-session uuid (no session data is stored in the DB).
CREATE TABLE `session_tracker` (
  `uuid`            binary(16) NOT NULL DEFAULT '',
  `created`         timestamp NULL DEFAULT NULL,
  `last_updated`    timestamp NULL DEFAULT NULL,
  `number_scripts`  bigint(20) DEFAULT 1,
  PRIMARY KEY (`uuid`)
) ENGINE=InnoDB;
