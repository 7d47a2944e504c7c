-- Call recordings and answering-machine detection. recording_path: the call's file under this
-- node's [recordings] directory (NULL: not recorded); recording_duration_seconds: its length.
-- answering_machine: the detection's result (human / machine / unknown) and its evidence.
ALTER TABLE calls ADD COLUMN recording_path TEXT;
ALTER TABLE calls ADD COLUMN recording_duration_seconds REAL;
ALTER TABLE calls ADD COLUMN answering_machine TEXT;
