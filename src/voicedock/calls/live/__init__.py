"""A live call: the conversation on one call's media, its dialogue settings and speech
providers, and the record it hands to the engine."""
