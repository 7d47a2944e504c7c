"""Asterisk: ARI and AMI clients, media legs, transfers, doctor."""
