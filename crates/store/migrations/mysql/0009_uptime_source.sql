-- Where devices.uptime came from (issue #16), mysql. Keep in step with
-- ../sqlite/0009_uptime_source.sql (comments there). Re-runnable: IF NOT EXISTS.
ALTER TABLE devices ADD COLUMN IF NOT EXISTS uptime_source VARCHAR(16) NULL;
