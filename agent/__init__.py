"""Metarr Agent: a metadata sidecar for Kodi and Jellyfin."""

__version__ = "0.1.0"
