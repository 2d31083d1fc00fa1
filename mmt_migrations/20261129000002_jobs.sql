-- Durable background jobs, claimed by exactly one worker on any replica (FOR UPDATE SKIP LOCKED plus a
-- lease, so the job of a worker that died is taken up again once its lease lapses). Times are UTC.
-- Payloads and errors carry ids and error classes, not PHI.
CREATE TABLE IF NOT EXISTS mmt_jobs (
    id                  BINARY(16)       NOT NULL COMMENT 'uuid v7',
    kind                VARCHAR(64)      NOT NULL COMMENT 'housekeeping, webhook.deliver, ...',
    payload             LONGTEXT         NOT NULL COMMENT 'JSON: ids, never PHI itself',
    state               ENUM('queued', 'running', 'succeeded', 'failed', 'cancelled') NOT NULL,
    attempts            INT UNSIGNED     NOT NULL DEFAULT 0 COMMENT 'claims so far',
    max_attempts        INT UNSIGNED     NOT NULL,
    run_at              DATETIME(3)      NOT NULL COMMENT 'not claimed before this',
    lease_owner         BINARY(16)       NULL COMMENT 'random per claim; every later write of the claim names it',
    lease_expires_at    DATETIME(3)      NULL COMMENT 'a running job whose lease lapsed may be claimed again',
    cancel_requested    BOOLEAN          NOT NULL DEFAULT FALSE,
    progress            TINYINT UNSIGNED NOT NULL DEFAULT 0 COMMENT '0-100',
    progress_message    VARCHAR(255)     NOT NULL DEFAULT '',
    result              LONGTEXT         NULL COMMENT 'JSON',
    error               TEXT             NULL COMMENT 'the last failure: class and message written by the handler',
    queued_by           BIGINT           NULL COMMENT 'OpenEMR users.id; NULL for scheduled jobs',
    patient_id          BIGINT           NULL COMMENT 'OpenEMR patient_data.pid the job concerns',
    created_at          DATETIME(3)      NOT NULL,
    updated_at          DATETIME(3)      NOT NULL,
    finished_at         DATETIME(3)      NULL,
    PRIMARY KEY (id),
    KEY mmt_jobs_due (state, run_at),
    KEY mmt_jobs_lease (state, lease_expires_at),
    KEY mmt_jobs_finished (finished_at)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;

-- Periodic jobs: the replica whose UPDATE moves next_run_at on owns that period and enqueues its job.
CREATE TABLE IF NOT EXISTS mmt_job_schedules (
    name                VARCHAR(64)      NOT NULL COMMENT 'the job kind it enqueues',
    every_secs          INT UNSIGNED     NOT NULL,
    next_run_at         DATETIME(3)      NOT NULL COMMENT 'UTC',
    PRIMARY KEY (name)
) ENGINE = InnoDB DEFAULT CHARSET = utf8mb4;
