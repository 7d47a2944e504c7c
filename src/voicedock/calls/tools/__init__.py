"""An assistant's tools: their configuration, the organization's tool templates, and how
a call carries them out."""
