"""HTTP server: app factory, REST routes, /ws hub and the dashboard."""
