-- vocabulary: the organization's keyterms and pronunciations for every call of its
-- assistants, {"keyterms": [...], "pronunciations": [...]} (docs/speech.md). NULL: none.
ALTER TABLE organizations ADD COLUMN vocabulary JSONB;
