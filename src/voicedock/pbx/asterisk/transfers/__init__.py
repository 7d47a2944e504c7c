"""Native transfers on Asterisk: the adapter's transfers (blind, and the warm entry), one
warm transfer attempt, and where a target lives in the transfers context (with the
transfer settings)."""
