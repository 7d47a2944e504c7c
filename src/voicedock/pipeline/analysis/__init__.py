"""What is read from a call by a model outside the conversation, and checked.

post_call.py      the end-of-call analysis: summary, sentiment, structured data, success
llm_answer.py     one whole answer of a language model, read up to a bound
schema_checks.py  a model's structured data checked against the organization's JSON Schema,
                  in worker processes killed at a deadline
schema_worker.py  one such worker process
"""
