-- messaging: pnotes (OpenEMR's Messages inbox; one row per recipient thread)

CREATE TABLE `pnotes` (
  `id`                bigint(20) NOT NULL AUTO_INCREMENT,
  `date`              datetime DEFAULT NULL,
  `body`              longtext DEFAULT NULL,
  `pid`               bigint(20) DEFAULT NULL,
  `user`              varchar(255) DEFAULT NULL,
  `groupname`         varchar(255) DEFAULT NULL,
  `activity`          tinyint(4) DEFAULT NULL,
  `authorized`        tinyint(4) DEFAULT NULL,
  `title`             varchar(255) DEFAULT NULL,
  `assigned_to`       varchar(255) DEFAULT NULL,
  `deleted`           tinyint(4) DEFAULT 0 COMMENT 'flag indicates note is deleted',
  `message_status`    varchar(20) NOT NULL DEFAULT 'New',
  `portal_relation`   varchar(100) DEFAULT NULL,
  `is_msg_encrypted`  tinyint(2) DEFAULT 0 COMMENT 'Whether messsage encrypted 0-Not encrypted, 1-Encrypted',
  `update_by`         bigint(20) DEFAULT NULL,
  `update_date`       datetime DEFAULT NULL,
  PRIMARY KEY (`id`),
  KEY `pid` (`pid`)
) ENGINE=InnoDB;
