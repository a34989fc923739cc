"""ffprobe: find it, run it on one open media file within a time limit, and read its answer as Kodi would.

Kodi's fileinfo/streamdetails, as Kodi itself fills and writes them (xbmc/xbmc: DVDFileInfo.cpp
DemuxerToStreamDetails, DVDDemuxFFmpeg.cpp AddStream / GetStreamCodecName, utils/StreamUtils.cpp,
utils/StreamDetails.cpp HdrTypeToString, video/VideoInfoTag.cpp Save):

- video `codec`: ffmpeg's codec name (avcodec_get_name, which ffprobe prints as codec_name): h264, hevc,
  av1, mpeg2video, vc1, vp9, mpeg4 (never an encoder's name such as x264).
- `aspect`: the display aspect ratio, sample aspect ratio x width / height (width / height when the
  stream has none), to the 6 decimals Kodi's "%f" writes (1.777778).
- `width`, `height`: the stream's; `durationinseconds`: the container's duration in whole seconds.
- `stereomode`: the Matroska stereo_mode tag, when there is one.
- `hdrtype`: one of Kodi's StreamHdrType names (VideoPlayer/Interface/StreamInfo.h): dolbyvision (a DOVI
  configuration record, or the dvh1/dvhe codec tag), hdr10 (BT.2020 primaries with SMPTE ST 2084, HDR10+
  dynamic metadata, or mastering display metadata), hlg (BT.2020 with ARIB STD-B67); left out for SDR.
- audio `codec`: ffmpeg's name (aac, ac3, eac3, truehd, flac, opus, ...), DTS by profile: dtshd_ma,
  dtshd_hra, else dts (Kodi before v22 wrote "dca", which v22 reads back as "dts"). The object-audio and
  AAC-profile names only the newest Kodi knows (truehd_atmos, eac3_ddp_atmos, dtshd_ma_x, aac_lc) are
  written as the base name StreamUtils::GetCanonicalCodecName gives them, which every Kodi and skin knows.
- `channels`: the audio stream's channel count; `language`: the stream's language tag, its first three
  letters (ISO 639-2: eng, fre) as Kodi keeps it; "und" (undetermined) is left out.
- subtitle: one entry per subtitle stream with its `language`.
Attached pictures (cover art inside MKV/MP4) are not video streams.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
from collections.abc import Callable
from typing import Any, Final

DEFAULT_FFPROBE: Final = "ffprobe"
AUTO: Final = "auto"  # probe.ffprobe: ffprobe on PATH, when there is one
OFF: Final = "off"  # probe.ffprobe: never probe
MISSING: Final = "ffprobe not found on PATH: NFOs get no streamdetails; install ffmpeg to add them"
MAX_OUTPUT: Final = 4 << 20  # ffprobe's JSON for a film is a few KiB; more is a pathological file
MAX_STDERR: Final = 4096
ASPECT_DECIMALS: Final = 6  # Kodi writes the aspect with "%f"
ARGS: Final = ("-v", "error", "-hide_banner", "-print_format", "json", "-show_format", "-show_streams")
_DTS_PROFILES: Final = (("DTS-HD MA", "dtshd_ma"), ("DTS-HD HRA", "dtshd_hra"))
_DOVI_TAGS: Final = ("dvh1", "dvhe", "dav1", "dvav", "dva1")  # Dolby Vision sample entries (ISO BMFF)
_FD_PATH: Final = re.compile(r"/dev/fd/\d+:?\s*")


class ProbeError(Exception):
    """ffprobe gave no answer for a file: `reason` says why; `transient` when the same bytes may do better
    next time (a timeout, ffprobe not starting), so the failure is not remembered against the file."""

    def __init__(self, reason: str, transient: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.transient = transient


def find_ffprobe(configured: str = AUTO, which: Callable[[str], str | None] = shutil.which) -> str | None:
    """The ffprobe to run for `probe.ffprobe`: "auto" is ffprobe on PATH, a value with a slash a path, "off"
    (or empty) none; None also when it is not there or not executable."""
    if not configured or configured == OFF:
        return None
    name = DEFAULT_FFPROBE if configured == AUTO else configured
    if "/" in name:
        return name if os.path.isfile(name) and os.access(name, os.X_OK) else None
    return which(name)


def ffprobe_available(configured: str = AUTO) -> bool:
    """Whether ffprobe can be run (for health checks and check-config): without it NFOs get no streamdetails."""
    return find_ffprobe(configured) is not None


def ffprobe_status(configured: str, found: str | None) -> str:
    """One line for the log at start and check-config: which ffprobe runs, or why NFOs get no streamdetails."""
    if configured == OFF:
        return "ffprobe: off (probe.ffprobe: off): NFOs get no streamdetails"
    if found:
        return f"ffprobe: {found} (NFOs get streamdetails)"
    if configured == AUTO:
        return MISSING
    return f"ffprobe: {configured} cannot be run: NFOs get no streamdetails; fix probe.ffprobe or install ffmpeg"


async def _drain(stream: asyncio.StreamReader | None, cap: int) -> tuple[bytes, bool]:
    """Read a pipe to its end, keeping at most `cap` bytes; (kept bytes, whether more came)."""
    if stream is None:
        return b"", False
    kept = bytearray()
    over = False
    while chunk := await stream.read(65536):
        room = cap - len(kept)
        if len(chunk) > room:
            over = True
        kept += chunk[:max(room, 0)]
    return bytes(kept), over


async def run_ffprobe(ffprobe: str, fd: int, seconds: float, name: str = "the file") -> dict[str, Any]:
    """Run ffprobe on an open file (passed to it as /dev/fd/N, so it reads what was checked) and parse its JSON.

    ffprobe is killed when it takes longer than `seconds` or the caller is cancelled; its output is
    bounded. ProbeError names what went wrong (`name` stands for the file in the reason).
    """
    try:
        proc = await asyncio.create_subprocess_exec(
            ffprobe, *ARGS, f"/dev/fd/{fd}", stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE, pass_fds=(fd,))
    except OSError as exc:
        raise ProbeError(f"cannot run {ffprobe}: {exc.strerror or exc}", transient=True) from None
    try:
        (out, too_much), (err, _) = await asyncio.wait_for(
            asyncio.gather(_drain(proc.stdout, MAX_OUTPUT), _drain(proc.stderr, MAX_STDERR)), seconds)
        code = await asyncio.wait_for(proc.wait(), seconds)
    except TimeoutError:
        raise ProbeError(f"ffprobe took longer than {seconds:g} s on {name} and was stopped", transient=True) from None
    finally:
        if proc.returncode is None:  # timed out or cancelled: never leave it running
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
            await asyncio.shield(proc.wait())
    if too_much:
        raise ProbeError(f"ffprobe printed more than {MAX_OUTPUT >> 20} MiB about {name}; not read")
    if code != 0:
        lines = [ln.strip() for ln in err.decode("utf-8", "replace").splitlines() if ln.strip()]
        why = _FD_PATH.sub("", lines[-1]) if lines else f"exit status {code}"
        raise ProbeError(f"ffprobe cannot read {name}: {why}")
    try:
        data = json.loads(out)
    except ValueError:
        raise ProbeError(f"ffprobe's answer about {name} is not JSON") from None
    if not isinstance(data, dict):
        raise ProbeError(f"ffprobe's answer about {name} is not a JSON object")
    return data


# ---------------------------------------------------------------- ffprobe's JSON -> Kodi's streamdetails


def _int(value: Any) -> int | None:
    """A whole number from ffprobe's value (a number or its text), else None."""
    try:
        number = int(float(value))
    except (TypeError, ValueError, OverflowError):
        return None
    return number


def _ratio(text: Any) -> float | None:
    """"16:15" -> 1.0666...; None for a missing, zero or malformed ratio ("0:1", "N/A")."""
    if not isinstance(text, str) or ":" not in text:
        return None
    num, _, den = text.partition(":")
    n, d = _int(num), _int(den)
    if not n or not d or n < 0 or d < 0:
        return None
    return n / d


def _language(stream: dict[str, Any]) -> str | None:
    """The stream's language tag as Kodi keeps it (its first three letters, lower case), None when unknown."""
    tags = stream.get("tags") if isinstance(stream.get("tags"), dict) else {}
    lang = next((v for k, v in tags.items() if k.lower() == "language" and isinstance(v, str)), "")
    lang = lang.strip()[:3].lower()
    return lang if lang and lang != "und" else None


def hdr_type(stream: dict[str, Any]) -> str | None:
    """Kodi's hdrtype for a video stream: dolbyvision, hdr10, hlg, or None (SDR)."""
    side = [s for s in stream.get("side_data_list") or [] if isinstance(s, dict)]
    kinds = [str(s.get("side_data_type") or "") for s in side]
    if any("DOVI configuration" in k for k in kinds) or str(stream.get("codec_tag_string") or "") in _DOVI_TAGS:
        return "dolbyvision"
    if stream.get("color_primaries") == "bt2020":
        transfer = stream.get("color_transfer")
        if transfer == "smpte2084":
            return "hdr10"
        if transfer == "arib-std-b67":
            return "hlg"
    if any("HDR10+" in k or "2094-40" in k for k in kinds):
        return "hdr10"  # Kodi has no name of its own for HDR10+: its base layer is HDR10
    for s, kind in zip(side, kinds, strict=True):
        if "Mastering display" in kind and "red_x" in s and "max_luminance" in s:
            return "hdr10"  # static HDR10 metadata ffmpeg reports without a transfer function
    return None


def audio_codec(stream: dict[str, Any]) -> str | None:
    """Kodi's name for an audio stream's codec (see the module's notes)."""
    name = str(stream.get("codec_name") or "").lower()
    if not name:
        return None
    if name == "dts":
        profile = str(stream.get("profile") or "")
        return next((kodi for prefix, kodi in _DTS_PROFILES if profile.startswith(prefix)), "dts")
    return name


def _video(stream: dict[str, Any], duration: int | None) -> dict[str, Any]:
    """One <video> entry."""
    out: dict[str, Any] = {}
    if codec := str(stream.get("codec_name") or "").lower():
        out["codec"] = codec
    width, height = _int(stream.get("width")), _int(stream.get("height"))
    if width and height and width > 0 and height > 0:
        sar = _ratio(stream.get("sample_aspect_ratio")) or 1.0
        out["aspect"] = round(sar * width / height, ASPECT_DECIMALS)
        out["width"], out["height"] = width, height
    if duration:
        out["durationinseconds"] = duration
    tags = stream.get("tags") if isinstance(stream.get("tags"), dict) else {}
    if isinstance(tags.get("stereo_mode"), str) and tags["stereo_mode"].strip():
        out["stereomode"] = tags["stereo_mode"].strip()[:50]
    if hdr := hdr_type(stream):
        out["hdrtype"] = hdr
    return out


def kodi_streamdetails(data: dict[str, Any]) -> dict[str, list[dict[str, Any]]] | None:
    """ffprobe's -show_format -show_streams JSON as Kodi's streamdetails {video, audio, subtitle}; None when the
    file has none of those streams."""
    fmt = data.get("format") if isinstance(data.get("format"), dict) else {}
    seconds = _int(fmt.get("duration"))
    duration = seconds if seconds and seconds > 0 else None
    out: dict[str, list[dict[str, Any]]] = {"video": [], "audio": [], "subtitle": []}
    for stream in data.get("streams") or []:
        if not isinstance(stream, dict):
            continue
        kind = stream.get("codec_type")
        disposition = stream.get("disposition") if isinstance(stream.get("disposition"), dict) else {}
        if kind == "video" and not disposition.get("attached_pic"):
            out["video"].append(_video(stream, duration))
        elif kind == "audio":
            entry: dict[str, Any] = {}
            if codec := audio_codec(stream):
                entry["codec"] = codec
            if lang := _language(stream):
                entry["language"] = lang
            channels = _int(stream.get("channels"))
            if channels and channels > 0:
                entry["channels"] = channels
            out["audio"].append(entry)
        elif kind == "subtitle":
            lang = _language(stream)
            out["subtitle"].append({"language": lang} if lang else {})
    return out if any(out.values()) else None
