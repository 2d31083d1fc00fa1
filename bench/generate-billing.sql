-- Billing benchmark data (benches/billing.rs), on top of schema/ + openemr-fixtures/: patient 1 with
-- 200 coded visits, and 20,000 more across the other demo patients, each visit coded as the fee sheet
-- codes it (a diagnosis, 99213 at 50.00, 36415 at 12.50); every other visit paid in full at the front
-- desk (an ar_session with two PP lines). Needs MariaDB's SEQUENCE engine.

SET @fe0 := (SELECT COALESCE(MAX(`id`), 0) FROM `form_encounter`);
SET @enc0 := (SELECT GREATEST(COALESCE(MAX(`id`), 0), (SELECT COALESCE(MAX(`encounter`), 0) FROM `form_encounter`))
              FROM `sequences`);

INSERT INTO `form_encounter` (`id`, `date`, `reason`, `facility`, `facility_id`, `pid`, `encounter`, `sensitivity`,
  `pc_catid`, `provider_id`, `billing_facility`, `pos_code`, `class_code`, `referral_source`)
SELECT @fe0 + s.`seq`, '2021-01-04 09:00:00' + INTERVAL (s.`seq` % 1800) DAY, 'Follow-up', 'Riverside Family Health', 3,
  IF(s.`seq` <= 200, 1, 2 + s.`seq` % 219), @enc0 + s.`seq`, 'normal', 5, 2, 3, 11, 'AMB', ''
FROM `seq_1_to_20200` s;

UPDATE `sequences` SET `id` = @enc0 + 20200;

INSERT INTO `billing` (`date`, `code_type`, `code`, `pid`, `provider_id`, `user`, `groupname`, `authorized`,
  `encounter`, `code_text`, `billed`, `activity`, `bill_process`, `modifier`, `units`, `fee`, `justify`, `ndc_info`,
  `notecodes`, `pricelevel`, `revenue_code`)
SELECT fe.`date`, c.`code_type`, c.`code`, fe.`pid`, 2, 2, 'Default', 1, fe.`encounter`, c.`text`, 0, 1, 0, '', 1,
  c.`fee`, c.`justify`, '', '', c.`level`, ''
FROM `form_encounter` fe
JOIN (SELECT 'ICD10' AS `code_type`, 'I10' AS `code`, 'Essential (primary) hypertension' AS `text`, 0.00 AS `fee`,
             '' AS `justify`, '' AS `level`
      UNION ALL SELECT 'CPT4', '99213', 'Office visit, established patient, low complexity', 50.00, 'ICD10|I10:',
             'standard'
      UNION ALL SELECT 'CPT4', '36415', 'Routine venipuncture', 12.50, 'ICD10|I10:', 'standard') c
WHERE fe.`encounter` > @enc0;

INSERT INTO `ar_session` (`payer_id`, `user_id`, `closed`, `reference`, `check_date`, `deposit_date`, `pay_total`,
  `modified_time`, `global_amount`, `payment_type`, `description`, `adjustment_code`, `post_to_date`, `patient_id`,
  `payment_method`)
SELECT 0, 7, 0, CONCAT('bench-', fe.`encounter`), DATE(fe.`date`), DATE(fe.`date`), 62.50, fe.`date`, 0, 'patient',
  'bench', 'patient_payment', DATE(fe.`date`), fe.`pid`, 'cash'
FROM `form_encounter` fe
WHERE fe.`encounter` > @enc0 AND fe.`encounter` % 2 = 0;

INSERT INTO `ar_activity` (`pid`, `encounter`, `sequence_no`, `code_type`, `code`, `modifier`, `payer_type`,
  `post_time`, `post_user`, `session_id`, `memo`, `pay_amount`, `adj_amount`, `modified_time`, `follow_up`,
  `account_code`)
SELECT s.`patient_id`, CAST(SUBSTRING(s.`reference`, 7) AS UNSIGNED), l.`n`, 'CPT4', l.`code`, '', 0,
  s.`modified_time`, 7, s.`session_id`, '', l.`amount`, 0, s.`modified_time`, '', 'PP'
FROM `ar_session` s
JOIN (SELECT 1 AS `n`, '36415' AS `code`, 12.50 AS `amount` UNION ALL SELECT 2, '99213', 50.00) l
WHERE s.`reference` LIKE 'bench-%';
