-- Notifications about more than messages: what each one is about (a message, a transcription, an
-- appointment, a job) and its id. `message_id` stays for message notifications.
ALTER TABLE mmt_notifications
    ADD COLUMN subject    VARCHAR(32) NOT NULL DEFAULT 'message' COMMENT 'message, transcription, appointment or job',
    ADD COLUMN subject_id VARCHAR(64) NULL COMMENT 'pnotes.id, mmt_transcriptions.id, pc_eid or mmt_jobs.id';
UPDATE mmt_notifications SET subject_id = CAST(message_id AS CHAR) WHERE message_id IS NOT NULL;
