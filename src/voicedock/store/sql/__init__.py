"""The SQL both backends share: the statements of the records, campaigns, dial admission,
the webhook outbox and usage, the rows they map to, and the session they run on."""
