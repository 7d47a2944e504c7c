-- The operator's do-not-call list (docs/compliance.md): entries every organization's calls
-- pass, each a number (E.164) or a range ("+1900*": every number starting with it). An
-- organization's own entries stay in do_not_call, which now takes ranges too.
CREATE TABLE operator_do_not_call (
    entry TEXT PRIMARY KEY,
    created_at TIMESTAMPTZ NOT NULL
);
-- An organization's own calling hours ("HH:MM-HH:MM"), narrowing the operator's; NULL: none.
ALTER TABLE organizations ADD COLUMN calling_hours TEXT;
