-- Where devices.uptime came from (issue #16): 'hrSystemUptime' (the host's uptime, which an
-- agent restart does not reset) when the agent has it, else 'sysUpTime'. Keep in step with
-- ../mysql/0009_uptime_source.sql.
ALTER TABLE devices ADD COLUMN uptime_source TEXT NULL;
