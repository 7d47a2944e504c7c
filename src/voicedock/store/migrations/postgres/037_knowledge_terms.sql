-- How many chunks of each knowledge base hold each word (its English lexeme, as the chunks'
-- tsvector has it): a search ranks only the chunks that hold its rarer words, not every chunk a
-- common word reaches (store/sql/knowledge.py). Kept by the node as documents come and go.
CREATE TABLE knowledge_terms (
    knowledge_base_id TEXT NOT NULL REFERENCES knowledge_bases(id) ON DELETE CASCADE,
    lexeme TEXT NOT NULL,
    chunks INTEGER NOT NULL,
    PRIMARY KEY (knowledge_base_id, lexeme)
);
INSERT INTO knowledge_terms (knowledge_base_id, lexeme, chunks)
SELECT knowledge_base_id, lexeme, count(*)
FROM knowledge_chunks, unnest(tsvector_to_array(words)) AS lexeme
GROUP BY knowledge_base_id, lexeme;
