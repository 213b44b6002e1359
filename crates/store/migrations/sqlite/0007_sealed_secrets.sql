-- Secrets at rest (issue #16), sqlite. Keep in step with ../mysql/0007_sealed_secrets.sql.
-- Nothing to change here: SQLite TEXT columns have no length limit, so the sealed values
-- fit as they are. The migration exists so both dialects keep the same version list.

SELECT 1;
