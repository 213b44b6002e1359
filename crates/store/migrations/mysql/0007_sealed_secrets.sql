-- Secrets at rest (issue #16), mysql. Keep in step with ../sqlite/0007_sealed_secrets.sql.
-- SNMP secrets are stored sealed (`enc:v1:<key id>:<base64 nonce, ciphertext, tag>`, about
-- 4/3 of the plaintext plus 54 characters): LibreNMS's VARCHAR(64) authpass/cryptopass
-- cannot hold a sealed 12-character password. 512 holds a sealed 255-character value.
-- Re-runnable: MODIFY to the same definition changes nothing.

ALTER TABLE devices
    MODIFY community VARCHAR(512) NULL,
    MODIFY authpass VARCHAR(512) NULL,
    MODIFY cryptopass VARCHAR(512) NULL;
