-- staff accounts: users, users_secure (login hashes), groups (auth group)

-- Staff accounts. `password` is legacy ('NoLongerUsed'); the live hash is in users_secure.
CREATE TABLE `users` (
  `id`                    bigint(20) NOT NULL AUTO_INCREMENT,
  `uuid`                  binary(16) DEFAULT NULL,
  `username`              varchar(255) DEFAULT NULL,
  `password`              longtext DEFAULT NULL,
  `authorized`            tinyint(4) DEFAULT NULL,
  `info`                  longtext DEFAULT NULL,
  `source`                tinyint(4) DEFAULT NULL,
  `fname`                 varchar(255) DEFAULT NULL,
  `mname`                 varchar(255) DEFAULT NULL,
  `lname`                 varchar(255) DEFAULT NULL,
  `suffix`                varchar(255) DEFAULT NULL,
  `federaltaxid`          varchar(255) DEFAULT NULL,
  `federaldrugid`         varchar(255) DEFAULT NULL,
  `upin`                  varchar(255) DEFAULT NULL,
  `facility`              varchar(255) DEFAULT NULL,
  `facility_id`           int(11) NOT NULL DEFAULT 0,
  `see_auth`              int(11) NOT NULL DEFAULT 1,
  `active`                tinyint(1) NOT NULL DEFAULT 1,
  `npi`                   varchar(15) DEFAULT NULL,
  `title`                 varchar(30) DEFAULT NULL,
  `specialty`             varchar(255) DEFAULT NULL,
  `billname`              varchar(255) DEFAULT NULL,
  `email`                 varchar(255) DEFAULT NULL,
  `email_direct`          varchar(255) NOT NULL DEFAULT '',
  `google_signin_email`   varchar(255) DEFAULT NULL,
  `url`                   varchar(255) DEFAULT NULL,
  `assistant`             varchar(255) DEFAULT NULL,
  `organization`          varchar(255) DEFAULT NULL,
  `valedictory`           varchar(255) DEFAULT NULL,
  `street`                varchar(60) DEFAULT NULL,
  `streetb`               varchar(60) DEFAULT NULL,
  `city`                  varchar(30) DEFAULT NULL,
  `state`                 varchar(30) DEFAULT NULL,
  `zip`                   varchar(20) DEFAULT NULL,
  `country_code`          varchar(255) DEFAULT NULL,
  `street2`               varchar(60) DEFAULT NULL,
  `streetb2`              varchar(60) DEFAULT NULL,
  `city2`                 varchar(30) DEFAULT NULL,
  `state2`                varchar(30) DEFAULT NULL,
  `zip2`                  varchar(20) DEFAULT NULL,
  `country_code2`         varchar(255) DEFAULT NULL,
  `phone`                 varchar(30) DEFAULT NULL,
  `fax`                   varchar(30) DEFAULT NULL,
  `phonew1`               varchar(30) DEFAULT NULL,
  `phonew2`               varchar(30) DEFAULT NULL,
  `phonecell`             varchar(30) DEFAULT NULL,
  `notes`                 text DEFAULT NULL,
  `cal_ui`                tinyint(4) NOT NULL DEFAULT 1,
  `taxonomy`              varchar(30) NOT NULL DEFAULT '207Q00000X',
  `calendar`              tinyint(1) NOT NULL DEFAULT 0,
  `abook_type`            varchar(31) NOT NULL DEFAULT '',
  `default_warehouse`     varchar(31) NOT NULL DEFAULT '',
  `irnpool`               varchar(31) NOT NULL DEFAULT '',
  `state_license_number`  varchar(25) DEFAULT NULL,
  `weno_prov_id`          varchar(15) DEFAULT NULL,
  `newcrop_user_role`     varchar(30) DEFAULT NULL,
  `cpoe`                  tinyint(1) DEFAULT NULL,
  `physician_type`        varchar(50) DEFAULT NULL,
  `main_menu_role`        varchar(50) NOT NULL DEFAULT 'standard',
  `patient_menu_role`     varchar(50) NOT NULL DEFAULT 'standard',
  `portal_user`           tinyint(1) NOT NULL DEFAULT 0,
  `supervisor_id`         int(11) NOT NULL DEFAULT 0,
  `billing_facility`      text DEFAULT NULL,
  `billing_facility_id`   int(11) NOT NULL DEFAULT 0,
  `date_created`          datetime NOT NULL DEFAULT current_timestamp(),
  `last_updated`          datetime NOT NULL DEFAULT current_timestamp() ON UPDATE current_timestamp(),
  PRIMARY KEY (`id`),
  UNIQUE KEY `google_signin_email` (`google_signin_email`),
  UNIQUE KEY `uuid` (`uuid`),
  KEY `abook_type` (`abook_type`)
) ENGINE=InnoDB;

-- Login hash and lockout counters; id equals users.id (not auto-increment).
CREATE TABLE `users_secure` (
  `id`                        bigint(20) NOT NULL,
  `username`                  varchar(255) DEFAULT NULL,
  `password`                  varchar(255) DEFAULT NULL,
  `last_update_password`      datetime DEFAULT NULL,
  `last_update`               timestamp NOT NULL DEFAULT current_timestamp() ON UPDATE current_timestamp(),
  `password_history1`         varchar(255) DEFAULT NULL,
  `password_history2`         varchar(255) DEFAULT NULL,
  `password_history3`         varchar(255) DEFAULT NULL,
  `password_history4`         varchar(255) DEFAULT NULL,
  `last_challenge_response`   datetime DEFAULT NULL,
  `login_work_area`           text DEFAULT NULL,
  `total_login_fail_counter`  bigint(20) DEFAULT 0,
  `login_fail_counter`        int(11) DEFAULT 0,
  `last_login_fail`           datetime DEFAULT NULL,
  `auto_block_emailed`        tinyint(4) DEFAULT 0,
  PRIMARY KEY (`id`),
  UNIQUE KEY `USERNAME_ID` (`id`,`username`)
) ENGINE=InnoDB;

-- Auth group of each user (normally 'Default'); becomes groupname in forms/log.
CREATE TABLE `groups` (
  `id`    bigint(20) NOT NULL AUTO_INCREMENT,
  `name`  longtext DEFAULT NULL,
  `user`  longtext DEFAULT NULL,
  PRIMARY KEY (`id`)
) ENGINE=InnoDB;

-- Facilities (and warehouses) a user may work in when OpenEMR restricts users to facilities.
CREATE TABLE `users_facility` (
  `tablename`     varchar(64) NOT NULL,
  `table_id`      int(11) NOT NULL,
  `facility_id`   int(11) NOT NULL,
  `warehouse_id`  varchar(31) NOT NULL DEFAULT '',
  PRIMARY KEY (`tablename`,`table_id`,`facility_id`,`warehouse_id`)
) ENGINE=InnoDB;

-- Per-user settings; `gacl_protect` = '1' keeps a user in the Administrators group.
CREATE TABLE `user_settings` (
  `setting_user`   bigint(20) NOT NULL DEFAULT 0,
  `setting_label`  varchar(100) NOT NULL,
  `setting_value`  varchar(255) NOT NULL DEFAULT '',
  PRIMARY KEY (`setting_user`,`setting_label`)
) ENGINE=InnoDB;

-- Second factors (TOTP secrets in var1, encrypted with CryptoGen's drive keys; U2F registrations).
CREATE TABLE `login_mfa_registrations` (
  `user_id`         bigint(20)     NOT NULL,
  `name`            varchar(30)    NOT NULL,
  `last_challenge`  datetime       DEFAULT NULL,
  `method`          varchar(31)    NOT NULL,
  `var1`            varchar(4096)  NOT NULL DEFAULT '',
  `var2`            varchar(256)   NOT NULL DEFAULT '',
  PRIMARY KEY (`user_id`, `name`)
) ENGINE=InnoDB;

-- CryptoGen's database keys (base64 of 32 random bytes), which also wrap the site's drive keys.
CREATE TABLE `keys` (
  `id`     bigint(20)   NOT NULL AUTO_INCREMENT,
  `name`   varchar(20)  NOT NULL DEFAULT '',
  `value`  text,
  PRIMARY KEY (`id`),
  UNIQUE KEY `name` (`name`)
) ENGINE=InnoDB;
