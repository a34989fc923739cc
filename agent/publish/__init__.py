"""Publishing: an item's NFO and artwork put beside its media under Kodi/Jellyfin names.

One way down: `item` (publish one item) -> `edits` (what is on disk, hand edits) -> `names` (where files go);
`item` -> `writer` (atomic writes inside the libraries, published_files); `request` is the job's payload
type and its enqueue call. The NFO copies used to tell
hand edits apart live in agent.nfo.baseline (the cache's GC sweeps them too).
"""

from __future__ import annotations

from agent.publish.item import publish_item
from agent.publish.names import art_filename, nfo_candidates, nfo_target
from agent.publish.request import PublishRequest, enqueue_publish
from agent.publish.writer import PlannedFile, Publisher, PublishReport

__all__ = ["PlannedFile", "PublishReport", "PublishRequest", "Publisher", "art_filename", "enqueue_publish",
           "nfo_candidates", "nfo_target", "publish_item"]
