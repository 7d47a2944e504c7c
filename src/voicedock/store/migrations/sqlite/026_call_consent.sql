-- consent: the assistant's consent plan's outcome, {"mode", "outcome", "at"} (outcome:
-- announced / accepted / refused / no_answer). NULL: no plan, or calls before this version.
ALTER TABLE calls ADD COLUMN consent TEXT;
