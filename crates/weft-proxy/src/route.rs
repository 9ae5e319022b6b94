//! Endpoint selection (placeholder module, filled in by the balancer change).
