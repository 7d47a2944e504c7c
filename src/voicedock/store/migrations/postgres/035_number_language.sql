-- The language inbound calls to a number open in (a BCP 47 primary tag; NULL: the caller's
-- number says, by the assistant's languages).
ALTER TABLE phone_numbers ADD COLUMN language TEXT;
