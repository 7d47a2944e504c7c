-- Several PBX servers ([[pbx.asterisk.servers]]): each trunk names the server that carries it,
-- and each call the server it lives on, so that its commands and a restart's recovery reach
-- that server. Empty / NULL: the only PBX (every row from before this migration).
ALTER TABLE trunks ADD COLUMN pbx TEXT NOT NULL DEFAULT '';
ALTER TABLE calls ADD COLUMN pbx TEXT;
