-- Organizations' knowledge bases: documents read once, cut into chunks (each with its vector where
-- an embeddings endpoint gave one, and the model that gave it on its document), the chunks indexed for
-- full-text search (a generated tsvector under a GIN index).
CREATE TABLE knowledge_bases (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    description TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX knowledge_bases_org ON knowledge_bases (organization_id, created_at);
CREATE TABLE knowledge_documents (
    id TEXT PRIMARY KEY,
    organization_id TEXT NOT NULL REFERENCES organizations(id) ON DELETE CASCADE,
    knowledge_base_id TEXT NOT NULL REFERENCES knowledge_bases(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    content_type TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    characters BIGINT NOT NULL,
    chunks INTEGER NOT NULL,
    embedding_model TEXT,
    created_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX knowledge_documents_base ON knowledge_documents (knowledge_base_id, created_at);
CREATE INDEX knowledge_documents_org ON knowledge_documents (organization_id);
CREATE TABLE knowledge_chunks (
    id BIGSERIAL PRIMARY KEY,
    organization_id TEXT NOT NULL,
    knowledge_base_id TEXT NOT NULL,
    document_id TEXT NOT NULL REFERENCES knowledge_documents(id) ON DELETE CASCADE,
    position INTEGER NOT NULL,
    text TEXT NOT NULL,
    embedding BYTEA,
    words TSVECTOR GENERATED ALWAYS AS (to_tsvector('english', text)) STORED
);
CREATE INDEX knowledge_chunks_document ON knowledge_chunks (document_id, position);
CREATE INDEX knowledge_chunks_org ON knowledge_chunks (organization_id);
CREATE INDEX knowledge_chunks_words ON knowledge_chunks USING GIN (words);
-- knowledge_embeddings: the organization's own OpenAI-compatible embeddings endpoint for its
-- knowledge bases, {"url": ..., "model": ..., "api_key_ref": ...} (the name of one of its
-- provider keys, never the key; docs/knowledge.md). NULL: the operator's.
ALTER TABLE organizations ADD COLUMN knowledge_embeddings JSONB;
