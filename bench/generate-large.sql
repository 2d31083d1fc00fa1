-- Large OpenEMR-shaped dataset for the load benchmark (benches/api_load.rs).
--
-- Run inside a database already loaded from schema/ and openemr-fixtures/ (scripts/db.sh load):
--
--   mariadb --socket=DIR/mysqld.sock -uroot openemr < bench/generate-large.sql
--
-- Adds @patients (100,000; the load bench sets BENCH_PATIENTS) patients (patient_data + history_data +
-- uuid_registry) after the highest existing
-- pid, and 1,000,000 encounters (form_encounter + their `newpatient` forms rows + uuid_registry)
-- numbered on from the `sequences` counter, which is left at the last number handed out, as
-- OpenEMR's GenID leaves it. Needs MariaDB's SEQUENCE engine (seq_1_to_N tables, MariaDB >= 10.0).
--
-- Every choice is a deterministic function of the row number (CRC32 of a salted counter), so two
-- runs on the same fixtures produce the same data. uuids are v4-shaped, derived from MD5.
-- Nothing here touches the sidecar's mmt_ tables: the server indexes the new patients itself.

SET @patients := 100000;
SET @encounters := 1000000;

SET @pid0 := (SELECT COALESCE(MAX(`pid`), 0) FROM `patient_data`);
SET @fe0 := (SELECT COALESCE(MAX(`id`), 0) FROM `form_encounter`);
SET @enc0 := (SELECT GREATEST(COALESCE(MAX(`id`), 0), (SELECT COALESCE(MAX(`encounter`), 0) FROM `form_encounter`)) FROM `sequences`);

-- Name pools. Half female, half male names (same count each, so one modulus serves both);
-- accented and apostrophe forms as a US practice sees them; `ascii` feeds the e-mail address.
CREATE TEMPORARY TABLE `gen_first` (
  `g`      char(1)     NOT NULL,
  `n`      int         NOT NULL,
  `name`   varchar(64) NOT NULL,
  `ascii`  varchar(64) NOT NULL,
  PRIMARY KEY (`g`, `n`)
) ENGINE=MEMORY DEFAULT CHARSET=utf8mb4;

INSERT INTO `gen_first` (`g`, `n`, `name`, `ascii`) VALUES
  ('F', 1, 'Mary', 'mary'), ('F', 2, 'Patricia', 'patricia'), ('F', 3, 'Jennifer', 'jennifer'),
  ('F', 4, 'Linda', 'linda'), ('F', 5, 'Elizabeth', 'elizabeth'), ('F', 6, 'Barbara', 'barbara'),
  ('F', 7, 'Susan', 'susan'), ('F', 8, 'Jessica', 'jessica'), ('F', 9, 'Sarah', 'sarah'),
  ('F', 10, 'Karen', 'karen'), ('F', 11, 'Nancy', 'nancy'), ('F', 12, 'Lisa', 'lisa'),
  ('F', 13, 'Zoë', 'zoe'), ('F', 14, 'Chloé', 'chloe'), ('F', 15, 'Renée', 'renee'),
  ('F', 16, 'Siobhán', 'siobhan'), ('F', 17, 'Mónica', 'monica'), ('F', 18, 'Inés', 'ines'),
  ('F', 19, 'Thi Lan', 'thilan'), ('F', 20, 'Aaliyah', 'aaliyah'), ('F', 21, 'Mei', 'mei'),
  ('F', 22, 'Priya', 'priya'), ('F', 23, 'Fatima', 'fatima'), ('F', 24, 'Ngozi', 'ngozi'),
  ('F', 25, 'Anna', 'anna'), ('F', 26, 'Emily', 'emily'), ('F', 27, 'Olivia', 'olivia'),
  ('F', 28, 'Sophia', 'sophia'), ('F', 29, 'Camila', 'camila'), ('F', 30, 'Ximena', 'ximena'),
  ('F', 31, 'Małgorzata', 'malgorzata'), ('F', 32, 'Ingrid', 'ingrid'), ('F', 33, 'Astrid', 'astrid'),
  ('F', 34, 'Hélène', 'helene'), ('F', 35, 'Françoise', 'francoise'), ('F', 36, 'Léa', 'lea'),
  ('F', 37, 'Grace', 'grace'), ('F', 38, 'Hannah', 'hannah'), ('F', 39, 'Yuki', 'yuki'),
  ('F', 40, 'Ayşe', 'ayse'),
  ('M', 1, 'James', 'james'), ('M', 2, 'Robert', 'robert'), ('M', 3, 'John', 'john'),
  ('M', 4, 'Michael', 'michael'), ('M', 5, 'David', 'david'), ('M', 6, 'William', 'william'),
  ('M', 7, 'Richard', 'richard'), ('M', 8, 'Joseph', 'joseph'), ('M', 9, 'Thomas', 'thomas'),
  ('M', 10, 'Charles', 'charles'), ('M', 11, 'Daniel', 'daniel'), ('M', 12, 'Matthew', 'matthew'),
  ('M', 13, 'José', 'jose'), ('M', 14, 'Björn', 'bjorn'), ('M', 15, 'Seán', 'sean'),
  ('M', 16, 'Jürgen', 'jurgen'), ('M', 17, 'François', 'francois'), ('M', 18, 'Ángel', 'angel'),
  ('M', 19, 'Đức', 'duc'), ('M', 20, 'Chinedu', 'chinedu'), ('M', 21, 'Wei', 'wei'),
  ('M', 22, 'Arjun', 'arjun'), ('M', 23, 'Mohammed', 'mohammed'), ('M', 24, 'Oluwaseun', 'oluwaseun'),
  ('M', 25, 'Lucas', 'lucas'), ('M', 26, 'Ethan', 'ethan'), ('M', 27, 'Noah', 'noah'),
  ('M', 28, 'Liam', 'liam'), ('M', 29, 'Mateo', 'mateo'), ('M', 30, 'Santiago', 'santiago'),
  ('M', 31, 'Łukasz', 'lukasz'), ('M', 32, 'Søren', 'soren'), ('M', 33, 'Håkon', 'hakon'),
  ('M', 34, 'Rémi', 'remi'), ('M', 35, 'D''Andre', 'dandre'), ('M', 36, 'Tomáš', 'tomas'),
  ('M', 37, 'Kevin', 'kevin'), ('M', 38, 'Brian', 'brian'), ('M', 39, 'Hiroshi', 'hiroshi'),
  ('M', 40, 'Mehmet', 'mehmet');
SET @firsts := 40;

CREATE TEMPORARY TABLE `gen_last` (
  `n`      int         NOT NULL,
  `name`   varchar(64) NOT NULL,
  `ascii`  varchar(64) NOT NULL,
  PRIMARY KEY (`n`)
) ENGINE=MEMORY DEFAULT CHARSET=utf8mb4;

INSERT INTO `gen_last` (`n`, `name`, `ascii`) VALUES
  (1, 'Smith', 'smith'), (2, 'Johnson', 'johnson'), (3, 'Williams', 'williams'), (4, 'Brown', 'brown'),
  (5, 'Jones', 'jones'), (6, 'Miller', 'miller'), (7, 'Davis', 'davis'), (8, 'Wilson', 'wilson'),
  (9, 'Anderson', 'anderson'), (10, 'Taylor', 'taylor'), (11, 'Thomas', 'thomas'), (12, 'Moore', 'moore'),
  (13, 'Jackson', 'jackson'), (14, 'Martin', 'martin'), (15, 'Lee', 'lee'), (16, 'Thompson', 'thompson'),
  (17, 'White', 'white'), (18, 'Harris', 'harris'), (19, 'Clark', 'clark'), (20, 'Lewis', 'lewis'),
  (21, 'García', 'garcia'), (22, 'Martínez', 'martinez'), (23, 'Rodríguez', 'rodriguez'),
  (24, 'Hernández', 'hernandez'), (25, 'López', 'lopez'), (26, 'González', 'gonzalez'),
  (27, 'Pérez', 'perez'), (28, 'Sánchez', 'sanchez'), (29, 'Ramírez', 'ramirez'), (30, 'Muñoz', 'munoz'),
  (31, 'Peña', 'pena'), (32, 'Ibáñez', 'ibanez'), (33, 'O''Brien', 'obrien'), (34, 'O''Connor', 'oconnor'),
  (35, 'O''Neill', 'oneill'), (36, 'D''Angelo', 'dangelo'), (37, 'D''Souza', 'dsouza'),
  (38, 'Ó Súilleabháin', 'osuilleabhain'), (39, 'McDonald', 'mcdonald'), (40, 'MacLeod', 'macleod'),
  (41, 'Nguyễn', 'nguyen'), (42, 'Trần', 'tran'), (43, 'Lê', 'le'), (44, 'Phạm', 'pham'),
  (45, 'Kim', 'kim'), (46, 'Park', 'park'), (47, 'Chen', 'chen'), (48, 'Wang', 'wang'),
  (49, 'Zhang', 'zhang'), (50, 'Tanaka', 'tanaka'), (51, 'Patel', 'patel'), (52, 'Shah', 'shah'),
  (53, 'Okafor', 'okafor'), (54, 'Adeyemi', 'adeyemi'), (55, 'Mensah', 'mensah'),
  (56, 'Müller', 'muller'), (57, 'Schröder', 'schroder'), (58, 'Weiß', 'weiss'), (59, 'Köhler', 'kohler'),
  (60, 'Ångström', 'angstrom'), (61, 'Sørensen', 'sorensen'), (62, 'Lindqvist', 'lindqvist'),
  (63, 'Dubois', 'dubois'), (64, 'Lefèvre', 'lefevre'), (65, 'Bélanger', 'belanger'),
  (66, 'Côté', 'cote'), (67, 'Kowalski', 'kowalski'), (68, 'Wiśniewska', 'wisniewska'),
  (69, 'Dvořák', 'dvorak'), (70, 'Novák', 'novak'), (71, 'Öztürk', 'ozturk'), (72, 'Çelik', 'celik'),
  (73, 'Yılmaz', 'yilmaz'), (74, 'Haddad', 'haddad'), (75, 'Al-Sayed', 'alsayed'),
  (76, 'Rossi', 'rossi'), (77, 'Esposito', 'esposito'), (78, 'De la Cruz', 'delacruz'),
  (79, 'Van der Berg', 'vanderberg'), (80, 'St. John', 'stjohn');
SET @lasts := 80;

CREATE TEMPORARY TABLE `gen_city` (
  `n`       int          NOT NULL,
  `city`    varchar(64)  NOT NULL,
  `county`  varchar(64)  NOT NULL,
  `state`   char(2)      NOT NULL,
  `zip`     char(5)      NOT NULL,
  `area`    char(3)      NOT NULL,
  PRIMARY KEY (`n`)
) ENGINE=MEMORY DEFAULT CHARSET=utf8mb4;

INSERT INTO `gen_city` (`n`, `city`, `county`, `state`, `zip`, `area`) VALUES
  (1, 'Springfield', 'Sangamon', 'IL', '62701', '217'), (2, 'Chatham', 'Sangamon', 'IL', '62629', '217'),
  (3, 'Rochester', 'Sangamon', 'IL', '62563', '217'), (4, 'Decatur', 'Macon', 'IL', '62523', '217'),
  (5, 'Lincoln', 'Logan', 'IL', '62656', '217'), (6, 'Jacksonville', 'Morgan', 'IL', '62650', '217'),
  (7, 'Peoria', 'Peoria', 'IL', '61602', '309'), (8, 'Bloomington', 'McLean', 'IL', '61701', '309'),
  (9, 'Chicago', 'Cook', 'IL', '60614', '312'), (10, 'St. Louis', 'St. Louis City', 'MO', '63111', '314'),
  (11, 'Belleville', 'St. Clair', 'IL', '62220', '618'), (12, 'Champaign', 'Champaign', 'IL', '61820', '217');
SET @cities := 12;

-- ---------------------------------------------------------------- patients
-- r_* are independent pseudo-random numbers per patient. Registered 2012-2022, last changed up to
-- 900 days later (so before mid-2025), each at its own second: the sidecar's index sweep picks up
-- rows at or after the newest last_updated it has seen, and real charts rarely share one.
INSERT INTO `patient_data`
  (`pid`, `pubpid`, `uuid`, `title`, `language`, `fname`, `lname`, `mname`, `preferred_name`, `DOB`, `sex`,
   `street`, `street_line_2`, `postal_code`, `city`, `state`, `county`, `country_code`,
   `phone_home`, `phone_cell`, `phone_biz`, `email`, `status`, `race`, `ethnicity`, `providerID`,
   `hipaa_mail`, `hipaa_voice`, `hipaa_notice`, `hipaa_message`, `hipaa_allowsms`, `hipaa_allowemail`,
   `allow_patient_portal`, `regdate`, `date`, `last_updated`, `created_by`, `updated_by`)
SELECT
  p.`pid`,
  IF(p.r_pub % 10 = 0, CONCAT('RFH-', LPAD(p.`pid`, 6, '0')), CAST(p.`pid` AS CHAR)),
  UNHEX(CONCAT(SUBSTR(p.h, 1, 12), '4', SUBSTR(p.h, 14, 3),
               ELT(1 + CONV(SUBSTR(p.h, 17, 1), 16, 10) % 4, '8', '9', 'A', 'B'), SUBSTR(p.h, 18, 15))),
  CASE WHEN p.sex = 'Female' THEN ELT(1 + p.r_title % 3, 'Ms.', 'Mrs.', '')
       WHEN p.sex = 'Male' THEN ELT(1 + p.r_title % 2, 'Mr.', '') ELSE '' END,
  ELT(1 + p.r_lang % 10, 'English', 'English', 'English', 'English', 'English', 'English', 'English',
      'Spanish', 'Spanish', 'vietnamese'),
  f.`name`, l.`name`,
  ELT(1 + p.r_mid % 8, '', '', '', 'J', 'A', 'M', 'Lee', 'Marie'),
  IF(p.r_mid % 29 = 0, ELT(1 + p.r_title % 4, 'Bea', 'Tom', 'Lulu', 'Chip'), NULL),
  IF(p.r_dob % 500 = 0, NULL, DATE_SUB('2025-06-30', INTERVAL (p.r_dob % 36500) DAY)),
  p.sex,
  CONCAT(100 + p.r_street % 9900, ' ',
         ELT(1 + p.r_street % 12, 'Elm Court', 'Oak Avenue', 'Cedar Lane', 'Monroe Street', 'Maple Drive',
             'Lincoln Road', 'Washington Street', 'Pine Street', 'Lakeview Terrace', 'Walnut Street',
             'Chestnut Way', 'Prairie Avenue')),
  IF(p.r_street % 7 = 0, CONCAT('Apt ', 1 + p.r_street % 40), NULL),
  c.`zip`, c.`city`, c.`state`, c.`county`, 'USA',
  IF(p.r_phone % 4 = 0, '', CONCAT('(', c.`area`, ') 555-', LPAD(p.r_phone % 10000, 4, '0'))),
  IF(p.r_phone % 3 = 0, '', CONCAT('(', ELT(1 + p.r_cell % 5, '217', '309', '312', '314', '618'), ') 555-',
                                  LPAD(p.r_cell % 10000, 4, '0'))),
  '',
  IF(p.r_mail % 5 = 0, '', CONCAT(f.`ascii`, '.', l.`ascii`, p.`pid` % 1000, '@',
                                 ELT(1 + p.r_mail % 3, 'example.net', 'mail.example', 'example.com'))),
  ELT(1 + p.r_status % 6, 'married', 'single', 'divorced', 'widowed', 'separated', ''),
  ELT(1 + p.r_race % 6, 'white', 'black_or_afri_amer', 'Asian', 'amer_ind_or_alaska_native',
      'native_hawai_or_pac_island', 'decline_to_specify'),
  ELT(1 + p.r_race % 3, 'not_hisp_or_latin', 'hisp_or_latin', 'decline_to_specify'),
  ELT(1 + p.r_prov % 3, 2, 3, 8),
  ELT(1 + p.r_hipaa % 3, '', 'YES', 'NO'), ELT(1 + p.r_hipaa % 2, 'YES', ''), 'NO', '',
  ELT(1 + p.r_hipaa % 2, 'NO', 'YES'), ELT(1 + p.r_hipaa % 5, 'NO', 'YES', 'NO', 'YES', 'NO'),
  ELT(1 + p.r_hipaa % 2, 'YES', 'NO'),
  p.regdate,
  p.regdate + INTERVAL (p.r_upd % 900) DAY + INTERVAL (p.r_upd % 3600) SECOND,
  p.regdate + INTERVAL (p.r_upd % 900) DAY + INTERVAL (p.r_upd % 3600) SECOND,
  ELT(1 + p.r_prov % 3, 1, 5, 6), ELT(1 + p.r_prov % 3, 1, 5, 6)
FROM (
  SELECT
    s.`seq`,
    @pid0 + s.`seq` AS `pid`,
    MD5(CONCAT('patient-uuid-', s.`seq`)) AS h,
    CASE WHEN CRC32(CONCAT('sex', s.`seq`)) % 100 < 50 THEN 'Female'
         WHEN CRC32(CONCAT('sex', s.`seq`)) % 100 < 99 THEN 'Male' ELSE 'UNK' END AS sex,
    IF(CRC32(CONCAT('sex', s.`seq`)) % 100 < 50
       OR (CRC32(CONCAT('sex', s.`seq`)) % 100 >= 99 AND s.`seq` % 2 = 0), 'F', 'M') AS g,
    CRC32(CONCAT('first', s.`seq`)) AS r_first,
    CRC32(CONCAT('last', s.`seq`)) AS r_last,
    CRC32(CONCAT('city', s.`seq`)) AS r_city,
    CRC32(CONCAT('pub', s.`seq`)) AS r_pub,
    CRC32(CONCAT('title', s.`seq`)) AS r_title,
    CRC32(CONCAT('lang', s.`seq`)) AS r_lang,
    CRC32(CONCAT('mid', s.`seq`)) AS r_mid,
    CRC32(CONCAT('dob', s.`seq`)) AS r_dob,
    CRC32(CONCAT('street', s.`seq`)) AS r_street,
    CRC32(CONCAT('phone', s.`seq`)) AS r_phone,
    CRC32(CONCAT('cell', s.`seq`)) AS r_cell,
    CRC32(CONCAT('mail', s.`seq`)) AS r_mail,
    CRC32(CONCAT('status', s.`seq`)) AS r_status,
    CRC32(CONCAT('race', s.`seq`)) AS r_race,
    CRC32(CONCAT('prov', s.`seq`)) AS r_prov,
    CRC32(CONCAT('hipaa', s.`seq`)) AS r_hipaa,
    CRC32(CONCAT('upd', s.`seq`)) AS r_upd,
    '2012-01-01 08:00:00' + INTERVAL (CRC32(CONCAT('reg', s.`seq`)) % (11 * 365 * 86400)) SECOND AS regdate
  FROM `seq_1_to_10000000` s
  WHERE s.`seq` <= @patients
) p
JOIN `gen_first` f ON f.`g` = p.g AND f.`n` = 1 + p.r_first % @firsts
JOIN `gen_last` l ON l.`n` = 1 + p.r_last % @lasts
JOIN `gen_city` c ON c.`n` = 1 + p.r_city % @cities;

-- One history_data row per patient, as OpenEMR's new-patient screen creates.
INSERT INTO `history_data` (`uuid`, `pid`, `date`, `created_by`)
SELECT
  UNHEX(CONCAT(SUBSTR(h.h, 1, 12), '4', SUBSTR(h.h, 14, 3), 'A', SUBSTR(h.h, 18, 15))),
  h.`pid`, h.regdate, h.created_by
FROM (
  SELECT pd.`pid`, pd.`regdate`, pd.`created_by`, MD5(CONCAT('history-uuid-', pd.`pid`)) AS h
  FROM `patient_data` pd WHERE pd.`pid` > @pid0
) h;

INSERT INTO `uuid_registry` (`uuid`, `table_name`, `table_id`, `table_vertical`, `couchdb`, `document_drive`, `mapped`, `created`)
SELECT pd.`uuid`, 'patient_data', 'id', '', '', 0, 0, pd.`regdate` FROM `patient_data` pd WHERE pd.`pid` > @pid0;

-- ---------------------------------------------------------------- encounters
-- Encounter numbers continue the GenID counter in date order (ten years, about 275 a day, clinic
-- hours in 15-minute slots). A fifth of the visits belong to the first 5,000 new patients (the
-- chronically ill, ~45 visits each); the rest are spread evenly (~8 each).
INSERT INTO `form_encounter`
  (`id`, `uuid`, `date`, `reason`, `facility`, `facility_id`, `pid`, `encounter`, `onset_date`, `sensitivity`,
   `pc_catid`, `provider_id`, `billing_facility`, `pos_code`, `class_code`, `referral_source`, `external_id`,
   `last_update`)
SELECT
  @fe0 + e.`seq`,
  UNHEX(CONCAT(SUBSTR(e.h, 1, 12), '4', SUBSTR(e.h, 14, 3),
               ELT(1 + CONV(SUBSTR(e.h, 17, 1), 16, 10) % 4, '8', '9', 'A', 'B'), SUBSTR(e.h, 18, 15))),
  e.`date`,
  ELT(1 + e.r_reason % 16, 'Annual physical', 'Follow-up: hypertension', 'Follow-up: type 2 diabetes',
      'Upper respiratory infection', 'Low back pain', 'Headache', 'Ear pain', 'Well-child visit',
      'Medication refill', 'Fatigue, review lab results', 'Follow-up: asthma', 'Pre-operative evaluation',
      'Smoking cessation counseling', 'Insomnia', 'Rash', 'Knee pain after fall'),
  fa.`name`, fa.`id`, e.`pid`, e.`encounter`,
  IF(e.r_reason % 4 = 0, e.`date`, NULL),
  'normal', 5,
  IF(e.r_prov % 10 < 7, pd.`providerID`, ELT(1 + e.r_prov % 3, 2, 3, 8)),
  3, fa.`pos_code`, 'AMB', '', NULL,
  e.`date`
FROM (
  SELECT
    s.`seq`,
    @enc0 + s.`seq` AS `encounter`,
    MD5(CONCAT('encounter-uuid-', s.`seq`)) AS h,
    IF(CRC32(CONCAT('chronic', s.`seq`)) % 5 = 0,
       @pid0 + 1 + CRC32(CONCAT('pid', s.`seq`)) % 5000,
       @pid0 + 1 + CRC32(CONCAT('pid', s.`seq`)) % @patients) AS `pid`,
    '2016-01-04' + INTERVAL (s.`seq` * 3650 DIV @encounters) DAY
      + INTERVAL (8 * 60 + 15 * (CRC32(CONCAT('slot', s.`seq`)) % 36)) MINUTE AS `date`,
    CRC32(CONCAT('reason', s.`seq`)) AS r_reason,
    CRC32(CONCAT('prov', s.`seq`)) AS r_prov,
    3 + CRC32(CONCAT('facility', s.`seq`)) % 3 AS facility_id
  FROM `seq_1_to_10000000` s
  WHERE s.`seq` <= @encounters
) e
JOIN `patient_data` pd ON pd.`pid` = e.`pid`
JOIN `facility` fa ON fa.`id` = e.facility_id;

INSERT INTO `forms`
  (`date`, `encounter`, `form_name`, `form_id`, `pid`, `user`, `groupname`, `authorized`, `deleted`, `formdir`, `provider_id`)
SELECT fe.`date`, fe.`encounter`, 'New Patient Encounter', fe.`id`, fe.`pid`, u.`username`, 'Default', 1, 0,
       'newpatient', fe.`provider_id`
FROM `form_encounter` fe
JOIN `users` u ON u.`id` = fe.`provider_id`
WHERE fe.`id` > @fe0
ORDER BY fe.`id`;

INSERT INTO `uuid_registry` (`uuid`, `table_name`, `table_id`, `table_vertical`, `couchdb`, `document_drive`, `mapped`, `created`)
SELECT fe.`uuid`, 'form_encounter', 'id', '', '', 0, 0, fe.`date` FROM `form_encounter` fe WHERE fe.`id` > @fe0;

-- sequences holds the last number GenID handed out.
UPDATE `sequences` SET `id` = @enc0 + @encounters;

DROP TEMPORARY TABLE `gen_first`, `gen_last`, `gen_city`;

SELECT
  (SELECT COUNT(*) FROM `patient_data`) AS patients,
  (SELECT COUNT(*) FROM `form_encounter`) AS encounters,
  (SELECT COUNT(*) FROM `forms` WHERE `formdir` = 'newpatient') AS newpatient_forms,
  (SELECT `id` FROM `sequences`) AS sequences_id,
  (SELECT MAX(`encounter`) FROM `form_encounter`) AS max_encounter;
