"""The http listener: the admin API, /metrics, /health and the status page."""
