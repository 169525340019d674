"""Cluster mode on Redis or Valkey: membership, routes, forwarding through streams, client id
claims, persistent sessions in Redis that move between nodes, and their inspection. Imported
only in cluster mode (hiredis is the cluster extra)."""
