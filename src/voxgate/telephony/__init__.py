"""Call control for phone lines: Asterisk ARI (REST + events WebSocket) lives in `telephony.ari`."""
