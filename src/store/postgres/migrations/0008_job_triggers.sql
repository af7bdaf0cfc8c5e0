-- Triggers live in the job row, so whichever replica claims the job serves
-- them and a caller that goes away cancels nothing.
-- trigger_seq counts the triggers recorded (sync now, reset). A claim
-- takes every trigger recorded so far (claimed_seq = trigger_seq) and says
-- what it serves in claimed_trigger (reset, manual, ..., or schedule); a
-- trigger recorded while the attempt runs is pending again
-- (trigger_seq > claimed_seq), so the job runs once more after it.
-- served_seq is the claimed_seq of the last attempt that wrote its
-- outcome: a caller waits until served_seq reaches its trigger.
-- reset_seq is the trigger_seq of the last reset asked for; a claim pulls
-- everything again while reset_seq > served_seq.
-- trigger_reason says what recorded the pending trigger; triggered_at
-- (since the first migration) when.
-- last_run_id is the run the last attempt recorded (0: none), so a caller
-- waiting on another replica finds it.
ALTER TABLE sync_jobs ADD COLUMN trigger_seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sync_jobs ADD COLUMN claimed_seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sync_jobs ADD COLUMN served_seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sync_jobs ADD COLUMN reset_seq BIGINT NOT NULL DEFAULT 0;
ALTER TABLE sync_jobs ADD COLUMN trigger_reason TEXT NOT NULL DEFAULT '';
ALTER TABLE sync_jobs ADD COLUMN claimed_trigger TEXT NOT NULL DEFAULT '';
ALTER TABLE sync_jobs ADD COLUMN last_run_id BIGINT NOT NULL DEFAULT 0;
