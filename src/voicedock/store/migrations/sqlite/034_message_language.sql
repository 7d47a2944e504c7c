-- The language a message was said in, as the call followed the caller (a BCP 47 primary tag;
-- NULL: the assistant lists no languages).
ALTER TABLE call_messages ADD COLUMN language TEXT;
