-- Organizations' knowledge bases: documents read once, cut into chunks (each with its vector where
-- an embeddings endpoint gave one, and the model that gave it on its document), the chunks indexed for
-- full-text search (FTS5, a contentless index kept by the triggers below).
CREATE TABLE knowledge_bases (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    description TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX knowledge_bases_org ON knowledge_bases (organization_id, created_at);
CREATE TABLE knowledge_documents (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    knowledge_base_id TEXT NOT NULL REFERENCES knowledge_bases(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size_bytes INTEGER NOT NULL,
    characters INTEGER NOT NULL,
    chunks INTEGER NOT NULL,
    embedding_model TEXT,
    created_at TEXT NOT NULL
);
CREATE INDEX knowledge_documents_base ON knowledge_documents (knowledge_base_id, created_at);
CREATE INDEX knowledge_documents_org ON knowledge_documents (organization_id);
CREATE TABLE knowledge_chunks (
    id INTEGER PRIMARY KEY,
    organization_id TEXT NOT NULL,
    knowledge_base_id TEXT NOT NULL,
    document_id TEXT NOT NULL REFERENCES knowledge_documents(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    text TEXT NOT NULL,
    embedding BLOB
);
CREATE INDEX knowledge_chunks_document ON knowledge_chunks (document_id, position);
CREATE INDEX knowledge_chunks_org ON knowledge_chunks (organization_id);
-- The full-text index holds no text of its own (contentless: a search joins the chunks by rowid);
-- beside each chunk's words, its base as one token ("b" and the base id's hex), so that a search
-- matches only the bases it names.
CREATE VIRTUAL TABLE knowledge_chunks_fts USING fts5(
    text, scope, content='', tokenize='porter unicode61'
);
CREATE TRIGGER knowledge_chunks_indexed AFTER INSERT ON knowledge_chunks BEGIN
    INSERT INTO knowledge_chunks_fts (rowid, text, scope)
    VALUES (new.id, new.text, 'b' || hex(new.knowledge_base_id));
END;
CREATE TRIGGER knowledge_chunks_unindexed AFTER DELETE ON knowledge_chunks BEGIN
    INSERT INTO knowledge_chunks_fts (knowledge_chunks_fts, rowid, text, scope)
    VALUES ('delete', old.id, old.text, 'b' || hex(old.knowledge_base_id));
END;
-- knowledge_embeddings: the organization's own OpenAI-compatible embeddings endpoint for its
-- knowledge bases, {"url": ..., "model": ..., "api_key_ref": ...} (the name of one of its
-- provider keys, never the key; docs/knowledge.md). NULL: the operator's.
ALTER TABLE organizations ADD COLUMN knowledge_embeddings TEXT;
