-- Organizations' knowledge bases: documents read once, cut into chunks, the chunks indexed for
-- full-text search (FTS5, an external-content index kept by the triggers below).
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
    text TEXT NOT NULL
);
CREATE INDEX knowledge_chunks_document ON knowledge_chunks (document_id, position);
CREATE INDEX knowledge_chunks_org ON knowledge_chunks (organization_id);
CREATE VIRTUAL TABLE knowledge_chunks_fts USING fts5(
    text, content='knowledge_chunks', content_rowid='id', tokenize='porter unicode61'
);
CREATE TRIGGER knowledge_chunks_indexed AFTER INSERT ON knowledge_chunks BEGIN
    INSERT INTO knowledge_chunks_fts (rowid, text) VALUES (new.id, new.text);
END;
CREATE TRIGGER knowledge_chunks_unindexed AFTER DELETE ON knowledge_chunks BEGIN
    INSERT INTO knowledge_chunks_fts (knowledge_chunks_fts, rowid, text)
    VALUES ('delete', old.id, old.text);
END;
