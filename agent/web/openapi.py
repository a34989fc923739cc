"""The OpenAPI 3.1 reference of every route the app registers (DESIGN sections 5 and 6), as Python data."""

from __future__ import annotations

import copy
from typing import Any

from agent import __version__

JsonObj = dict[str, Any]

WS_DESCRIPTION = """\
Upgrade to a WebSocket (send `Connection: Upgrade`, `Upgrade: websocket`); the key rides in
`?apikey=` (browsers cannot set headers on a WebSocket) or `X-Api-Key`.

Server -> client frames are JSON `{"type": T, "data": {...}, "timestamp": ISO8601}`:

- `connection:established` on connect, with `data.clientId`
- `pong`, the answer to a client `{"type": "ping"}`; the server also sends WS ping frames every 30 s and
  drops a client that does not answer
- `job:queued`, `job:started`, `job:progress` (`data.progress` 0..1, `data.message`), `job:completed`,
  `job:failed` (`data.error`, `data.will_retry`), `job:cancelled`: all with `data.job_id` and `data.type`
- `queue:stats` `{pending, running, failed}`
- `movie:updated`, `series:updated`, `episode:updated` with `data.id`
- `scan:progress` `{library, seen, total?}`
- `player:activity` `{player, state: idle|playing|paused, file?, position?, total?}`
- `webhook:received` `{source, event_type, event_id}`
- `resync`: the client was too slow (its bounded send queue overflowed); it is dropped and should reload
- `error`: a client frame that is not JSON, not an object with a string `type`, binary, or of an unknown type

Client -> server: only `{"type": "ping"}`.
"""


def ref(name: str) -> JsonObj:
    """A $ref to a component schema."""
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(kind: str | list[str], **extra: Any) -> JsonObj:
    """A schema of one or more JSON types that may also be null."""
    kinds = [kind] if isinstance(kind, str) else list(kind)
    return {"type": [*kinds, "null"], **extra}


def json_content(schema: JsonObj) -> JsonObj:
    """An application/json content map."""
    return {"application/json": {"schema": schema}}


def reply(description: str, schema: JsonObj | None = None) -> JsonObj:
    """One response object."""
    out: JsonObj = {"description": description}
    if schema is not None:
        out["content"] = json_content(schema)
    return out


def error(name: str) -> JsonObj:
    """A $ref to a shared error response (its body is the {error, detail} schema)."""
    return {"$ref": f"#/components/responses/{name}"}


def list_of(item: str) -> JsonObj:
    """The {items, total} envelope of a schema."""
    return {
        "type": "object",
        "required": ["items", "total"],
        "properties": {"items": {"type": "array", "items": ref(item)}, "total": {"type": "integer", "minimum": 0}},
    }


def query(name: str, description: str, schema: JsonObj) -> JsonObj:
    """A query parameter."""
    return {"name": name, "in": "query", "required": False, "description": description, "schema": schema}


def path_param(name: str, description: str, schema: JsonObj | None = None) -> JsonObj:
    """A path parameter."""
    return {"name": name, "in": "path", "required": True, "description": description,
            "schema": schema or {"type": "integer", "minimum": 1, "maximum": 2**63 - 1}}


def operation(op_id: str, tag: str, summary: str, responses: JsonObj, *, description: str | None = None,
              parameters: list[JsonObj] | None = None, body: JsonObj | None = None,
              security: list[JsonObj] | None = None) -> JsonObj:
    """One operation; protected routes also answer 401 with the error body."""
    out: JsonObj = {"operationId": op_id, "tags": [tag], "summary": summary}
    if description:
        out["description"] = description
    if parameters:
        out["parameters"] = parameters
    if body is not None:
        out["requestBody"] = body
    out["responses"] = dict(responses)
    if security is not None:
        out["security"] = security
    else:
        out["responses"].setdefault("401", error("Unauthorized"))
    return out


# -- schemas -----------------------------------------------------------------------------------------

MEDIA_FIELDS: JsonObj = {
    "title": nullable("string"), "original_title": nullable("string"), "sort_title": nullable("string"),
    "year": nullable("integer"), "premiered": nullable("string", format="date"), "plot": nullable("string"),
    "outline": nullable("string"), "tagline": nullable("string"), "runtime": nullable("integer"),
    "mpaa": nullable("string"), "tmdb_id": nullable("integer"), "imdb_id": nullable("string"),
    "tvdb_id": nullable("integer"),
    "genres": {"type": "array", "items": {"type": "string"}},
    "studios": {"type": "array", "items": {"type": "string"}},
    "actors": {"type": "array", "items": {"type": "object"}},
    "ratings": {"type": "array", "items": {"type": "object"}},
}
COMMON_STATE: JsonObj = {
    "id": {"type": "integer"},
    "library": nullable("string", description="library name"),
    "status": {"type": "string", "enum": ["unidentified", "identified", "enriched"]},
    "locked_fields": {"type": "array", "items": {"type": "string"},
                      "description": 'fields automation never overwrites; artwork locks are "art:<type>"'},
    "nfo_held_fields": {"type": "array", "items": {"type": "string"},
                        "description": "fields whose values came from an NFO another tool wrote; with"
                                       " `nfo.existing: keep` providers leave them alone (not user locks;"
                                       " POST .../refresh clears them)"},
    "nfo_path": nullable("string"), "nfo_error": nullable("string"),
    "artwork_found": {"type": "object", "additionalProperties": True,
                      "description": "artwork files found beside the media, by type"},
    "missing": {"type": "boolean"}, "missing_since": nullable("string", format="date-time"),
    "created_at": nullable("string", format="date-time"), "updated_at": nullable("string", format="date-time"),
}
STREAMDETAILS: JsonObj = {
    "streamdetails": {
        "type": ["object", "null"], "description": "the video file's streams as Kodi's fileinfo/streamdetails (ffprobe"
        ", cached by file signature; or another tool's NFO): video codec (h264, hevc, av1), aspect, width, height,"
        " durationinseconds, hdrtype (hdr10, dolbyvision, hlg); audio codec, language, channels; subtitle language",
        "properties": {kind: {"type": "array", "items": {"type": "object", "additionalProperties": True}}
                       for kind in ("video", "audio", "subtitle")}},
}
DETAIL_EXTRAS: JsonObj = {
    "artwork": {"type": "array", "items": ref("Artwork"), "description": "cached artwork (detail replies only)"},
    "files": {"type": "array", "items": ref("PublishedFile"),
              "description": "files the agent wrote beside the media (detail replies only)"},
}


def media_schema(description: str, own: JsonObj, required: list[str]) -> JsonObj:
    """A movie, series or episode schema: its own keys, the shared fields, state and detail extras."""
    return {"type": "object", "description": description, "additionalProperties": True,
            "required": ["id", "status", "locked_fields", *required],
            "properties": {**COMMON_STATE, **own, **MEDIA_FIELDS, **DETAIL_EXTRAS}}


SCHEMAS: JsonObj = {
    "Error": {
        "type": "object", "required": ["error"],
        "properties": {"error": {"type": "string", "description": "what went wrong, in one line"},
                       "detail": {"description": "more facts (valid values, the offending field), or null"}},
    },
    "Health": {
        "type": "object", "required": ["status", "version", "queue", "libraries", "watchers"],
        "properties": {"status": {"const": "ok"}, "version": {"type": "string"}, "queue": ref("QueueStats"),
                       "libraries": {"type": "integer"}, "watchers": {"type": "integer"},
                       "warnings": {"type": "array", "items": {
                           "type": "object", "required": ["code", "message", "subject"],
                           "properties": {"code": {"type": "string", "examples": [
                                              "provider_key_missing", "library_root_missing", "library_root_empty",
                                              "player_unreachable", "ffprobe_missing", "disk_low",
                                              "database_disk_full"]},
                                          "message": {"type": "string",
                                                      "description": "the problem, what it costs, and the fix"},
                                          "subject": {"type": ["string", "null"]}}}}},
    },
    "QueueStats": {
        "type": "object", "required": ["pending", "running", "failed"],
        "properties": {k: {"type": "integer", "minimum": 0} for k in ("pending", "running", "failed")},
    },
    "Library": {
        "type": "object", "required": ["id", "name", "kind", "path", "counts"],
        "properties": {
            "id": {"type": "integer"}, "name": {"type": "string"}, "kind": {"enum": ["movies", "series"]},
            "path": {"type": "string"}, "watch": {"enum": ["auto", "poll", "off"]},
            "agent": {"type": "string", "description": "the agent whose files these are (its scans run there)"},
            "counts": {"type": "object", "properties": {k: {"type": "integer"} for k in
                                                        ("movies", "series", "episodes")}},
            "progress": {"type": "object", "required": ["found", "published"],
                         "description": "items found (movies; or shows and episodes) and how many of them have "
                                        "an NFO the agent wrote: a first run's progress",
                         "properties": {"found": {"type": "integer"}, "published": {"type": "integer"}}},
            "last_scan_at": nullable("string", format="date-time"), "last_scan_job_id": nullable("integer"),
        },
    },
    "Artwork": {
        "type": "object",
        "properties": {"art_type": {"type": "string"}, "position": {"type": "integer"},
                       "sha256": {"type": "string"}, "source": nullable("string"),
                       "library_path": nullable("string"), "url": {"type": "string"}},
    },
    "PublishedFile": {
        "type": "object",
        "properties": {"path": {"type": "string"}, "kind": {"type": "string"}, "sha256": nullable("string"),
                       "written_at": nullable("string", format="date-time")},
    },
    "Movie": media_schema("A movie (the detail reply adds artwork and files).",
                          {"path": {"type": "string"}, "file": nullable("string"), **STREAMDETAILS}, ["path"]),
    "Series": media_schema(
        "A show; lists add episode_count, the detail reply adds seasons and episodes.",
        {"path": {"type": "string"}, "episode_count": {"type": "integer"},
         "seasons": {"type": "array", "items": {"type": "object", "properties": {
             "id": {"type": "integer"}, "season": nullable("integer"), "path": nullable("string"),
             "title": nullable("string"), "artwork_found": {"type": "object"}}}},
         "episodes": {"type": "array", "items": ref("Episode")}},
        ["path"]),
    "Episode": media_schema(
        "One episode of a show.",
        {"series_id": {"type": "integer"}, "file": nullable("string"), "season": nullable("integer"),
         "episode": nullable("integer"), "episode_end": nullable("integer"),
         "aired": nullable("string", format="date"), **STREAMDETAILS},
        ["series_id"]),
    "Job": {
        "type": "object",
        "required": ["id", "type", "priority", "status", "payload", "attempts", "max_retries", "progress",
                     "created_at"],
        "properties": {
            "id": {"type": "integer"},
            "type": {"type": "string", "examples": ["webhook", "scan", "enrich", "artwork", "publish", "notify_players",
                                                    "playback_capture", "playback_restore", "cleanup",
                                                    "cache_gc"]},
            "priority": {"type": "integer", "description": "1 critical, 2 high, 5 normal, 10 low; lower runs first"},
            "status": {"enum": ["pending", "running", "completed", "failed", "cancelled"]},
            "payload": {"type": "object"}, "result": {}, "error": nullable("string"),
            "attempts": {"type": "integer"}, "max_retries": {"type": "integer"},
            "progress": {"type": "number", "minimum": 0, "maximum": 1}, "message": nullable("string"),
            "depends_on": {"type": "array", "items": {"type": "integer"}}, "dedupe_key": nullable("string"),
            "chain": nullable("integer", description="the job whose chain this follow-up runs in, next to its item"
                                                     " (null: it started its own; each item's lookup does)"),
            "origin": nullable("integer", description="the job whose work this is (the scan or webhook that found"
                                                      " the item; null: asked for directly)"),
            "agent": nullable("string", description="the agent that must run it (its library's files are there);"
                                                    " null: any agent"),
            "worker": nullable("string", description="the agent running it now"),
            "subject": nullable("object", description="what the job is about, in list replies: {kind: movie|"
                                                      "series|episode|library|webhook, label, id?, title?}"),
            "created_at": nullable("string", format="date-time"), "started_at": nullable("string", format="date-time"),
            "completed_at": nullable("string", format="date-time"),
            "next_retry_at": nullable("string", format="date-time"),
        },
    },
    "Player": {
        "type": "object", "required": ["name", "type", "group", "url", "state"],
        "properties": {
            "name": {"type": "string"}, "type": {"enum": ["kodi", "jellyfin", "plex"]}, "group": {"type": "string"},
            "url": {"type": "string"}, "state": {"enum": ["connected", "unreachable", "unknown"]},
            "last_seen_at": nullable("string", format="date-time"), "last_error": nullable("string"),
            "now_playing": nullable("object", description="{state, file, position, total, updated_at}"),
        },
    },
    "ActivityItem": {
        "allOf": [ref("Job"), {"type": "object", "properties": {"followups": nullable("object", properties={
            "total": {"type": "integer"},
            "by_status": {"type": "object", "additionalProperties": {"type": "integer"}},
            "by_type": {"type": "object", "additionalProperties": {"type": "object"}}},
            description="counts of the jobs this one caused (their origin), or null")}}],
    },
    "ActivityChain": {
        "type": "object", "required": ["job", "followups", "total"],
        "properties": {"job": ref("Job"), "followups": {"type": "array", "items": ref("Job")},
                       "total": {"type": "integer", "description": "follow-ups in all (at most 500 listed)"}},
    },
    "SearchResult": {
        "type": "object", "required": ["tmdb_id", "title"],
        "properties": {"tmdb_id": {"type": "integer"}, "title": {"type": "string"},
                       "original_title": nullable("string"), "year": nullable("integer"),
                       "popularity": {"type": "number"}, "score": {"type": "number"},
                       "overview": nullable("string"), "poster": nullable("string")},
    },
    "MatchRequest": {"type": "object", "required": ["tmdb_id"],
                     "properties": {"tmdb_id": {"type": "integer", "minimum": 1}}},
    "MatchAccepted": {"type": "object", "required": ["job_id", "item"],
                      "properties": {"job_id": {"type": "integer", "description": "the enrich job (publish follows)"},
                                     "item": {"type": "object"}}},
    "Nfo": {"type": "object", "required": ["path", "text"],
            "properties": {"path": {"type": "string"}, "text": {"type": "string"}}},
    "PlayerTest": {"type": "object", "required": ["ok", "message", "player"],
                   "properties": {"ok": {"type": "boolean"}, "message": {"type": "string"},
                                  "player": nullable("object")}},
    "ActivityList": list_of("ActivityItem"), "SearchList": list_of("SearchResult"),
    "MovieList": list_of("Movie"), "SeriesList": list_of("Series"), "JobList": list_of("Job"),
    "LibraryList": list_of("Library"), "PlayerList": list_of("Player"),
    "Agent": {
        "type": "object", "required": ["name", "libraries", "last_seen", "running", "state"],
        "properties": {
            "name": {"type": "string"}, "libraries": {"type": "array", "items": {"type": "string"}},
            "players": {"type": "array", "items": {"type": "string"}}, "version": nullable("string"),
            "started_at": nullable("string", format="date-time"), "last_seen": nullable("string", format="date-time"),
            "stopped_at": nullable("string", format="date-time"),
            "running": {"type": "integer", "description": "jobs it runs now"},
            "state": {"enum": ["up", "stopped", "not answering"],
                      "description": "not answering: no heartbeat within a lease (30 s); its jobs go back to pending"},
            "self": {"type": "boolean", "description": "the agent that answered this request"},
        },
    },
    "AgentList": {"type": "object", "required": ["items", "total", "shared"],
                  "properties": {"items": {"type": "array", "items": {"$ref": "#/components/schemas/Agent"}},
                                 "total": {"type": "integer"},
                                 "shared": {"type": "boolean", "description": "the store is PostgreSQL (store.url)"}}},
    "JobAccepted": {"type": "object", "required": ["job_id"], "properties": {"job_id": {"type": "integer"}}},
    "RefreshAccepted": {
        "type": "object", "required": ["job_id", "cleared"],
        "properties": {"job_id": {"type": "integer", "description": "the enrich job (its publish follows)"},
                       "cleared": {"type": "array", "items": {"type": "string"},
                                   "description": "the nfo_held_fields dropped"}},
    },
    "MetadataPatch": {
        "type": "object", "minProperties": 1, "additionalProperties": True,
        "description": "{field: value}; each field named is saved and locked; null or \"\" clears it. "
                       "An unknown field is a 400 whose detail lists the editable ones.",
        "examples": [{"title": "The Matrix", "year": 1999}],
    },
    "LockRequest": {
        "type": "object", "required": ["fields"],
        "properties": {"fields": {"type": "array", "minItems": 1, "items": {"type": "string"},
                                  "description": 'field names; artwork as "art:poster"'},
                       "locked": {"type": "boolean", "default": True}},
    },
    "WebhookAccepted": {
        "type": "object", "required": ["event_id", "job_ids"],
        "properties": {"event_id": {"type": "integer"}, "job_ids": {"type": "array", "items": {"type": "integer"}}},
    },
    "WebhookIgnored": {
        "type": "object", "required": ["ignored"],
        "properties": {"ignored": {"type": "string", "description": "why nothing was needed"},
                       "event_id": {"type": "integer"}},
    },
    "WsFrame": {
        "type": "object", "required": ["type", "data", "timestamp"],
        "properties": {"type": {"type": "string"}, "data": {"type": "object"},
                       "timestamp": {"type": "string", "format": "date-time"}},
    },
}

RESPONSES: JsonObj = {
    name: {"description": text, "content": json_content(ref("Error"))}
    for name, text in {
        "BadRequest": "Bad input: the message names the problem",
        "Unauthorized": "Missing or wrong API key",
        "NotFound": "No such item",
        "Conflict": "The item is in a state that does not allow this",
        "TooLarge": "Body over 1 MiB",
    }.items()
}

SECURITY_SCHEMES: JsonObj = {
    "ApiKeyHeader": {"type": "apiKey", "in": "header", "name": "X-Api-Key"},
    "ApiKeyQuery": {"type": "apiKey", "in": "query", "name": "apikey",
                    "description": "the *arr convention; `api_key` is accepted too"},
    "BasicAuth": {"type": "http", "scheme": "basic",
                  "description": "any user name, the API key as password (for senders that only do Basic)"},
}
OPEN: list[JsonObj] = [{}]

# -- paths -------------------------------------------------------------------------------------------

PAGING = [
    query("limit", "page size", {"type": "integer", "minimum": 1, "maximum": 500, "default": 50}),
    query("offset", "items to skip", {"type": "integer", "minimum": 0, "default": 0}),
]
MEDIA_FILTERS = [
    query("library", "library name (400 for an unknown one)", {"type": "string"}),
    query("status", "identification state, or missing (file gone)",
          {"enum": ["unidentified", "identified", "enriched", "missing"]}),
    query("q", "substring of title or original title", {"type": "string"}),
    query("locked", "only items with a locked field or artwork type", {"type": "boolean"}),
    query("artwork_error", "only items whose artwork could not be fetched or written", {"type": "boolean"}),
    query("sort", "order; a leading '-' sorts descending",
          {"enum": ["title", "-title", "year", "-year", "added", "-added", "updated", "-updated"],
           "default": "title"}),
    *PAGING,
]
ITEM_ID = path_param("id", "item id")
JSON_BODY_ERRORS = {"400": error("BadRequest"), "404": error("NotFound"), "413": error("TooLarge")}


def item_paths(prefix: str, schema: str, noun: str, get: bool = True, enrich_note: str = "") -> JsonObj:
    """Detail, artwork, metadata edit, lock, enrich and refresh for movies, series or episodes."""
    tag = {"Movie": "movies", "Series": "series", "Episode": "episodes"}[schema]
    paths: JsonObj = {}
    if get:
        paths[f"{prefix}/{{id}}"] = {"get": operation(
            f"get{schema}", tag, f"One {noun} with all fields, locked_fields, artwork and files written",
            {"200": reply(f"The {noun}", ref(schema)), "400": error("BadRequest"), "404": error("NotFound")},
            parameters=[ITEM_ID])}
    paths[f"{prefix}/{{id}}/artwork/{{art_type}}"] = {"get": operation(
        f"get{schema}Artwork", tag, f"The {noun}'s image of one artwork type",
        {"200": {"description": "The cached image, else the file found beside the media",
                 "content": {"image/*": {"schema": {"type": "string", "contentMediaType": "image/*"}}}},
         "400": error("BadRequest"), "404": error("NotFound")},
        parameters=[ITEM_ID, path_param("art_type", "poster, fanart, clearlogo, ...",
                                        {"type": "string", "pattern": "^[a-z][a-z0-9-]{0,40}$"})])}
    paths[f"{prefix}/{{id}}/metadata"] = {"patch": operation(
        f"patch{schema}Metadata", tag, f"Edit {noun} fields: saves, locks them and republishes the NFO",
        {"200": reply(f"The {noun} after the edit", ref(schema)), **JSON_BODY_ERRORS},
        parameters=[ITEM_ID], body={"required": True, "content": json_content(ref("MetadataPatch"))})}
    paths[f"{prefix}/{{id}}/lock"] = {"post": operation(
        f"lock{schema}", tag, f"Lock or unlock {noun} fields",
        {"200": reply(f"The {noun} with its new locks", ref(schema)), **JSON_BODY_ERRORS},
        parameters=[ITEM_ID], body={"required": True, "content": json_content(ref("LockRequest"))})}
    paths[f"{prefix}/{{id}}/enrich"] = {"post": operation(
        f"enrich{schema}", tag, f"Enqueue enrichment of the {noun} (priority 2){enrich_note}",
        {"202": reply("Queued", ref("JobAccepted")), "400": error("BadRequest"), "404": error("NotFound")},
        parameters=[ITEM_ID])}
    paths[f"{prefix}/{{id}}/nfo"] = {"get": operation(
        f"get{schema}Nfo", tag, f"The {noun}'s NFO as written beside the media",
        {"200": reply("Its path and text", ref("Nfo")), "400": error("BadRequest"), "404": error("NotFound")},
        parameters=[ITEM_ID])}
    if schema != "Episode":
        paths[f"{prefix}/{{id}}/match"] = {"post": operation(
            f"match{schema}", tag, f"Fix a wrong match: point the {noun} at another TMDB id (saved and locked),"
            " clear its other ids, re-enrich and republish",
            {"202": reply("Queued", ref("MatchAccepted")), **JSON_BODY_ERRORS},
            parameters=[ITEM_ID], body={"required": True, "content": json_content(ref("MatchRequest"))})}
    paths[f"{prefix}/{{id}}/refresh"] = {"post": operation(
        f"refresh{schema}", tag, f"Refresh the {noun} from its providers: drops the values held from another"
        " tool's NFO (nfo_held_fields), re-enriches so providers update them, then republishes; user locks stay",
        {"202": reply("Queued", ref("RefreshAccepted")), "400": error("BadRequest"), "404": error("NotFound")},
        parameters=[ITEM_ID])}
    return paths


WEBHOOKS = {
    "radarr": ("Radarr", "Radarr Connect > Webhook payloads (camelCase JSON)."),
    "sonarr": ("Sonarr", "Sonarr Connect > Webhook payloads (camelCase JSON)."),
    "jellyfin": ("Jellyfin", "jellyfin-plugin-webhook payloads: JSON in any content type (often text/plain)."),
    "plex": ("Plex", "Plex webhooks: multipart/form-data with a `payload` part holding the JSON."),
}


def webhook_paths() -> JsonObj:
    """POST /api/webhooks/<source> for each sender."""
    auth = [{"ApiKeyHeader": []}, {"ApiKeyQuery": []}, {"BasicAuth": []}]
    paths: JsonObj = {}
    for source, (name, text) in WEBHOOKS.items():
        media = ({"multipart/form-data": {"schema": {"type": "object", "properties": {"payload": {"type": "string"}},
                                                     "required": ["payload"]}}}
                 if source == "plex" else {"application/json": {"schema": {"type": "object"}},
                                           "text/plain": {"schema": {"type": "string"}}})
        paths[f"/api/webhooks/{source}"] = {"post": operation(
            f"webhook{name}", "webhooks", f"Receive a {name} webhook",
            {"202": reply("Work was queued", ref("WebhookAccepted")),
             "200": reply("Nothing to do (Grab, Health, Test ...)", ref("WebhookIgnored")),
             "400": error("BadRequest"), "401": error("Unauthorized"), "413": error("TooLarge")},
            description=f"{text} Recorded in webhook_events before the reply.",
            body={"required": True, "content": media}, security=auth)}
    return paths


def build_paths() -> JsonObj:
    """Every route, keyed by path template."""
    job_id = [path_param("id", "job id")]
    paths: JsonObj = {
        "/": {"get": operation(
            "dashboard", "system", "The dashboard (HTML, no build step; takes ?apikey= once)",
            {"200": {"description": "index.html", "content": {"text/html": {"schema": {"type": "string"}}}}},
            security=OPEN)},
        "/ws": {"get": operation(
            "websocket", "system", "Live events over a WebSocket",
            {"101": {"description": "Switching Protocols: frames follow, see WsFrame",
                     "content": json_content(ref("WsFrame"))},
             "400": {"description": "Not a WebSocket upgrade request"}},
            description=WS_DESCRIPTION,
            parameters=[{"name": "Upgrade", "in": "header", "required": True, "schema": {"const": "websocket"}},
                        {"name": "Connection", "in": "header", "required": True, "schema": {"type": "string"}}])},
        "/api/health": {"get": operation(
            "health", "system", "Liveness, version, queue figures (no key needed)",
            {"200": reply("The agent is up", ref("Health"))}, security=OPEN)},
        "/api/openapi.json": {"get": operation(
            "openapi", "system", "This document (no key needed)",
            {"200": reply("OpenAPI 3.1 document", {"type": "object"})}, security=OPEN)},
        "/api/libraries": {"get": operation(
            "listLibraries", "libraries", "Configured libraries with counts and last scan",
            {"200": reply("Libraries", ref("LibraryList"))})},
        "/api/agents": {"get": operation(
            "listAgents", "system", "The agents sharing this store (one on SQLite): libraries, last seen, running jobs",
            {"200": reply("Agents", ref("AgentList"))})},
        "/api/libraries/{name}/scan": {"post": operation(
            "scanLibrary", "libraries", "Enqueue a scan of one library",
            {"202": reply("Queued (an already pending scan of it is returned)", ref("JobAccepted")),
             "404": error("NotFound")},
            parameters=[path_param("name", "library name", {"type": "string"})])},
        "/api/movies": {"get": operation(
            "listMovies", "movies", "Movies, filtered and paged", {"200": reply("Movies", ref("MovieList")),
                                                                   "400": error("BadRequest")},
            parameters=MEDIA_FILTERS)},
        **item_paths("/api/movies", "Movie", "movie"),
        "/api/series": {"get": operation(
            "listSeries", "series", "Series, filtered and paged (each with episode_count)",
            {"200": reply("Series", ref("SeriesList")), "400": error("BadRequest")}, parameters=MEDIA_FILTERS)},
        "/api/series/{id}": {"get": operation(
            "getSeries", "series", "One show with its seasons and episodes",
            {"200": reply("The show", ref("Series")), "400": error("BadRequest"), "404": error("NotFound")},
            parameters=[ITEM_ID])},
        **item_paths("/api/series", "Series", "series", get=False),
        **item_paths("/api/episodes", "Episode", "episode"),
        "/api/jobs": {"get": operation(
            "listJobs", "jobs", "Jobs, newest first",
            {"200": reply("Jobs", ref("JobList")), "400": error("BadRequest")},
            parameters=[query("status", "job status", {"enum": ["pending", "running", "completed", "failed",
                                                                "cancelled"]}),
                        query("type", "job type", {"type": "string"}), *PAGING])},
        "/api/jobs/{id}": {
            "get": operation("getJob", "jobs", "One job with payload, result, error, attempts, progress",
                             {"200": reply("The job", ref("Job")), "400": error("BadRequest"),
                              "404": error("NotFound")}, parameters=job_id),
            "delete": operation("deleteJob", "jobs", "Cancel a pending job",
                                {"200": reply("The cancelled job", ref("Job")), "404": error("NotFound"),
                                 "409": error("Conflict")},
                                description="409 when the job is running or finished (use POST .../cancel "
                                            "to stop a running one).", parameters=job_id),
        },
        "/api/jobs/{id}/retry": {"post": operation(
            "retryJob", "jobs", "Put a failed or cancelled job back to pending",
            {"200": reply("The job, pending again", ref("Job")), "404": error("NotFound"),
             "409": error("Conflict")}, parameters=job_id)},
        "/api/jobs/{id}/cancel": {"post": operation(
            "cancelJob", "jobs", "Cancel a pending job or ask a running one to stop",
            {"200": reply("Cancelled", ref("Job")),
             "202": reply("Running: the handler stops at its next cancellation check", ref("Job")),
             "404": error("NotFound"), "409": error("Conflict")}, parameters=job_id)},
        "/api/players": {"get": operation(
            "listPlayers", "players", "Players, their group, connection state and what is playing",
            {"200": reply("Players", ref("PlayerList"))})},
        "/api/players/{name}/test": {"post": operation(
            "testPlayer", "players", "Call the player now (Kodi JSON-RPC ping, Jellyfin with its key); records"
            " and reports the outcome",
            {"200": reply("ok and a message naming what answered or the error", ref("PlayerTest")),
             "404": error("NotFound")},
            parameters=[path_param("name", "player name", {"type": "string"})])},
        "/api/activity": {"get": operation(
            "listActivity", "jobs", "Jobs that started a chain, newest first, with what they are about and a"
            " summary of their follow-ups",
            {"200": reply("Activity", ref("ActivityList")), "400": error("BadRequest")},
            parameters=[query("status", "job status", {"enum": ["pending", "running", "completed", "failed",
                                                                "cancelled"]}),
                        query("limit", "page size", {"type": "integer", "minimum": 1, "maximum": 200,
                                                     "default": 30}),
                        query("offset", "items to skip", {"type": "integer", "minimum": 0, "default": 0})])},
        "/api/activity/{id}": {"get": operation(
            "getActivity", "jobs", "One job with every follow-up it started",
            {"200": reply("The chain", ref("ActivityChain")), "400": error("BadRequest"),
             "404": error("NotFound")}, parameters=job_id)},
        "/api/search": {"get": operation(
            "search", "movies", "Search TMDB by title and year (for Fix match)",
            {"200": reply("Candidates, best first", ref("SearchList")), "400": error("BadRequest"),
             "409": error("Conflict"), "502": {"description": "TMDB failed (unreachable, rate limited, key"
                                                              " refused)", "content": json_content(ref("Error"))}},
            description="409 when no TMDB key is configured.",
            parameters=[query("entity", "what to search", {"enum": ["movie", "series"], "default": "movie"}),
                        query("q", "title", {"type": "string", "maxLength": 300}),
                        query("year", "year (release, or first air date for series)",
                              {"type": "integer", "minimum": 0, "maximum": 2200})])},
        **webhook_paths(),
    }
    return paths


def build_document() -> JsonObj:
    """The whole OpenAPI 3.1 document."""
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Metarr Agent",
            "version": __version__,
            "summary": "Metadata sidecar for Kodi and Jellyfin: NFOs, artwork, webhooks, player sync",
            "description": "Every error body is {\"error\": \"<message>\", \"detail\": ...}, with a 4xx for the "
                           "caller's fault and never a stack trace. Every /api route except /api/health and "
                           "/api/openapi.json, and /ws, needs the API key.",
            "license": {"name": "MIT", "identifier": "MIT"},
        },
        "servers": [{"url": "/"}],
        "security": [{"ApiKeyHeader": []}, {"ApiKeyQuery": []}],
        "tags": [{"name": t} for t in ("system", "libraries", "movies", "series", "episodes", "jobs", "players",
                                       "webhooks")],
        "paths": build_paths(),
        "components": {"schemas": SCHEMAS, "responses": RESPONSES, "securitySchemes": SECURITY_SCHEMES},
    }


_DOCUMENT = build_document()


def document() -> JsonObj:
    """A copy of the document, safe for a caller to change."""
    return copy.deepcopy(_DOCUMENT)
