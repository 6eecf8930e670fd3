"""How ranksearch collections map onto Milvus (docs/SCALE_OUT.md, "Data model").

One Milvus collection per ranksearch collection, so that one upsert writes every
variant's vector of a document in one Milvus row (a reader never sees variant A's
new vector next to variant B's old one):

    <prefix>c_<slug>_<hash8>      e.g. ranksearch_c_my_docs_3f2a9c1b
      id              VARCHAR primary key (the document id)
      text            VARCHAR (<= 65,535 bytes of UTF-8: Milvus's VARCHAR limit)
      metadata        JSON    ({str: str}; filters are metadata["key"] == "value")
      content_sha256  VARCHAR(64)  sha256 of text and metadata (what was stored)
      version         INT64   1 on first write, +1 per replace
      v<i>            FLOAT_VECTOR(dim), metric IP, the variant's index
                      (flat -> FLAT, hnsw -> HNSW, ivf -> IVF_FLAT)
      x<i>            FLOAT_VECTOR(dim), FLAT: exact copy, only for an approximate
                      variant (farthest stays exact; a negated query on a graph
                      index misses the outliers)
      lex_*           the lexical index's fields (ranksearch.indexer.milvus_lexical),
                      in collections created with schema version 2 or later

Variant i is the variant's position in the definition (names may hold '.' and '-',
which Milvus field names may not). Definitions live in one shared table,

    <prefix>meta                  name VARCHAR pk, definition JSON, _unused FLOAT_VECTOR(2)

(Milvus needs a vector field in every collection), so a replica started later sees
every collection another replica created.
"""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from ranksearch.errors import InvalidArgument
from ranksearch.indexer import lexical
from ranksearch.indexer import milvus_lexical as ml
from ranksearch.indexer.request import SearchDefaults
from ranksearch.indexer.types import IndexSpec, VariantSpec

SCHEMA_VERSION = 2  # 2: lexical fields and the collection's lexical config / search defaults
TEXT_MAX_BYTES = 65535  # Milvus VARCHAR max_length
METADATA_MAX_BYTES = 65536  # Milvus JSON field limit
META_DIM = 2
# index kind -> (Milvus index type, build params we pass on, search param name)
INDEX_KINDS = {
    "flat": ("FLAT", (), None),
    "hnsw": ("HNSW", ("M", "efConstruction"), ("efSearch", "ef")),
    "ivf": ("IVF_FLAT", ("nlist",), ("nprobe", "nprobe")),
}
DEFAULT_BUILD = {"hnsw": {"M": 32, "efConstruction": 200}, "ivf": {"nlist": 128}}


def meta_name(prefix: str) -> str:
    return f"{prefix}meta"


def physical_name(prefix: str, collection: str) -> str:
    """A Milvus collection name (letters, digits, '_') that is unique per ranksearch
    name: readable slug plus a hash of the exact name."""
    slug = re.sub(r"[^A-Za-z0-9_]", "_", collection)[:40]
    digest = hashlib.sha256(collection.encode("utf-8")).hexdigest()[:8]
    return f"{prefix}c_{slug}_{digest}"


@dataclass(frozen=True)
class VariantFields:
    """Where one variant lives in its Milvus collection."""

    spec: VariantSpec
    field: str  # its index's vector field
    exact_field: str  # the FLAT field searched for exact results (== field when flat)

    @property
    def approximate(self) -> bool:
        return self.field != self.exact_field


@dataclass(frozen=True)
class Definition:
    """One ranksearch collection as stored in the meta table. ``lexical`` is None for
    a collection created before the Milvus store had a lexical index (schema 1)."""

    name: str
    physical: str
    default_variant: str
    variants: dict[str, VariantFields]
    lexical: lexical.LexicalConfig | None = None
    defaults: SearchDefaults = SearchDefaults()

    def to_json(self) -> dict[str, Any]:
        settings = {} if self.lexical is None else {
            "settings": json.loads(lexical.encode_config(self.lexical, self.defaults))}
        return {"schema_version": SCHEMA_VERSION if self.lexical else 1, **settings, "physical": self.physical,
                "default_variant": self.default_variant,
                "variants": [{"name": f.spec.name, "dim": f.spec.dim, "encoder": f.spec.encoder,
                              "index": {"kind": f.spec.index.kind, "params": dict(f.spec.index.params)},
                              "field": f.field, "exact_field": f.exact_field}
                             for f in self.variants.values()]}

    @classmethod
    def from_json(cls, name: str, data: dict[str, Any]) -> "Definition":
        variants = {}
        for v in data["variants"]:
            spec = VariantSpec(name=v["name"], dim=int(v["dim"]), encoder=v.get("encoder", ""),
                               index=IndexSpec(kind=v["index"]["kind"], params=dict(v["index"]["params"])))
            variants[spec.name] = VariantFields(spec, v["field"], v["exact_field"])
        lex, defaults = (lexical.decode_config(json.dumps(data["settings"])) if "settings" in data
                         else (None, SearchDefaults()))
        return cls(name, data["physical"], data["default_variant"], variants, lex, defaults)

    @classmethod
    def new(cls, prefix: str, name: str, specs: list[VariantSpec], default: str,
            lex: lexical.LexicalConfig, defaults: SearchDefaults) -> "Definition":
        variants = {}
        for i, spec in enumerate(specs):
            kind = index_kind(spec.index, f"variants[{i}].index")
            variants[spec.name] = VariantFields(spec, f"v{i}", f"v{i}" if kind == "flat" else f"x{i}")
        return cls(name, physical_name(prefix, name), default, variants, lex, defaults)

    def field_names(self) -> set[str]:
        """Every Milvus field of this collection's schema."""
        lex = set(ml.FIELDS) if self.lexical else set()
        return {"id", "text", "metadata", "content_sha256", "version"} | lex | {
            name for f in self.variants.values() for name in (f.field, f.exact_field)}


def index_kind(index: IndexSpec, where: str) -> str:
    """The Milvus store's index kinds: flat, hnsw, ivf (a FAISS factory string is
    the embedded store's alone)."""
    kind = index.kind.lower()
    if kind not in INDEX_KINDS:
        raise InvalidArgument(f"{where}.kind", f"the Milvus store supports {', '.join(INDEX_KINDS)}; "
                              f"got {index.kind!r}")
    build_keys = INDEX_KINDS[kind][1]
    search_key = INDEX_KINDS[kind][2]
    allowed = set(build_keys) | ({search_key[0]} if search_key else set())
    for key, value in index.params.items():
        if key not in allowed:
            raise InvalidArgument(f"{where}.params.{key}", f"unknown for {kind} on Milvus "
                                  f"(known: {', '.join(sorted(allowed)) or 'none'})")
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65536:
            raise InvalidArgument(f"{where}.params.{key}", f"must be an integer in 1..65536, got {value!r}")
    return kind


def data_schema(client_cls, definition: Definition, max_id_length: int):
    """The Milvus schema and index params of one ranksearch collection."""
    from pymilvus import DataType

    schema = client_cls.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("id", DataType.VARCHAR, is_primary=True, max_length=max_id_length)
    schema.add_field("text", DataType.VARCHAR, max_length=TEXT_MAX_BYTES)
    schema.add_field("metadata", DataType.JSON)
    schema.add_field("content_sha256", DataType.VARCHAR, max_length=64)
    schema.add_field("version", DataType.INT64)
    indexes = client_cls.prepare_index_params()
    if definition.lexical is not None:
        ml.add_fields(schema)
    for fields in definition.variants.values():
        spec = fields.spec
        kind = spec.index.kind.lower()
        milvus_type, build_keys, _ = INDEX_KINDS[kind]
        build = {**DEFAULT_BUILD.get(kind, {}),
                 **{k: v for k, v in spec.index.params.items() if k in build_keys}}
        schema.add_field(fields.field, DataType.FLOAT_VECTOR, dim=spec.dim)
        indexes.add_index(fields.field, index_type=milvus_type, metric_type="IP", params=build)
        if fields.approximate:
            schema.add_field(fields.exact_field, DataType.FLOAT_VECTOR, dim=spec.dim)
            indexes.add_index(fields.exact_field, index_type="FLAT", metric_type="IP")
    return schema, indexes


def meta_schema(client_cls):
    from pymilvus import DataType

    schema = client_cls.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field("name", DataType.VARCHAR, is_primary=True, max_length=64)
    schema.add_field("definition", DataType.JSON)
    schema.add_field("_unused", DataType.FLOAT_VECTOR, dim=META_DIM)
    indexes = client_cls.prepare_index_params()
    indexes.add_index("_unused", index_type="FLAT", metric_type="IP")
    return schema, indexes


def search_params(fields: VariantFields, exact: bool, params: dict[str, Any], depth: int) -> tuple[str, dict]:
    """(vector field, Milvus search params) for a nearest search `depth` deep."""
    if exact or not fields.approximate:
        return fields.exact_field, {"metric_type": "IP", "params": {}}
    kind = fields.spec.index.kind.lower()
    ours, theirs = INDEX_KINDS[kind][2]
    value = params.get(ours, fields.spec.index.params.get(ours))
    knobs: dict[str, Any] = {}
    if kind == "hnsw":
        knobs["ef"] = max(int(value or 64), depth)  # HNSW needs ef >= limit
    elif value is not None:
        knobs[theirs] = int(value)
    return fields.field, {"metric_type": "IP", "params": knobs}
