-- documents: documents, categories (nested set), categories_seq, categories_to_documents, gprelations

-- Patient documents; id from `sequences` (GenID), the file under <site>/documents/<pid>/<drive_uuid>.
CREATE TABLE `documents` (
  `id`                            int(11) NOT NULL DEFAULT 0,
  `uuid`                          binary(16) DEFAULT NULL,
  `type`                          enum('file_url','blob','web_url') DEFAULT NULL,
  `size`                          int(11) DEFAULT NULL,
  `date`                          datetime DEFAULT NULL,
  `date_expires`                  datetime DEFAULT NULL,
  `url`                           varchar(255) DEFAULT NULL,
  `thumb_url`                     varchar(255) DEFAULT NULL,
  `mimetype`                      varchar(255) DEFAULT NULL,
  `pages`                         int(11) DEFAULT NULL,
  `owner`                         int(11) DEFAULT NULL,
  `revision`                      timestamp NOT NULL,
  `foreign_id`                    bigint(20) DEFAULT NULL,
  `docdate`                       date DEFAULT NULL,
  `hash`                          varchar(255) DEFAULT NULL,
  `list_id`                       bigint(20) NOT NULL DEFAULT 0,
  `name`                          varchar(255) DEFAULT NULL,
  `drive_uuid`                    binary(16) DEFAULT NULL,
  `couch_docid`                   varchar(100) DEFAULT NULL,
  `couch_revid`                   varchar(100) DEFAULT NULL,
  `storagemethod`                 tinyint(4) NOT NULL DEFAULT 0 COMMENT '0->Harddisk,1->CouchDB',
  `path_depth`                    tinyint(4) DEFAULT 1 COMMENT 'Depth of path to use in url to find document. Not applicable for CouchDB.',
  `imported`                      tinyint(4) DEFAULT 0 COMMENT 'Parsing status for CCR/CCD/CCDA importing',
  `encounter_id`                  bigint(20) NOT NULL DEFAULT 0 COMMENT 'Encounter id if tagged',
  `encounter_check`               tinyint(1) NOT NULL DEFAULT 0 COMMENT 'If encounter is created while tagging',
  `audit_master_approval_status`  tinyint(4) NOT NULL DEFAULT 1 COMMENT 'approval_status from audit_master table',
  `audit_master_id`               int(11) DEFAULT NULL,
  `documentationOf`               varchar(255) DEFAULT NULL,
  `encrypted`                     tinyint(4) NOT NULL DEFAULT 0 COMMENT '0->No,1->Yes',
  `document_data`                 mediumtext DEFAULT NULL,
  `deleted`                       tinyint(1) NOT NULL DEFAULT 0,
  `foreign_reference_id`          bigint(20) DEFAULT NULL,
  `foreign_reference_table`       varchar(40) DEFAULT NULL,
  PRIMARY KEY (`id`),
  UNIQUE KEY `drive_uuid` (`drive_uuid`),
  UNIQUE KEY `uuid` (`uuid`),
  KEY `revision` (`revision`),
  KEY `foreign_id` (`foreign_id`),
  KEY `foreign_reference` (`foreign_reference_id`,`foreign_reference_table`),
  KEY `owner` (`owner`)
) ENGINE=InnoDB;

-- Document categories: a nested set under 1 "Categories"; aco_spec guards each.
CREATE TABLE `categories` (
  `id`        int(11) NOT NULL DEFAULT 0,
  `name`      varchar(255) DEFAULT NULL,
  `value`     varchar(255) DEFAULT NULL,
  `parent`    int(11) NOT NULL DEFAULT 0,
  `lft`       int(11) NOT NULL DEFAULT 0,
  `rght`      int(11) NOT NULL DEFAULT 0,
  `aco_spec`  varchar(63) NOT NULL DEFAULT 'patients|docs',
  `codes`     varchar(255) NOT NULL DEFAULT '' COMMENT 'Category codes for documents stored in this category',
  PRIMARY KEY (`id`),
  KEY `parent` (`parent`),
  KEY `lft` (`lft`,`rght`)
) ENGINE=InnoDB;

-- The categories' own id counter.
CREATE TABLE `categories_seq` (
  `id`  int(11) NOT NULL DEFAULT 0,
  PRIMARY KEY (`id`)
) ENGINE=InnoDB;

-- Which categories a document is filed in (REPLACE INTO).
CREATE TABLE `categories_to_documents` (
  `category_id`  int(11) NOT NULL DEFAULT 0,
  `document_id`  int(11) NOT NULL DEFAULT 0,
  PRIMARY KEY (`category_id`,`document_id`)
) ENGINE=InnoDB;

-- Links between objects (type 1 = document); a document delete removes its type-1 rows.
CREATE TABLE `gprelations` (
  `type1`  int(2) NOT NULL,
  `id1`    bigint(20) NOT NULL,
  `type2`  int(2) NOT NULL,
  `id2`    bigint(20) NOT NULL,
  PRIMARY KEY (`type1`,`id1`,`type2`,`id2`),
  KEY `key2` (`type2`,`id2`)
) ENGINE=InnoDB COMMENT='general purpose relations';
