"""Call audio over RTP (RFC 3550) on UDP: ARI ``externalMedia`` with ``encapsulation=rtp``, which
every Asterisk from 16.6 has (``chan_rtp``'s UnicastRTP channel)."""
