"""How long a knowledge-base search takes a live turn: ``knowledge/search.py``'s ``search``
(the query read into its words, the store's full-text search, limit 3) over an organization's
knowledge base of ``--chunks`` chunks, on SQLite (FTS5) and PostgreSQL (tsvector under GIN).
The issue's target: retrieval's own time at most 20 ms p95 at 10,000 chunks.

The text is made here, seeded, nothing downloaded: FAQ-like paragraphs of 500-900 characters
(a question, then its answer), words drawn from a vocabulary of ``--vocabulary`` made-up words
with a Zipf-like distribution (the commonest words in most paragraphs, the rarest in a few)
among English function words; each document's text cut by ``chunk_text`` as an upload is (one
paragraph a chunk), inserted through ``insert_knowledge_document``. A second organization holds
as many chunks of the same vocabulary, so that every search must keep to its organization.

Caller-like questions of 5-15 words from the same vocabulary (mostly common words, a rare one
in a quarter of them, one in twenty about words the base does not hold) are timed with the
search's own clock (``Found.took_ms``, a turn's ``retrieval_ms``) after a warm-up, all of them
one after the other. The baseline, in the same run on the same database just after: the same
words found without the index, a plain scan (``text LIKE '%word%' OR ...`` over the
organization's base through the store's own connections, ``ILIKE`` on PostgreSQL) ranked in
Python by the words each chunk holds, for every ``--scan-every``-th query; each scan is
followed by the search of the same query again ("right after a scan": what a large read of the
same database just before does to the search). The scale: the same search over a base of 1,000
chunks (``--small``). PostgreSQL is a private server started
for the run (``tests/pg_server.py``) unless ``--postgres-url`` names one on which the bench may
create and drop its databases; its tables are analyzed after the load, as autovacuum would.

    .venv/bin/python bench/knowledge_search.py [--chunks 10000] [--queries 500]
        [--backends sqlite,postgres] [--postgres-url URL] [--write]
"""

from __future__ import annotations

import argparse
import asyncio
import bisect
import datetime as dt
import itertools
import os
import platform
import random
import re
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

from report import publish  # noqa: E402

from pg_server import PostgresUnavailable, fresh_database, start_postgres  # noqa: E402
from store.builders import seed_org  # noqa: E402
from voicedock.domain.knowledge import (  # noqa: E402
    DEFAULT_CHUNKS_PER_SEARCH,
    KnowledgeBase,
    KnowledgeChunk,
    KnowledgeDocument,
)
from voicedock.knowledge.chunks import chunk_text  # noqa: E402
from voicedock.knowledge.embeddings import Embeddings, fixed_endpoint  # noqa: E402
from voicedock.knowledge.search import KnowledgeSearch, query_words  # noqa: E402
from voicedock.store import Store, open_store  # noqa: E402
from voicedock.store.sql import knowledge as sql_knowledge  # noqa: E402
from voicedock.store.sql.conn import marks  # noqa: E402

# English function words around the made-up ones, commonest first (said with a Zipf law of
# their own: "the" often, "most" rarely); search.py leaves most of them out, not all.
_FUNCTION_WORDS = (
    "the of and to a in is you that it for was on are as with be at this from or by not but "
    "what all were we when your can there an which if do will each how them then some so these "
    "would more could no than been its who my did where most also any those here does why our"
)
FUNCTION_WORDS = _FUNCTION_WORDS.split()
FUNCTION_SHARE = 0.4  # of a sentence's words
ZIPF = 1.0
ZIPF_OFFSET = 10  # Zipf-Mandelbrot: the commonest word in about half the chunks
_ONSETS = "b c d f g h j k l m n p r s t v w y z br cl cr dr fl gr pl pr sh sl st th tr"
ONSETS = _ONSETS.split()
_NUCLEI = "a e i o u ai ea ee oo ou ie oa"
NUCLEI = _NUCLEI.split()
CODAS = ["", "", "", "n", "r", "s", "t", "l", "m", "nd", "st", "ck", "ng", "rt", "x"]
QUESTION_OPENERS = (
    "how do i",
    "can you tell me",
    "what is",
    "is there",
    "do you have",
    "when can i",
    "where do i find",
    "i would like to know about",
)
WORD = re.compile(r"[^\W_]+")  # as search.py reads words
BUCKETS = ((0.0, 0.1), (0.1, 0.5), (0.5, 0.9), (0.9, 1.01))  # share of the chunks reached
WORD_COUNTS = ((0, 0), (1, 3), (4, 6), (7, 9), (10, 99))  # words a query looks up


def made_up_words(rng: random.Random, n: int, avoid: set[str]) -> list[str]:
    """``n`` distinct pronounceable lower-case words, none in ``avoid``."""
    words: dict[str, None] = {}
    while len(words) < n:
        syllables = rng.choice((1, 1, 2, 2, 2, 3))
        word = "".join(
            rng.choice(ONSETS) + rng.choice(NUCLEI) + rng.choice(CODAS) for _ in range(syllables)
        )
        if 3 <= len(word) <= 12 and word not in avoid:
            words[word] = None
    return list(words)


class Language:
    """The seeded vocabulary and how often each word is said (rank ``r`` from 1:
    ∝ 1 / (r + ZIPF_OFFSET)^ZIPF)."""

    def __init__(self, size: int, seed: int) -> None:
        rng = random.Random(seed)
        self.words = made_up_words(rng, size, set(FUNCTION_WORDS))
        # Words a caller may say that no document holds (not the vocabulary's).
        self.unknown = made_up_words(rng, 500, set(FUNCTION_WORDS) | set(self.words))
        weights = [1 / (rank + 1 + ZIPF_OFFSET) ** ZIPF for rank in range(size)]
        self._cumulative = list(itertools.accumulate(weights))
        small = [1 / (rank + 1) ** ZIPF for rank in range(len(FUNCTION_WORDS))]
        self._small_cumulative = list(itertools.accumulate(small))

    def word(self, rng: random.Random) -> str:
        x = rng.random() * self._cumulative[-1]
        return self.words[bisect.bisect_left(self._cumulative, x)]

    def small(self, rng: random.Random) -> str:
        """A function word."""
        x = rng.random() * self._small_cumulative[-1]
        return FUNCTION_WORDS[bisect.bisect_left(self._small_cumulative, x)]

    def rare(self, rng: random.Random) -> str:
        """A word of the vocabulary's less frequent half."""
        return self.words[rng.randrange(len(self.words) // 2, len(self.words))]

    def sentence(self, rng: random.Random, end: str) -> str:
        words = [
            self.small(rng) if rng.random() < FUNCTION_SHARE else self.word(rng)
            for _ in range(rng.randint(6, 18))
        ]
        text = " ".join(words)
        return text[0].upper() + text[1:] + end

    def paragraph(self, rng: random.Random) -> str:
        """A question on its line and its answer, 500-900 characters."""
        target = rng.randint(500, 900)
        text = self.sentence(rng, "?") + "\n" + self.sentence(rng, ".")
        while len(text) < target:
            sentence = self.sentence(rng, rng.choice(".........!"))
            if len(text) + 1 + len(sentence) > 900:
                break  # 500 at least: under 500 any sentence fits
            text += " " + sentence
        return text

    def question(self, rng: random.Random) -> str:
        """A caller's question, 5-15 words."""
        n = rng.randint(5, 15)
        opener = rng.choice(QUESTION_OPENERS).split()[: n - 2]
        if rng.random() < 0.05:  # about what the base does not hold
            words = [rng.choice(self.unknown) for _ in range(n - len(opener))]
        else:
            words = [
                self.small(rng) if rng.random() < 0.3 else self.word(rng)
                for _ in range(n - len(opener))
            ]
            if rng.random() < 0.25:
                for _ in range(rng.randint(1, 2)):
                    words[rng.randrange(len(words))] = self.rare(rng)
        text = " ".join(opener + words)
        return text[0].upper() + text[1:] + "?"


@dataclass
class Corpus:
    """One organization's documents, each cut into its chunks."""

    documents: list[list[str]]

    @property
    def chunks(self) -> int:
        return sum(len(d) for d in self.documents)

    def texts(self) -> list[str]:
        return [chunk for document in self.documents for chunk in document]


def corpus(language: Language, chunks: int, per_document: int, seed: int) -> Corpus:
    rng = random.Random(seed)
    documents: list[list[str]] = []
    left = chunks
    while left > 0:
        n = min(per_document, left)
        cut = chunk_text("\n\n".join(language.paragraph(rng) for _ in range(n)))
        assert len(cut) == n, "a paragraph is one chunk"
        documents.append(cut)
        left -= n
    return Corpus(documents)


class Matched:
    """How many of a corpus's chunks hold at least one of a query's words (as written)."""

    def __init__(self, texts: Sequence[str]) -> None:
        self._chunks_of: dict[str, set[int]] = {}
        for i, text in enumerate(texts):
            for word in set(WORD.findall(text.lower())):
                self._chunks_of.setdefault(word, set()).add(i)

    def __call__(self, words: Sequence[str]) -> int:
        return len(set().union(*(self._chunks_of.get(w, set()) for w in words)))


@dataclass
class Base:
    """A knowledge base loaded into a store, and whose it is."""

    organization_id: str
    base_id: str


async def load(store: Store, name: str, content: Corpus) -> Base:
    org = await seed_org(store, name)
    base = KnowledgeBase(id=f"kb_{name}", organization_id=org.id, name=f"{name} FAQ")
    async with store.transaction() as tx:
        await tx.insert_knowledge_base(base)
    for n, texts in enumerate(content.documents):
        size = sum(len(t) for t in texts)
        document = KnowledgeDocument(
            id=f"doc_{name}_{n:05d}",
            organization_id=org.id,
            knowledge_base_id=base.id,
            name=f"faq-{n:05d}.md",
            content_type="text/markdown",
            size_bytes=size,
            characters=size,
            chunks=len(texts),
        )
        chunks = [KnowledgeChunk(document.id, i, t) for i, t in enumerate(texts)]
        async with store.transaction() as tx:
            await tx.insert_knowledge_document(document, chunks)
    return Base(org.id, base.id)


async def plain_scan(
    store: Store, backend: str, organization_id: str, base_ids: Sequence[str], query: str
) -> tuple[int, float]:
    """The baseline: the same words found without the index, ranked here by the words each
    chunk holds (then how often); (hits, ms)."""
    t0 = time.perf_counter()
    words = query_words(query)
    hits = 0
    if words:
        like = "ILIKE" if backend == "postgres" else "LIKE"  # SQLite's LIKE ignores case
        sql = (
            "SELECT c.knowledge_base_id, c.document_id, d.name AS document_name, c.position,"
            " c.text FROM knowledge_chunks c JOIN knowledge_documents d ON d.id = c.document_id"
            f" WHERE c.organization_id = ? AND c.knowledge_base_id IN ({marks(base_ids)})"
            f" AND ({' OR '.join([f'c.text {like} ?'] * len(words))})"
        )
        reader = store._reader  # type: ignore[attr-defined]  # the search's own connections
        rows = await reader.fetch(sql, organization_id, *base_ids, *(f"%{w}%" for w in words))

        def rank(row: dict[str, object]) -> tuple[int, int]:
            text = str(row["text"]).lower()
            counts = [text.count(w) for w in words]
            return sum(1 for c in counts if c), sum(counts)

        hits = len(sorted(rows, key=rank, reverse=True)[:DEFAULT_CHUNKS_PER_SEARCH])
    return hits, (time.perf_counter() - t0) * 1000


@dataclass
class Timed:
    """One way's answers: the query's index, its time (ms), whether it found something."""

    at: list[int] = field(default_factory=list)
    ms: list[float] = field(default_factory=list)
    found: list[bool] = field(default_factory=list)

    def add(self, n: int, hits: int, ms: float) -> None:
        self.at.append(n)
        self.ms.append(ms)
        self.found.append(hits > 0)

    def of(self, picked: set[int]) -> list[float]:
        return [ms for n, ms in zip(self.at, self.ms, strict=True) if n in picked]


@dataclass
class Backend:
    name: str
    version: str = ""
    load_s: dict[int, float] = field(default_factory=dict)  # chunks → seconds, both orgs
    search: dict[int, Timed] = field(default_factory=dict)  # chunks → the search
    scan: Timed = field(default_factory=Timed)  # the baseline at --chunks
    after_scan: Timed = field(default_factory=Timed)  # the search just after each scan
    # PostgreSQL: every chunk the words reach ranked (no rarer-words choice), and how many of
    # its chunks the search found too (same, of)
    every_reached: Timed = field(default_factory=Timed)
    agreement: tuple[int, int] = (0, 0)
    skipped: str = ""


@asynccontextmanager
async def opened(url: str) -> AsyncIterator[Store]:
    store = await open_store(url)
    try:
        await store.migrate()
        yield store
    finally:
        await store.aclose()


async def measure(
    backend: Backend,
    url: str,
    size: int,
    pair: tuple[Corpus, Corpus],
    warmup: Sequence[str],
    queries: Sequence[str],
    scan_every: int,
) -> None:
    """Load the pair of organizations' bases; time the search (every query), then every
    ``scan_every``-th query (0: none) the plain scan and the search again just after it."""
    async with opened(url) as store:
        t0 = time.perf_counter()
        ours = await load(store, f"acme{size}", pair[0])
        await load(store, f"globex{size}", pair[1])
        if backend.name == "postgres":
            conn = await asyncpg.connect(url)
            try:
                await conn.execute("ANALYZE")
                backend.version = str(await conn.fetchval("SHOW server_version"))
            finally:
                await conn.close()
        backend.load_s[size] = time.perf_counter() - t0
        org, bases = ours.organization_id, [ours.base_id]
        searches = KnowledgeSearch(
            store, Embeddings(None), fixed_endpoint(None)
        )  # full text: no endpoint

        found_by: dict[int, set[tuple[str, int]]] = {}

        async def fts(query: str, n: int = -1) -> tuple[int, float]:
            found = await searches.search(org, bases, query, DEFAULT_CHUNKS_PER_SEARCH)
            found_by[n] = {(h.document_id, h.position) for h in found.hits}
            return len(found.hits), found.took_ms

        async def scan(query: str) -> tuple[int, float]:
            return await plain_scan(store, backend.name, org, bases, query)

        searched = backend.search[size] = Timed()
        for query in warmup:
            await fts(query)
        for n, query in enumerate(queries):
            searched.add(n, *await fts(query, n))
        if backend.name == "postgres" and scan_every:
            chosen = {n: found_by[n] for n in range(len(queries))}
            bound = sql_knowledge._RANKED_AT_MOST
            sql_knowledge._RANKED_AT_MOST = 10**9
            try:
                for n, query in enumerate(queries):
                    backend.every_reached.add(n, *await fts(query, n))
            finally:
                sql_knowledge._RANKED_AT_MOST = bound
            backend.agreement = (
                sum(len(chosen[n] & found_by[n]) for n in chosen),
                sum(len(found_by[n]) for n in chosen),
            )
        if scan_every:  # then the baseline, each scan followed by the search again
            for query in warmup[:5]:
                await scan(query)
            for n in range(0, len(queries), scan_every):
                backend.scan.add(n, *await scan(queries[n]))
                backend.after_scan.add(n, *await fts(queries[n]))
        scanned = scan_every and f", plain scan p95 {np.percentile(backend.scan.ms, 95):.2f} ms"
        print(
            f"{backend.name} {size} chunks: loaded in {backend.load_s[size]:.1f} s, search p95 "
            f"{np.percentile(searched.ms, 95):.2f} ms{scanned or ''}",
            file=sys.stderr,
            flush=True,
        )


async def postgres_database(server: str) -> str:
    return str(await fresh_database(server, for_the_session=True))


async def drop(server: str, dsn: str) -> None:
    conn = await asyncpg.connect(server)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{dsn.rsplit("/", 1)[1]}" WITH (FORCE)')
    finally:
        await conn.close()


def run_backend(
    name: str,
    args: argparse.Namespace,
    pairs: dict[int, tuple[Corpus, Corpus]],
    warmup: Sequence[str],
    queries: Sequence[str],
) -> Backend:
    backend = Backend(name)
    sizes = [args.chunks, args.small]

    def scan_every(size: int) -> int:
        return args.scan_every if size == args.chunks else 0

    if name == "sqlite":
        backend.version = sqlite3.sqlite_version
        with tempfile.TemporaryDirectory(prefix="knowledge-bench-") as tmp:
            for size in sizes:
                url = f"sqlite:///{tmp}/knowledge-{size}.db"
                asyncio.run(
                    measure(backend, url, size, pairs[size], warmup, queries, scan_every(size))
                )
        return backend
    stop: Callable[[], None] = lambda: None  # noqa: E731
    server = args.postgres_url
    try:
        if not server:
            server, stop = start_postgres()
        for size in sizes:
            dsn = asyncio.run(postgres_database(server))
            try:
                asyncio.run(
                    measure(backend, dsn, size, pairs[size], warmup, queries, scan_every(size))
                )
            finally:
                asyncio.run(drop(server, dsn))
    except PostgresUnavailable as exc:
        backend.skipped = str(exc)
    finally:
        stop()
    return backend


def commit() -> str:
    def git(*args: str) -> str:
        done = subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True)
        return done.stdout.strip()

    changed = git(
        "status",
        "--porcelain",
        "--",
        "src/voicedock/knowledge",
        "src/voicedock/store/sql/knowledge.py",
        "src/voicedock/store/migrations",
    )
    note = (
        "; the knowledge-base change measured is uncommitted in the working tree" if changed else ""
    )
    return f"{git('log', '-1', '--format=%h %s')}{note}"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def row(label: str, timed: Timed, target: float | None = None) -> list[str]:
    p50, p95, p99 = np.percentile(timed.ms, [50, 95, 99])
    mark = "" if target is None else (" ✓" if p95 <= target else " ✗")
    return [
        label,
        str(len(timed.ms)),
        f"{p50:.2f}",
        f"**{p95:.2f}**{mark}",
        f"{p99:.2f}",
        f"{max(timed.ms):.2f}",
        f"{100 * sum(timed.found) / len(timed.found):.0f} %",
    ]


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    return [
        "| " + " | ".join(header) + " |",
        "|" + "---|" * len(header),
        *("| " + " | ".join(r) + " |" for r in rows),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--chunks", type=int, default=10_000, help="chunks of each organization")
    parser.add_argument("--small", type=int, default=1_000, help="chunks of the scale's base")
    parser.add_argument("--queries", type=int, default=500)
    parser.add_argument("--warmup", type=int, default=50, help="queries before the timed ones")
    parser.add_argument("--per-document", type=int, default=50, help="chunks per document")
    parser.add_argument("--vocabulary", type=int, default=3000, help="made-up words")
    parser.add_argument("--seed", type=int, default=29)
    parser.add_argument(
        "--scan-every", type=int, default=2, help="the baseline answers every n-th query"
    )
    parser.add_argument("--backends", default="sqlite,postgres")
    parser.add_argument(
        "--postgres-url", default="", help="a server to use (default: a private one, started)"
    )
    parser.add_argument("--target-ms", type=float, default=20.0, help="the p95 target at --chunks")
    parser.add_argument(
        "--write", action="store_true", help="write bench/results/knowledge_search-<date>.md"
    )
    args = parser.parse_args()
    started = dt.datetime.now(dt.UTC)
    load0 = os.getloadavg()
    t0 = time.perf_counter()
    language = Language(args.vocabulary, args.seed)
    pairs = {
        size: (
            corpus(language, size, args.per_document, args.seed * 1000 + 1),
            corpus(language, size, args.per_document, args.seed * 1000 + 2),
        )
        for size in {args.chunks, args.small}
    }
    rng = random.Random(args.seed * 1000 + 3)
    warmup = [language.question(rng) for _ in range(args.warmup)]
    queries = [language.question(rng) for _ in range(args.queries)]
    backends = [
        run_backend(name, args, pairs, warmup, queries) for name in args.backends.split(",") if name
    ]
    load1 = os.getloadavg()
    took = time.perf_counter() - t0

    big = pairs[args.chunks][0]
    texts = big.texts()
    matched = Matched(texts)
    looked_up = [query_words(q) for q in queries]
    reach = [matched(words) for words in looked_up]
    chars = [len(t) for t in texts]
    n_words = [len(w) for w in looked_up]
    machine = f"{platform.node()} / {platform.platform()} / {os.cpu_count()} CPUs ({cpu_model()})"
    versions = ", ".join(f"{b.name} {b.version}" for b in backends if b.version)
    lines = [
        f"# Knowledge-base search (full text) — {started:%Y-%m-%d %H:%M} UTC",
        "",
        f"Machine: {machine}, Python {platform.python_version()}, {versions}; load average"
        f" {' / '.join(f'{x:.2f}' for x in load0)} at the start,"
        f" {' / '.join(f'{x:.2f}' for x in load1)} at the end.",
        f"Code: {commit()}.",
        f"Command: `{' '.join(['.venv/bin/python', 'bench/knowledge_search.py', *sys.argv[1:]])}`"
        f" ({took:.0f} s).",
        f"Base: {big.chunks:,} chunks in {len(big.documents)} documents (one knowledge base),"
        f" {np.mean(chars):.0f} characters a chunk on average ({min(chars)}-{max(chars)}),"
        f" {args.vocabulary:,} made-up words (Zipf-like) among English function words; a second"
        f" organization holds {pairs[args.chunks][1].chunks:,} chunks of the same words."
        f" Queries: {len(queries)} questions of 5-15 words, {np.median(n_words):.0f} looked up"
        f" (median; {min(n_words)}-{max(n_words)}), after {len(warmup)} for warm-up; each"
        f" search limit {DEFAULT_CHUNKS_PER_SEARCH}.",
        "",
        f"## Retrieval's own time (ms), target p95 ≤ {args.target_ms:g} ms at"
        f" {args.chunks:,} chunks",
        "",
    ]
    rows: list[list[str]] = []
    for b in backends:
        if b.skipped:
            rows.append([f"{b.name}: not run ({b.skipped})", "", "", "", "", "", ""])
            continue
        rows.append(
            row(
                f"{b.name}, full text, {args.chunks:,} chunks",
                b.search[args.chunks],
                args.target_ms,
            )
        )
        if b.every_reached.ms:
            rows.append(
                row(
                    f"{b.name}, every reached chunk ranked (baseline), {args.chunks:,} chunks",
                    b.every_reached,
                )
            )
        if b.scan.ms:
            rows.append(row(f"{b.name}, plain scan (baseline), {args.chunks:,} chunks", b.scan))
            rows.append(
                row(f"{b.name}, full text right after a scan, {args.chunks:,} chunks", b.after_scan)
            )
        rows.append(row(f"{b.name}, full text, {args.small:,} chunks", b.search[args.small]))
    lines += table(
        ["backend, way, base", "queries", "p50", "p95", "p99", "max", "found some"], rows
    )
    lines += [
        "",
        "Full text: `knowledge/search.py`'s `KnowledgeSearch.search` as a turn calls it (no "
        "embeddings endpoint: full text), its own clock"
        " (`Found.took_ms`). Plain scan: the same words, `LIKE '%word%' OR ...` (PostgreSQL:"
        " `ILIKE`) over the organization's base through the same connections, the rows ranked"
        " in Python by the words each holds; it matches inside words too, so it finds more."
        f" The scan answered one query in {args.scan_every}, after the search had answered"
        ' them all; each scan was followed by the search of the same query again ("right'
        ' after a scan").',
        *(
            f"Every reached chunk ranked: PostgreSQL's search as it was before it chose the"
            f" rows it ranks by the question's rarer words (`store/sql/knowledge.py`"
            f" `_RANKED_AT_MOST` lifted), after the timed searches; of its {b.agreement[1]:,}"
            f" chunks the search found {b.agreement[0]:,}"
            f" ({100 * b.agreement[0] / max(b.agreement[1], 1):.1f} %)."
            for b in backends
            if b.every_reached.ms
        ),
        "",
        f"## By the share of the {args.chunks:,} chunks a query's words reach",
        "",
        "(Chunks holding at least one of the words looked up, as written, counted in Python;"
        " the backends' stemming reaches a few more, and PostgreSQL leaves out its own list"
        " of common words.)",
        "",
    ]
    live = [b for b in backends if not b.skipped]
    header = ["queries (full text / scan)"]
    for b in live:
        header += [f"{b.name} full text p50 / p95", f"{b.name} plain scan p50 / p95"]

    def shape(label: str, picked: set[int]) -> list[str]:
        cells = [label, f"{len(picked)} / {len(picked & set(live[0].scan.at))}" if live else ""]
        for b in live:
            for timed in (b.search[args.chunks], b.scan):
                values = timed.of(picked)
                p50, p95 = np.percentile(values, [50, 95]) if values else (np.nan, np.nan)
                cells.append(f"{p50:.2f} / {p95:.2f}" if values else "–")
        return cells

    by_reach = []
    for lo, hi in BUCKETS:
        picked = {i for i, r in enumerate(reach) if lo <= r / big.chunks < hi}
        if picked:
            top = "100" if hi > 1 else f"{100 * hi:.0f}"
            by_reach.append(shape(f"{100 * lo:.0f}-{top} %", picked))
    lines += table(["chunks reached", *header], by_reach)
    lines += ["", "## By the number of words looked up", ""]
    by_words = []
    for lo, hi in WORD_COUNTS:
        picked = {i for i, n in enumerate(n_words) if lo <= n <= hi}
        if picked:
            label = str(lo) if lo == hi else f"{lo}-{hi}" if hi < 99 else f"{lo}+"
            by_words.append(shape(label, picked))
    lines += table(["words", *header], by_words)
    lines += ["", "## Loading (both organizations, through `insert_knowledge_document`)", ""]
    load_rows = [
        [b.name, f"{size:,} + {size:,}", f"{b.load_s[size]:.1f}"]
        for b in live
        for size in (args.chunks, args.small)
    ]
    lines += table(["backend", "chunks", "seconds"], load_rows)
    lines.append("")
    publish("\n".join(lines), "knowledge_search", started, write=args.write)


if __name__ == "__main__":
    main()
