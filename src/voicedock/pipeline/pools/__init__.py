"""What a node shares across its calls, whatever speaks or hears on them.

worker_pool.py      blocking speech work off the event loop: bounded, by priority
synthesis_cache.py  finished sentence audio, by organization, voice and text
provider_health.py  one circuit breaker per speech provider endpoint
"""
