-- A million calendar events for the scheduling benchmark (benches/scheduling.rs).
--
-- Run inside a database already loaded from schema/ and openemr-fixtures/ (scripts/db.sh load):
--
--   mariadb --socket=DIR/mysqld.sock -uroot openemr < bench/generate-calendar.sql
--
-- Twelve providers: the two demo physicians (users 2 and 3) and ten more physicians (users 100-109,
-- for a 10-provider clinic at facility 3). Each gets In Office 08:00 / Lunch 12:00 / Out Of Office
-- 17:00 every work day from 2020 to 2030, as OpenEMR's calendar stores them (one repeating row
-- each), and 1,000,000 one-off patient appointments are spread over them, 2020-2030, on the
-- 15-minute grid of their office hours. Like OpenEMR's own calendar screen, nothing stops two of
-- them overlapping. Deterministic: the same run on the same fixtures gives the same rows.

SET @events := 1000000;
SET @days := DATEDIFF('2030-12-31', '2020-01-01') + 1;

INSERT INTO `users` (`id`, `username`, `password`, `authorized`, `fname`, `lname`, `facility_id`, `active`,
  `calendar`, `specialty`, `npi`)
SELECT 99 + s.seq, CONCAT('benchdoc', s.seq), 'NoLongerUsed', 1, 'Bench', CONCAT('Physician ', s.seq), 3, 1, 1,
  'Family Medicine', ''
FROM seq_1_to_10 s;

CREATE TEMPORARY TABLE `gen_providers` (`n` int NOT NULL PRIMARY KEY, `aid` int NOT NULL, `facility` int NOT NULL)
  ENGINE=MEMORY;
INSERT INTO `gen_providers` VALUES (0, 2, 3), (1, 3, 4);
INSERT INTO `gen_providers` SELECT 1 + s.seq, 99 + s.seq, 3 FROM seq_1_to_10 s;
SET @providers := (SELECT COUNT(*) FROM `gen_providers`);

INSERT INTO `openemr_postcalendar_events` (`pc_catid`, `pc_multiple`, `pc_aid`, `pc_pid`, `pc_gid`, `pc_title`,
  `pc_time`, `pc_hometext`, `pc_informant`, `pc_eventDate`, `pc_endDate`, `pc_duration`, `pc_recurrtype`,
  `pc_recurrspec`, `pc_recurrfreq`, `pc_startTime`, `pc_endTime`, `pc_alldayevent`, `pc_eventstatus`, `pc_sharing`,
  `pc_apptstatus`, `pc_prefcatid`, `pc_facility`, `pc_billing_location`, `pc_room`)
SELECT b.cat, 0, p.aid, '', 0, b.title, '2020-01-01 08:00:00', '', '1', '2020-01-01', '2030-12-31', b.dur, 1,
  'a:6:{s:17:"event_repeat_freq";s:1:"1";s:22:"event_repeat_freq_type";s:1:"4";s:19:"event_repeat_on_num";s:1:"1";s:19:"event_repeat_on_day";s:1:"0";s:20:"event_repeat_on_freq";s:1:"0";s:6:"exdate";s:0:"";}',
  0, b.st, ADDTIME(b.st, SEC_TO_TIME(b.dur)), 0, 1, 1, '-', 0, p.facility, 3, ''
FROM `gen_providers` p
JOIN (SELECT 2 AS cat, 'In Office' AS title, TIME '08:00:00' AS st, 0 AS dur
      UNION ALL SELECT 8, 'Lunch', TIME '12:00:00', 3600
      UNION ALL SELECT 3, 'Out Of Office', TIME '17:00:00', 0) b;

-- Appointment n: provider n mod 12, day (n div 12) mod days, one of the 32 office-hour slots.
INSERT INTO `openemr_postcalendar_events` (`pc_catid`, `pc_multiple`, `pc_aid`, `pc_pid`, `pc_gid`, `pc_title`,
  `pc_time`, `pc_hometext`, `pc_informant`, `pc_eventDate`, `pc_endDate`, `pc_duration`, `pc_recurrtype`,
  `pc_recurrspec`, `pc_recurrfreq`, `pc_startTime`, `pc_endTime`, `pc_alldayevent`, `pc_eventstatus`, `pc_sharing`,
  `pc_apptstatus`, `pc_prefcatid`, `pc_facility`, `pc_billing_location`, `pc_room`)
SELECT ELT(1 + g.seq % 3, 5, 9, 10), 0, p.aid, CAST(1 + CRC32(g.seq) % 220 AS CHAR), 0,
  ELT(1 + g.seq % 3, 'Office Visit', 'Established Patient', 'New Patient'), '2020-01-01 08:00:00', 'Bench visit', '1',
  DATE_ADD('2020-01-01', INTERVAL (g.seq DIV @providers) % @days DAY), NULL, IF(g.seq % 3 = 2, 1800, 900), 0,
  'a:6:{s:17:"event_repeat_freq";s:0:"";s:22:"event_repeat_freq_type";s:0:"";s:19:"event_repeat_on_num";s:1:"1";s:19:"event_repeat_on_day";s:1:"0";s:20:"event_repeat_on_freq";s:1:"0";s:6:"exdate";s:0:"";}',
  0, g.slot, ADDTIME(g.slot, SEC_TO_TIME(IF(g.seq % 3 = 2, 1800, 900))), 0, 1, 1,
  ELT(1 + CRC32(CONCAT('s', g.seq)) % 10, '-', '-', '-', '-', '*', '>', '>', 'x', '?', '@'), 0, p.facility, 3, ''
FROM (SELECT seq, MAKETIME(8 + (CRC32(seq) % 32 + IF(CRC32(seq) % 32 >= 16, 4, 0)) DIV 4,
             15 * ((CRC32(seq) % 32 + IF(CRC32(seq) % 32 >= 16, 4, 0)) % 4), 0) AS slot
      FROM seq_0_to_999999) g
JOIN `gen_providers` p ON p.n = g.seq % @providers;

ANALYZE TABLE `openemr_postcalendar_events`;
