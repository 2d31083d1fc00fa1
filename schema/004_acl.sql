-- phpGACL tables used for ACL resolution (ACL/ACO/ARO sections, objects, groups, maps, *_seq counters); AXO tables omitted

-- ACL sections (system, user).
CREATE TABLE `gacl_acl_sections` (
  `id`           int(11) NOT NULL DEFAULT 0,
  `value`        varchar(150) NOT NULL,
  `order_value`  int(11) NOT NULL DEFAULT 0,
  `name`         varchar(230) NOT NULL,
  `hidden`       int(11) NOT NULL DEFAULT 0,
  PRIMARY KEY (`id`),
  UNIQUE KEY `gacl_value_acl_sections` (`value`),
  KEY `gacl_hidden_acl_sections` (`hidden`)
) ENGINE=InnoDB;

-- One row per ACL: allow/deny, enabled flag and return value (view/addonly/wsome/write).
CREATE TABLE `gacl_acl` (
  `id`             int(11) NOT NULL DEFAULT 0,
  `section_value`  varchar(150) NOT NULL DEFAULT 'system',
  `allow`          int(11) NOT NULL DEFAULT 0,
  `enabled`        int(11) NOT NULL DEFAULT 0,
  `return_value`   text DEFAULT NULL,
  `note`           text DEFAULT NULL,
  `updated_date`   int(11) NOT NULL DEFAULT 0,
  PRIMARY KEY (`id`),
  KEY `gacl_enabled_acl` (`enabled`),
  KEY `gacl_section_value_acl` (`section_value`),
  KEY `gacl_updated_date_acl` (`updated_date`)
) ENGINE=InnoDB;

-- phpGACL id counter for gacl_acl.
CREATE TABLE `gacl_acl_seq` (
  `id`  int(11) NOT NULL
) ENGINE=InnoDB;

-- ACO sections (admin, patients, encounters, ...).
CREATE TABLE `gacl_aco_sections` (
  `id`           int(11) NOT NULL DEFAULT 0,
  `value`        varchar(150) NOT NULL,
  `order_value`  int(11) NOT NULL DEFAULT 0,
  `name`         varchar(230) NOT NULL,
  `hidden`       int(11) NOT NULL DEFAULT 0,
  PRIMARY KEY (`id`),
  UNIQUE KEY `gacl_value_aco_sections` (`value`),
  KEY `gacl_hidden_aco_sections` (`hidden`)
) ENGINE=InnoDB;

-- phpGACL id counter for gacl_aco_sections.
CREATE TABLE `gacl_aco_sections_seq` (
  `id`  int(11) NOT NULL
) ENGINE=InnoDB;

-- ACOs: section_value|value pairs such as patients|med.
CREATE TABLE `gacl_aco` (
  `id`             int(11) NOT NULL DEFAULT 0,
  `section_value`  varchar(150) NOT NULL DEFAULT '0',
  `value`          varchar(150) NOT NULL,
  `order_value`    int(11) NOT NULL DEFAULT 0,
  `name`           varchar(255) NOT NULL,
  `hidden`         int(11) NOT NULL DEFAULT 0,
  PRIMARY KEY (`id`),
  UNIQUE KEY `gacl_section_value_value_aco` (`section_value`,`value`),
  KEY `gacl_hidden_aco` (`hidden`)
) ENGINE=InnoDB;

-- phpGACL id counter for gacl_aco.
CREATE TABLE `gacl_aco_seq` (
  `id`  int(11) NOT NULL
) ENGINE=InnoDB;

-- Which ACOs an ACL covers.
CREATE TABLE `gacl_aco_map` (
  `acl_id`         int(11) NOT NULL DEFAULT 0,
  `section_value`  varchar(150) NOT NULL DEFAULT '0',
  `value`          varchar(150) NOT NULL,
  PRIMARY KEY (`acl_id`,`section_value`,`value`)
) ENGINE=InnoDB;

-- ARO sections (OpenEMR uses only 'users').
CREATE TABLE `gacl_aro_sections` (
  `id`           int(11) NOT NULL DEFAULT 0,
  `value`        varchar(150) NOT NULL,
  `order_value`  int(11) NOT NULL DEFAULT 0,
  `name`         varchar(230) NOT NULL,
  `hidden`       int(11) NOT NULL DEFAULT 0,
  PRIMARY KEY (`id`),
  UNIQUE KEY `gacl_value_aro_sections` (`value`),
  KEY `gacl_hidden_aro_sections` (`hidden`)
) ENGINE=InnoDB;

-- phpGACL id counter for gacl_aro_sections.
CREATE TABLE `gacl_aro_sections_seq` (
  `id`  int(11) NOT NULL
) ENGINE=InnoDB;

-- AROs: one per user, value = username.
CREATE TABLE `gacl_aro` (
  `id`             int(11) NOT NULL DEFAULT 0,
  `section_value`  varchar(150) NOT NULL DEFAULT '0',
  `value`          varchar(150) NOT NULL,
  `order_value`    int(11) NOT NULL DEFAULT 0,
  `name`           varchar(255) NOT NULL,
  `hidden`         int(11) NOT NULL DEFAULT 0,
  PRIMARY KEY (`id`),
  UNIQUE KEY `gacl_section_value_value_aro` (`section_value`,`value`),
  KEY `gacl_hidden_aro` (`hidden`)
) ENGINE=InnoDB;

-- phpGACL id counter for gacl_aro.
CREATE TABLE `gacl_aro_seq` (
  `id`  int(11) NOT NULL
) ENGINE=InnoDB;

-- ARO group tree stored as a nested set (lft/rgt).
CREATE TABLE `gacl_aro_groups` (
  `id`         int(11) NOT NULL DEFAULT 0,
  `parent_id`  int(11) NOT NULL DEFAULT 0,
  `lft`        int(11) NOT NULL DEFAULT 0,
  `rgt`        int(11) NOT NULL DEFAULT 0,
  `name`       varchar(255) NOT NULL,
  `value`      varchar(150) NOT NULL,
  PRIMARY KEY (`id`,`value`),
  UNIQUE KEY `gacl_value_aro_groups` (`value`),
  KEY `gacl_lft_rgt_aro_groups` (`lft`,`rgt`),
  KEY `gacl_parent_id_aro_groups` (`parent_id`)
) ENGINE=InnoDB;

-- phpGACL id counter for gacl_aro_groups.
CREATE TABLE `gacl_aro_groups_id_seq` (
  `id`  int(11) NOT NULL
) ENGINE=InnoDB;

-- User (ARO) membership in ARO groups.
CREATE TABLE `gacl_groups_aro_map` (
  `group_id`  int(11) NOT NULL DEFAULT 0,
  `aro_id`    int(11) NOT NULL DEFAULT 0,
  PRIMARY KEY (`group_id`,`aro_id`),
  KEY `gacl_aro_id` (`aro_id`)
) ENGINE=InnoDB;

-- ACLs granted to ARO groups.
CREATE TABLE `gacl_aro_groups_map` (
  `acl_id`    int(11) NOT NULL DEFAULT 0,
  `group_id`  int(11) NOT NULL DEFAULT 0,
  PRIMARY KEY (`acl_id`,`group_id`)
) ENGINE=InnoDB;

-- ACLs granted directly to individual AROs.
CREATE TABLE `gacl_aro_map` (
  `acl_id`         int(11) NOT NULL DEFAULT 0,
  `section_value`  varchar(150) NOT NULL DEFAULT '0',
  `value`          varchar(150) NOT NULL,
  PRIMARY KEY (`acl_id`,`section_value`,`value`)
) ENGINE=InnoDB;
