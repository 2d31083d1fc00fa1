-- core bookkeeping tables: version, globals, list_options, sequences, uuid_registry

-- Single row with the installed release and database/ACL revisions; read at start-up.
CREATE TABLE `version` (
  `v_major`      int(11) NOT NULL DEFAULT 0,
  `v_minor`      int(11) NOT NULL DEFAULT 0,
  `v_patch`      int(11) NOT NULL DEFAULT 0,
  `v_realpatch`  int(11) NOT NULL DEFAULT 0,
  `v_tag`        varchar(31) NOT NULL DEFAULT '',
  `v_database`   int(11) NOT NULL DEFAULT 0,
  `v_acl`        int(11) NOT NULL DEFAULT 0
) ENGINE=InnoDB;

-- Site settings; only values changed from the code defaults are guaranteed to have rows.
CREATE TABLE `globals` (
  `gl_name`   varchar(63) NOT NULL,
  `gl_index`  int(11) NOT NULL DEFAULT 0,
  `gl_value`  varchar(255) NOT NULL DEFAULT '',
  PRIMARY KEY (`gl_name`,`gl_index`)
) ENGINE=InnoDB;

-- Generic coded lists (sex, _ActEncounterCode, Clinical_Note_Type, ...); the list of lists is list_id='lists'.
CREATE TABLE `list_options` (
  `list_id`           varchar(100) NOT NULL DEFAULT '',
  `option_id`         varchar(100) NOT NULL DEFAULT '',
  `title`             varchar(255) NOT NULL DEFAULT '',
  `seq`               int(11) NOT NULL DEFAULT 0,
  `is_default`        tinyint(1) NOT NULL DEFAULT 0,
  `option_value`      float NOT NULL DEFAULT 0,
  `mapping`           varchar(31) NOT NULL DEFAULT '',
  `notes`             text DEFAULT NULL,
  `codes`             varchar(255) NOT NULL DEFAULT '',
  `toggle_setting_1`  tinyint(1) NOT NULL DEFAULT 0,
  `toggle_setting_2`  tinyint(1) NOT NULL DEFAULT 0,
  `activity`          tinyint(4) NOT NULL DEFAULT 1,
  `subtype`           varchar(31) NOT NULL DEFAULT '',
  `edit_options`      tinyint(1) NOT NULL DEFAULT 1,
  `timestamp`         timestamp NOT NULL DEFAULT current_timestamp(),
  `last_updated`      datetime NOT NULL DEFAULT current_timestamp() ON UPDATE current_timestamp(),
  PRIMARY KEY (`list_id`,`option_id`)
) ENGINE=InnoDB;

-- One-row ADOdb GenID counter (encounter numbers, documents.id, ...). Bump with LAST_INSERT_ID(id+1).
CREATE TABLE `sequences` (
  `id`  int(11) unsigned NOT NULL DEFAULT 0
) ENGINE=InnoDB;

-- Every binary(16) uuid handed out, with the table it belongs to.
CREATE TABLE `uuid_registry` (
  `uuid`            binary(16) NOT NULL DEFAULT '',
  `table_name`      varchar(255) NOT NULL DEFAULT '',
  `table_id`        varchar(255) NOT NULL DEFAULT '',
  `table_vertical`  varchar(255) NOT NULL DEFAULT '',
  `couchdb`         varchar(255) NOT NULL DEFAULT '',
  `document_drive`  tinyint(4) NOT NULL DEFAULT 0,
  `mapped`          tinyint(4) NOT NULL DEFAULT 0,
  `created`         timestamp NULL DEFAULT NULL,
  PRIMARY KEY (`uuid`)
) ENGINE=InnoDB;
