"""One handler per packet family, on the narrow services of ``engine.services``: they queue
packets on a connection, never write."""
