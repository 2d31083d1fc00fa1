-- patient flow board: patient_tracker, patient_tracker_element

-- One row per appointment that reached the flow board; lastseq names its latest element.
CREATE TABLE `patient_tracker` (
  `id`                     bigint(20) NOT NULL AUTO_INCREMENT,
  `date`                   datetime DEFAULT NULL,
  `apptdate`               date DEFAULT NULL,
  `appttime`               time DEFAULT NULL,
  `eid`                    bigint(20) NOT NULL DEFAULT 0,
  `pid`                    bigint(20) NOT NULL DEFAULT 0,
  `original_user`          varchar(255) NOT NULL DEFAULT '',
  `encounter`              bigint(20) NOT NULL DEFAULT 0,
  `lastseq`                varchar(4) NOT NULL DEFAULT '',
  `random_drug_test`       tinyint(1) DEFAULT NULL,
  `drug_screen_completed`  tinyint(1) NOT NULL DEFAULT 0,
  PRIMARY KEY (`id`),
  KEY `eid` (`eid`),
  KEY `pid` (`pid`)
) ENGINE=InnoDB;

-- Each status or room change of a tracked appointment (no primary key, as in OpenEMR).
CREATE TABLE `patient_tracker_element` (
  `pt_tracker_id`   bigint(20) NOT NULL DEFAULT 0,
  `start_datetime`  datetime DEFAULT NULL,
  `room`            varchar(20) NOT NULL DEFAULT '',
  `status`          varchar(31) NOT NULL DEFAULT '',
  `seq`             varchar(4) NOT NULL DEFAULT '',
  `user`            varchar(255) NOT NULL DEFAULT '',
  KEY `pt_tracker_id` (`pt_tracker_id`,`seq`)
) ENGINE=InnoDB;
