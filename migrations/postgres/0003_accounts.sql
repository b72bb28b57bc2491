-- Accounts (SPEC §9): names are unique (the iHome profile page relies on
-- it), and a user may record a real name and a mainland ID number — the
-- number only encrypted under the server secret, beside its masked form.
UPDATE users SET name = name || '-' || id
 WHERE id NOT IN (SELECT MIN(id) FROM users GROUP BY name);
ALTER TABLE users ADD CONSTRAINT users_name_key UNIQUE (name);
ALTER TABLE users ADD COLUMN real_name      TEXT;
ALTER TABLE users ADD COLUMN id_card_sealed TEXT;
ALTER TABLE users ADD COLUMN id_card_masked TEXT;
